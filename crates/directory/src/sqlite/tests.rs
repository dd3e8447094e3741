//! Tests of the SQLite-backed directory.

use std::sync::Arc;

use crate::*;

fn options() -> DirectoryOptions {
    DirectoryOptions {
        password_params: PasswordParams::insecure_fast_for_tests(),
        ..DirectoryOptions::default()
    }
}

fn mem() -> SqliteDirectory {
    SqliteDirectory::open_in_memory(options()).unwrap()
}

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

fn local(account: &str, detail: Option<&str>) -> Destination {
    Destination::Local {
        account: account.into(),
        detail: detail.map(str::to_string),
    }
}

fn deliver(d: &SqliteDirectory, a: &str) -> Vec<Destination> {
    match d.resolve(&addr(a)).unwrap() {
        Resolution::Deliver(v) => v,
        other => panic!("{a}: {other:?}"),
    }
}

/// example.org with alice and bob.
fn populated() -> SqliteDirectory {
    let d = mem();
    d.add_domain("example.org").unwrap();
    d.add_account("alice@example.org", "alice-pw").unwrap();
    d.add_account("bob@example.org", "bob-pw").unwrap();
    d
}

#[test]
fn directory_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SqliteDirectory>();
}

#[test]
fn domains_crud() {
    let d = mem();
    let dom = d.add_domain("Bücher.Example").unwrap();
    assert_eq!(dom.name, "xn--bcher-kva.example");
    assert_eq!(dom.unicode_name, "bücher.example");
    assert!(matches!(
        d.add_domain("xn--bcher-kva.EXAMPLE"),
        Err(DirectoryError::DomainExists(_))
    ));
    d.add_domain("example.org").unwrap();
    let names: Vec<_> = d
        .list_domains()
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert_eq!(names, ["example.org", "xn--bcher-kva.example"]);
    assert!(d.is_local_domain("BÜCHER.example").unwrap());
    assert!(d.is_local_domain("Example.ORG").unwrap());
    assert!(!d.is_local_domain("example.net").unwrap());
    assert!(!d.is_local_domain("not a domain").unwrap());
    d.remove_domain("bücher.example").unwrap();
    assert!(matches!(
        d.remove_domain("bücher.example"),
        Err(DirectoryError::NoSuchDomain(_))
    ));
    assert!(matches!(
        d.add_domain("bad domain"),
        Err(DirectoryError::InvalidDomain { .. })
    ));
}

#[test]
fn domain_removal_refused_while_in_use() {
    let d = populated();
    d.add_alias("info@example.org", &["alice@example.org"])
        .unwrap();
    d.set_apop_secret("alice@example.org", "apop").unwrap();
    let e = d.remove_domain("example.org").unwrap_err();
    match &e {
        DirectoryError::DomainInUse {
            accounts, aliases, ..
        } => assert_eq!((*accounts, *aliases), (2, 1)),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("force"));
    let removed = d.remove_domain_force("example.org").unwrap();
    assert_eq!(
        removed,
        DomainRemoval {
            accounts: 2,
            aliases: 1
        }
    );
    assert!(d.list_accounts(None).unwrap().is_empty());
    assert!(d.list_aliases(None).unwrap().is_empty());
    assert!(!d.is_local_domain("example.org").unwrap());
    assert!(matches!(
        d.remove_domain_force("example.org"),
        Err(DirectoryError::NoSuchDomain(_))
    ));
}

#[test]
fn accounts_crud() {
    let d = mem();
    assert!(matches!(
        d.add_account("alice@example.org", "pw"),
        Err(DirectoryError::NoSuchDomain(_))
    ));
    d.add_domain("example.org").unwrap();
    d.add_domain("example.net").unwrap();
    let a = d.add_account("Alice@Example.org", "pw").unwrap();
    assert_eq!(a.address, "alice@example.org");
    assert!(a.enabled);
    assert_eq!(a.hash_scheme, Some(HashScheme::Argon2id));
    assert!(matches!(
        d.add_account("ALICE@example.org", "pw"),
        Err(DirectoryError::AccountExists(_))
    ));
    assert!(matches!(
        d.add_account("carol@example.org", ""),
        Err(DirectoryError::EmptyPassword)
    ));
    d.add_account("zed@example.net", "pw").unwrap();

    let got = d.get_account("alice@EXAMPLE.org").unwrap().unwrap();
    assert_eq!(got, a);
    assert!(d.get_account("nobody@example.org").unwrap().is_none());
    assert!(d.get_account("not-an-address").is_err());

    let all: Vec<_> = d
        .list_accounts(None)
        .unwrap()
        .into_iter()
        .map(|x| x.address)
        .collect();
    assert_eq!(all, ["zed@example.net", "alice@example.org"]);
    let org = d.list_accounts(Some("EXAMPLE.ORG")).unwrap();
    assert_eq!(org.len(), 1);

    d.set_enabled("alice@example.org", false).unwrap();
    d.set_quota("alice@example.org", Some(1 << 30)).unwrap();
    let got = d.get_account("alice@example.org").unwrap().unwrap();
    assert!(!got.enabled);
    assert_eq!(got.quota_bytes, Some(1 << 30));
    d.set_quota("alice@example.org", None).unwrap();
    assert_eq!(
        d.get_account("alice@example.org")
            .unwrap()
            .unwrap()
            .quota_bytes,
        None
    );
    assert!(matches!(
        d.set_quota("alice@example.org", Some(u64::MAX)),
        Err(DirectoryError::QuotaTooLarge(_))
    ));
    assert!(matches!(
        d.set_enabled("ghost@example.org", true),
        Err(DirectoryError::NoSuchAccount(_))
    ));

    d.remove_account("alice@example.org").unwrap();
    assert!(matches!(
        d.remove_account("alice@example.org"),
        Err(DirectoryError::NoSuchAccount(_))
    ));
}

#[test]
fn passwords_and_authentication() {
    let d = populated();
    assert_eq!(
        d.authenticate("Alice@Example.org", b"alice-pw")
            .unwrap()
            .as_deref(),
        Some("alice@example.org")
    );
    assert_eq!(
        d.authenticate("alice@example.org", b"bob-pw").unwrap(),
        None
    );
    assert_eq!(d.authenticate("ghost@example.org", b"x").unwrap(), None);
    assert_eq!(d.authenticate("ghost@nowhere.example", b"x").unwrap(), None);
    assert_eq!(d.authenticate("not an address", b"x").unwrap(), None);
    assert_eq!(d.authenticate("", b"").unwrap(), None);

    d.set_password("alice@example.org", "new-pw").unwrap();
    assert_eq!(
        d.authenticate("alice@example.org", b"alice-pw").unwrap(),
        None
    );
    assert!(d
        .authenticate("alice@example.org", b"new-pw")
        .unwrap()
        .is_some());
    assert!(matches!(
        d.set_password("ghost@example.org", "x"),
        Err(DirectoryError::NoSuchAccount(_))
    ));

    d.set_enabled("alice@example.org", false).unwrap();
    assert_eq!(
        d.authenticate("alice@example.org", b"new-pw").unwrap(),
        None
    );
}

const SHA512_HUNTER2: &str = "$6$saltsalt$8iYtNHxjWRl.NF6oNZ5tF.iKFlQREaXBLlSmZKP6dy9l5z3vsooWNW0/GZ6Nej73/TFug6pIPSqbJoCT6dfnj.";
const BCRYPT_HUNTER2: &str = "$2y$04$abcdefghijklmnopqrstuuV3duMsC0HpUex6N9qapiuOHHWkwRXVm";

#[test]
fn imported_hash_is_upgraded_on_login() {
    let d = populated();
    d.add_account_with_hash(
        "carol@example.org",
        &format!("{{SHA512-CRYPT}}{SHA512_HUNTER2}"),
    )
    .unwrap();
    assert_eq!(
        d.export_password_hash("carol@example.org")
            .unwrap()
            .as_deref(),
        Some(SHA512_HUNTER2)
    );
    assert_eq!(
        d.get_account("carol@example.org")
            .unwrap()
            .unwrap()
            .hash_scheme,
        Some(HashScheme::Sha512Crypt)
    );
    // A failed login changes nothing.
    assert_eq!(d.authenticate("carol@example.org", b"wrong").unwrap(), None);
    assert_eq!(
        d.export_password_hash("carol@example.org")
            .unwrap()
            .as_deref(),
        Some(SHA512_HUNTER2)
    );
    // A successful one upgrades to argon2id.
    assert!(d
        .authenticate("carol@example.org", b"hunter2")
        .unwrap()
        .is_some());
    let upgraded = d
        .export_password_hash("carol@example.org")
        .unwrap()
        .unwrap();
    assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
    assert!(d
        .authenticate("carol@example.org", b"hunter2")
        .unwrap()
        .is_some());
    assert_eq!(
        d.export_password_hash("carol@example.org")
            .unwrap()
            .unwrap(),
        upgraded,
        "an up-to-date hash is not rewritten"
    );

    d.set_password_hash("bob@example.org", &format!("{{BLF-CRYPT}}{BCRYPT_HUNTER2}"))
        .unwrap();
    assert!(d
        .authenticate("bob@example.org", b"hunter2")
        .unwrap()
        .is_some());
    assert!(d
        .export_password_hash("bob@example.org")
        .unwrap()
        .unwrap()
        .starts_with("$argon2id$"));

    assert!(matches!(
        d.set_password_hash(
            "bob@example.org",
            "{PLAIN-MD5}5f4dcc3b5aa765d61d8327deb882cf99"
        ),
        Err(DirectoryError::UnsupportedHashScheme(_))
    ));
    assert!(matches!(
        d.add_account_with_hash("dave@example.org", "$1$abc$def"),
        Err(DirectoryError::MalformedHash(_))
    ));
    assert!(d.get_account("dave@example.org").unwrap().is_none());
}

// `openssl passwd -1 -salt saltsalt hunter2`.
const MD5_CRYPT_HUNTER2: &str = "$1$saltsalt$ZliGyAN3DciDHEkDboonh/";
// `doveadm pw -s SSHA512 -p hunter2` (Dovecot 2.3).
const SSHA512_HUNTER2: &str = "{SSHA512}CQj2OMeSV1K4Kz8wNHTkkitd/XQxB8mQzPGYOt76WzM2ko/0qvubJAqUj0swnt2KpZpr9Ye4yk9Lek3zAD/HhMCf6Hw=";

/// Imports `hash` for carol, checks what is stored and listed, logs in once over
/// SASL `mechanism` and checks the account then has argon2id and SCRAM keys.
fn import_then_login(hash: &str, stored: &str, scheme: HashScheme, mechanism: SaslMechanism) {
    let d = Arc::new(populated());
    d.add_account_with_hash("carol@example.org", hash).unwrap();
    assert_eq!(
        d.export_password_hash("carol@example.org")
            .unwrap()
            .as_deref(),
        Some(stored),
        "{hash}"
    );
    let listed = d.list_accounts(Some("example.org")).unwrap();
    let carol = listed
        .iter()
        .find(|a| a.address == "carol@example.org")
        .unwrap();
    assert_eq!(carol.hash_scheme, Some(scheme));
    assert!(!carol.has_scram_keys);
    assert!(scram_keys(&d, "carol@example.org").is_none());

    let login = |password: &[u8]| {
        let mut s = SaslSession::new(mechanism, d.clone());
        match mechanism {
            SaslMechanism::Plain => {
                let mut ir = b"\0carol@example.org\0".to_vec();
                ir.extend_from_slice(password);
                s.start(Some(&ir))
            }
            _ => {
                s.start(None).unwrap();
                s.step(b"carol@example.org").unwrap();
                s.step(password)
            }
        }
    };
    assert!(matches!(
        login(b"hunter3"),
        Err(SaslError::AuthenticationFailed { .. })
    ));
    assert_eq!(
        d.export_password_hash("carol@example.org")
            .unwrap()
            .as_deref(),
        Some(stored),
        "a failed login changes nothing"
    );
    assert!(scram_keys(&d, "carol@example.org").is_none());

    assert!(matches!(login(b"hunter2"), Ok(SaslStep::Done(_))));
    let upgraded = d
        .export_password_hash("carol@example.org")
        .unwrap()
        .unwrap();
    assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
    let v = password::verify_password(b"hunter2", &upgraded, &options().password_params).unwrap();
    assert!(v.matched && !v.needs_rehash);
    let keys = scram_keys(&d, "carol@example.org").expect("SCRAM keys made at login");
    assert!(keys_match(&keys, "hunter2"));
    let carol = d.get_account("carol@example.org").unwrap().unwrap();
    assert_eq!(carol.hash_scheme, Some(HashScheme::Argon2id));
    assert!(carol.has_scram_keys);
    // Still the same password afterwards, and nothing is rewritten.
    assert!(matches!(login(b"hunter2"), Ok(SaslStep::Done(_))));
    assert_eq!(
        d.export_password_hash("carol@example.org")
            .unwrap()
            .unwrap(),
        upgraded
    );
}

#[test]
fn imported_md5_crypt_is_upgraded_at_first_login() {
    import_then_login(
        MD5_CRYPT_HUNTER2,
        MD5_CRYPT_HUNTER2,
        HashScheme::Md5Crypt,
        SaslMechanism::Login,
    );
    import_then_login(
        &format!("{{MD5-CRYPT}}{MD5_CRYPT_HUNTER2}"),
        MD5_CRYPT_HUNTER2,
        HashScheme::Md5Crypt,
        SaslMechanism::Plain,
    );
    import_then_login(
        &format!("{{CRYPT}}{MD5_CRYPT_HUNTER2}"),
        MD5_CRYPT_HUNTER2,
        HashScheme::Md5Crypt,
        SaslMechanism::Plain,
    );
}

#[test]
fn imported_ssha512_is_upgraded_at_first_login() {
    import_then_login(
        SSHA512_HUNTER2,
        SSHA512_HUNTER2,
        HashScheme::Ssha512,
        SaslMechanism::Plain,
    );
    import_then_login(
        SSHA512_HUNTER2,
        SSHA512_HUNTER2,
        HashScheme::Ssha512,
        SaslMechanism::Login,
    );
    // Python: base64.b64encode(hashlib.sha1(b"hunter2saltsalt").digest() + b"saltsalt").
    import_then_login(
        "{ssha}EwvBq0sMQSLLD3eOSZNmhQqOOkRzYWx0c2FsdA==",
        "{SSHA}EwvBq0sMQSLLD3eOSZNmhQqOOkRzYWx0c2FsdA==",
        HashScheme::Ssha,
        SaslMechanism::Plain,
    );
    // Python: hashlib.sha256(b"hunter2").hexdigest().
    import_then_login(
        "{SHA256}f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7",
        "{SHA256}f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7",
        HashScheme::Sha256,
        SaslMechanism::Login,
    );
}

#[test]
fn imported_plaintext_is_kept_recognisable_then_replaced() {
    import_then_login(
        "{CLEARTEXT}hunter2",
        "{PLAIN}hunter2",
        HashScheme::Plain,
        SaslMechanism::Plain,
    );
    // A stored body without its prefix is not taken for a plaintext password.
    let d = populated();
    assert!(matches!(
        d.set_password_hash("bob@example.org", "hunter2"),
        Err(DirectoryError::UnsupportedHashScheme(_))
    ));
    assert!(matches!(
        d.set_password_hash("bob@example.org", "{PLAIN}"),
        Err(DirectoryError::MalformedHash(_))
    ));
    // set_password_hash takes the same schemes, and removes the old SCRAM keys.
    d.set_password_hash("alice@example.org", "{PLAIN}hunter2")
        .unwrap();
    assert!(scram_keys(&d, "alice@example.org").is_none());
    assert_eq!(
        d.authenticate("alice@example.org", b"alice-pw").unwrap(),
        None
    );
    assert!(d
        .authenticate("alice@example.org", b"hunter2")
        .unwrap()
        .is_some());
    assert!(d
        .export_password_hash("alice@example.org")
        .unwrap()
        .unwrap()
        .starts_with("$argon2id$"));
    assert!(scram_keys(&d, "alice@example.org").is_some());
}

#[test]
fn weak_argon2_is_upgraded_to_configured_params() {
    let d = populated();
    let weak = password::hash_password(b"pw", &PasswordParams::insecure_fast_for_tests()).unwrap();
    let strong = SqliteDirectory::open_in_memory(DirectoryOptions {
        password_params: PasswordParams {
            m_cost_kib: 128,
            t_cost: 1,
            p_cost: 1,
            ..PasswordParams::insecure_fast_for_tests()
        },
        ..options()
    })
    .unwrap();
    strong.add_domain("example.org").unwrap();
    strong
        .add_account_with_hash("x@example.org", &weak)
        .unwrap();
    assert!(strong
        .authenticate("x@example.org", b"pw")
        .unwrap()
        .is_some());
    let now = strong
        .export_password_hash("x@example.org")
        .unwrap()
        .unwrap();
    assert!(now.contains("m=128"), "{now}");
    drop(d);
}

#[test]
fn apop_secrets() {
    let d = populated();
    assert_eq!(d.apop_secret("alice@example.org").unwrap(), None);
    d.set_apop_secret("Alice@example.org", "tanstaaf").unwrap();
    assert_eq!(
        d.apop_secret("alice@example.org").unwrap().as_deref(),
        Some("tanstaaf")
    );
    assert!(
        d.get_account("alice@example.org")
            .unwrap()
            .unwrap()
            .has_apop_secret
    );
    // The login hash is unaffected and the APOP secret is not a login password.
    assert!(d
        .authenticate("alice@example.org", b"alice-pw")
        .unwrap()
        .is_some());
    assert!(d
        .authenticate("alice@example.org", b"tanstaaf")
        .unwrap()
        .is_none());
    d.set_apop_secret("alice@example.org", "other").unwrap();
    assert_eq!(
        d.apop_secret("alice@example.org").unwrap().as_deref(),
        Some("other")
    );
    d.set_enabled("alice@example.org", false).unwrap();
    assert_eq!(d.apop_secret("alice@example.org").unwrap(), None);
    d.set_enabled("alice@example.org", true).unwrap();
    d.clear_apop_secret("alice@example.org").unwrap();
    assert_eq!(d.apop_secret("alice@example.org").unwrap(), None);
    assert!(matches!(
        d.set_apop_secret("ghost@example.org", "x"),
        Err(DirectoryError::NoSuchAccount(_))
    ));
    assert_eq!(d.apop_secret("garbage").unwrap(), None);
    // Removing the account removes its secret.
    d.set_apop_secret("bob@example.org", "b").unwrap();
    d.remove_account("bob@example.org").unwrap();
    d.add_account("bob@example.org", "pw").unwrap();
    assert_eq!(d.apop_secret("bob@example.org").unwrap(), None);
}

#[test]
fn alias_crud_and_refusals() {
    let d = populated();
    assert!(matches!(
        d.add_alias("info@example.net", &["alice@example.org"]),
        Err(DirectoryError::NoSuchDomain(_))
    ));
    assert!(matches!(
        d.add_alias("alice@example.org", &["bob@example.org"]),
        Err(DirectoryError::AddressIsAccount(_))
    ));
    assert!(matches!(
        d.add_alias("info@example.org", &[]),
        Err(DirectoryError::NoAliasTargets)
    ));
    assert!(matches!(
        d.add_alias("info@example.org", &["not an address"]),
        Err(DirectoryError::InvalidAliasTarget { .. })
    ));
    assert!(matches!(
        d.add_alias("info@example.org", &["INFO@example.org"]),
        Err(DirectoryError::AliasPointsToItself(_))
    ));
    let a = d
        .add_alias(
            "Info@Example.org",
            &["Alice@example.org", "Friend@Remote.Example"],
        )
        .unwrap();
    assert_eq!(a.address, "info@example.org");
    assert_eq!(a.targets, ["Friend@remote.example", "alice@example.org"]);
    assert!(matches!(
        d.add_alias(
            "info@example.org",
            &["bob@example.org", "alice@EXAMPLE.org"]
        ),
        Err(DirectoryError::AliasTargetExists { .. })
    ));
    // All or nothing: bob was not added.
    assert_eq!(d.alias_targets("info@example.org").unwrap().len(), 2);
    assert!(matches!(
        d.add_account("info@example.org", "pw"),
        Err(DirectoryError::AddressIsAlias(_))
    ));
    d.add_alias("@example.org", &["bob@example.org"]).unwrap();
    let list = d.list_aliases(None).unwrap();
    assert_eq!(list.len(), 2);
    assert!(list[0].is_catch_all());
    assert_eq!(d.list_aliases(Some("example.net")).unwrap(), vec![]);

    assert_eq!(
        d.remove_alias("info@example.org", Some("ALICE@example.org"))
            .unwrap(),
        1
    );
    assert_eq!(
        d.remove_alias("info@example.org", Some("Friend@Remote.example"))
            .unwrap(),
        1
    );
    assert!(matches!(
        d.remove_alias("info@example.org", None),
        Err(DirectoryError::NoSuchAlias(_))
    ));
    assert_eq!(d.remove_alias("@example.org", None).unwrap(), 1);
    assert!(d.list_aliases(None).unwrap().is_empty());
}

#[test]
fn resolve_accounts_and_not_local() {
    let d = populated();
    assert_eq!(
        deliver(&d, "ALICE@example.ORG"),
        [local("alice@example.org", None)]
    );
    assert_eq!(
        d.resolve(&addr("carol@example.org")).unwrap(),
        Resolution::NotFound
    );
    assert_eq!(
        d.resolve(&addr("alice@example.net")).unwrap(),
        Resolution::NotLocal
    );
}

#[test]
fn resolve_idna_domain() {
    let d = mem();
    d.add_domain("bücher.example").unwrap();
    d.add_account("info@xn--bcher-kva.example", "pw").unwrap();
    assert_eq!(
        deliver(&d, "INFO@BÜCHER.example"),
        [local("info@xn--bcher-kva.example", None)]
    );
    assert!(d
        .authenticate("info@Bücher.example", b"pw")
        .unwrap()
        .is_some());
}

#[test]
fn plus_addressing() {
    let d = populated();
    assert_eq!(
        deliver(&d, "alice+lists@example.org"),
        [local("alice@example.org", Some("lists"))]
    );
    assert_eq!(
        deliver(&d, "alice+a+b@example.org"),
        [local("alice@example.org", Some("a+b"))]
    );
    assert_eq!(
        deliver(&d, "alice+@example.org"),
        [local("alice@example.org", Some(""))]
    );
    // An account or alias named with the separator wins.
    d.add_account("alice+special@example.org", "pw").unwrap();
    assert_eq!(
        deliver(&d, "alice+special@example.org"),
        [local("alice+special@example.org", None)]
    );
    d.add_alias("bob+x@example.org", &["alice@example.org"])
        .unwrap();
    assert_eq!(
        deliver(&d, "bob+x@example.org"),
        [local("alice@example.org", None)]
    );
    // Base is an alias: the detail propagates to local targets.
    d.add_alias(
        "team@example.org",
        &["alice@example.org", "bob@example.org"],
    )
    .unwrap();
    assert_eq!(
        deliver(&d, "team+urgent@example.org"),
        [
            local("alice@example.org", Some("urgent")),
            local("bob@example.org", Some("urgent"))
        ]
    );
    assert_eq!(
        d.resolve(&addr("+tag@example.org")).unwrap(),
        Resolution::NotFound
    );
    assert_eq!(
        d.resolve(&addr("carol+tag@example.org")).unwrap(),
        Resolution::NotFound
    );
}

#[test]
fn custom_and_disabled_separator() {
    let d = SqliteDirectory::open_in_memory(DirectoryOptions {
        subaddress_separator: Some('-'),
        ..options()
    })
    .unwrap();
    d.add_domain("example.org").unwrap();
    d.add_account("alice@example.org", "pw").unwrap();
    assert_eq!(
        deliver(&d, "alice-news@example.org"),
        [local("alice@example.org", Some("news"))]
    );
    assert_eq!(
        d.resolve(&addr("alice+news@example.org")).unwrap(),
        Resolution::NotFound
    );

    let off = SqliteDirectory::open_in_memory(DirectoryOptions {
        subaddress_separator: None,
        ..options()
    })
    .unwrap();
    off.add_domain("example.org").unwrap();
    off.add_account("alice@example.org", "pw").unwrap();
    assert_eq!(
        off.resolve(&addr("alice+x@example.org")).unwrap(),
        Resolution::NotFound
    );
}

#[test]
fn alias_expansion_recursive_and_dedup() {
    let d = populated();
    d.add_domain("example.net").unwrap();
    d.add_account("carol@example.net", "pw").unwrap();
    d.add_alias(
        "staff@example.org",
        &["alice@example.org", "admins@example.org"],
    )
    .unwrap();
    d.add_alias(
        "admins@example.org",
        &[
            "alice@example.org",
            "bob@example.org",
            "ops@example.net",
            "Ext@Elsewhere.example",
        ],
    )
    .unwrap();
    d.add_alias(
        "ops@example.net",
        &[
            "carol@example.net",
            "ext@elsewhere.example",
            "bob+ops@example.org",
        ],
    )
    .unwrap();
    // Targets expand in sorted order; each destination appears once, at its first
    // occurrence. Remote local parts keep their case (and so are distinct).
    let got = deliver(&d, "staff@example.org");
    assert_eq!(
        got,
        [
            Destination::Remote("Ext@elsewhere.example".into()),
            local("alice@example.org", None),
            local("bob@example.org", None),
            local("carol@example.net", None),
            Destination::Remote("ext@elsewhere.example".into()),
        ]
    );
    // A target's own detail is kept when it is the first route to that account.
    assert_eq!(
        deliver(&d, "ops@example.net"),
        [
            local("bob@example.org", Some("ops")),
            local("carol@example.net", None),
            Destination::Remote("ext@elsewhere.example".into()),
        ]
    );
}

/// Writes an alias row directly, as an older version or a hand edit could have.
fn raw_alias(d: &SqliteDirectory, alias: &str, target: &str) {
    let domain = alias.rsplit_once('@').unwrap().1;
    d.lock_for_tests()
        .execute(
            "INSERT INTO aliases (address, domain, target, created_at) VALUES (?1, ?2, ?3, 0)",
            [alias, domain, target],
        )
        .unwrap();
}

#[test]
fn alias_loops_are_refused_when_made_and_terminate_if_present() {
    let d = populated();
    d.add_alias("a@example.org", &["b@example.org", "alice@example.org"])
        .unwrap();
    let e = d
        .add_alias("b@example.org", &["a@example.org", "bob@example.org"])
        .unwrap_err();
    assert!(
        matches!(&e, DirectoryError::AliasLoop(p) if p == "b@example.org -> a@example.org -> b@example.org"),
        "{e}"
    );
    assert!(d.alias_targets("b@example.org").unwrap().is_empty());
    // A loop already in the database still delivers once to everyone, and terminates.
    raw_alias(&d, "b@example.org", "a@example.org");
    raw_alias(&d, "b@example.org", "bob@example.org");
    let got = deliver(&d, "a@example.org");
    assert_eq!(
        got,
        [
            local("alice@example.org", None),
            local("bob@example.org", None)
        ]
    );
    // A pure loop resolves to nothing.
    raw_alias(&d, "x@example.org", "y@example.org");
    raw_alias(&d, "y@example.org", "x@example.org");
    assert_eq!(
        d.resolve(&addr("x@example.org")).unwrap(),
        Resolution::NotFound
    );
}

#[test]
fn alias_depth_limit() {
    let d = SqliteDirectory::open_in_memory(DirectoryOptions {
        max_alias_depth: 3,
        ..options()
    })
    .unwrap();
    d.add_domain("example.org").unwrap();
    d.add_account("end@example.org", "pw").unwrap();
    d.add_alias("l1@example.org", &["l2@example.org"]).unwrap();
    d.add_alias("l2@example.org", &["l3@example.org"]).unwrap();
    d.add_alias("l3@example.org", &["end@example.org"]).unwrap();
    assert_eq!(
        deliver(&d, "l1@example.org"),
        [local("end@example.org", None)]
    );
    // Too deep is found when the alias is made, and at delivery for one made otherwise.
    assert!(matches!(
        d.add_alias("l0@example.org", &["l1@example.org"]),
        Err(DirectoryError::AliasTooDeep { limit: 3, .. })
    ));
    raw_alias(&d, "l0@example.org", "l1@example.org");
    assert!(matches!(
        d.resolve(&addr("l0@example.org")),
        Err(DirectoryError::AliasTooDeep { limit: 3, .. })
    ));
}

#[test]
fn alias_size_limit() {
    let d = SqliteDirectory::open_in_memory(DirectoryOptions {
        max_alias_expansion: 5,
        ..options()
    })
    .unwrap();
    d.add_domain("example.org").unwrap();
    let targets: Vec<String> = (0..10).map(|i| format!("u{i}@remote.example")).collect();
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    assert!(matches!(
        d.add_alias("big@example.org", &refs),
        Err(DirectoryError::AliasTooLarge { limit: 5, .. })
    ));
    for t in &targets {
        raw_alias(&d, "big@example.org", t);
    }
    assert!(matches!(
        d.resolve(&addr("big@example.org")),
        Err(DirectoryError::AliasTooLarge { limit: 5, .. })
    ));
}

#[test]
fn catch_all() {
    let d = populated();
    d.add_alias("@example.org", &["bob@example.org"]).unwrap();
    // Existing accounts and aliases win over the catch-all.
    assert_eq!(
        deliver(&d, "alice@example.org"),
        [local("alice@example.org", None)]
    );
    assert_eq!(
        deliver(&d, "alice+x@example.org"),
        [local("alice@example.org", Some("x"))]
    );
    d.add_alias("info@example.org", &["alice@example.org"])
        .unwrap();
    assert_eq!(
        deliver(&d, "info@example.org"),
        [local("alice@example.org", None)]
    );
    // Unknown local parts go to the catch-all, without detail.
    assert_eq!(
        deliver(&d, "random@example.org"),
        [local("bob@example.org", None)]
    );
    assert_eq!(
        deliver(&d, "random+x@example.org"),
        [local("bob@example.org", None)]
    );
    // A catch-all pointing back into its own domain's unknown names is a loop: refused,
    // and one already present terminates.
    d.remove_alias("@example.org", None).unwrap();
    assert!(matches!(
        d.add_alias("@example.org", &["nobody@example.org", "bob@example.org"]),
        Err(DirectoryError::AliasLoop(_))
    ));
    raw_alias(&d, "@example.org", "nobody@example.org");
    raw_alias(&d, "@example.org", "bob@example.org");
    assert_eq!(
        deliver(&d, "zzz@example.org"),
        [local("bob@example.org", None)]
    );
}

#[test]
fn expand_is_strict() {
    let d = populated();
    d.add_alias("@example.org", &["bob@example.org"]).unwrap();
    d.add_alias(
        "list@example.org",
        &["alice@example.org", "x@remote.example"],
    )
    .unwrap();
    assert_eq!(
        d.expand(&addr("list@example.org")).unwrap(),
        Resolution::Deliver(vec![
            local("alice@example.org", None),
            Destination::Remote("x@remote.example".into())
        ])
    );
    assert_eq!(
        d.expand(&addr("random@example.org")).unwrap(),
        Resolution::NotFound
    );
    assert_eq!(
        d.expand(&addr("alice+x@example.org")).unwrap(),
        Resolution::NotFound
    );
    assert_eq!(
        d.expand(&addr("list@remote.example")).unwrap(),
        Resolution::NotLocal
    );
}

#[test]
fn routing_tricks_are_not_relaying() {
    let d = populated();
    for trick in [
        "alice%remote.example@example.org",
        "remote.example!alice@example.org",
        "@example.org:alice@remote.example@example.org",
        "@a:alice@example.org",
        "alice@remote.example@example.org",
        "\"alice@remote.example\"@example.org",
    ] {
        let a = addr(trick);
        assert_eq!(a.domain(), "example.org", "{trick}");
        assert_eq!(d.resolve(&a).unwrap(), Resolution::NotFound, "{trick}");
    }
    // With a catch-all they go to the catch-all's (local) target, never elsewhere.
    d.add_alias("@example.org", &["bob@example.org"]).unwrap();
    assert_eq!(
        deliver(&d, "alice%remote.example@example.org"),
        [local("bob@example.org", None)]
    );
    // A source route to a remote domain is not local at all.
    assert_eq!(
        d.resolve(&addr("@example.org:alice@remote.example"))
            .unwrap(),
        Resolution::NotLocal
    );
}

#[test]
fn dangling_targets_are_skipped() {
    let d = populated();
    d.add_alias(
        "pair@example.org",
        &["alice@example.org", "bob@example.org"],
    )
    .unwrap();
    d.remove_account("bob@example.org").unwrap();
    assert_eq!(
        deliver(&d, "pair@example.org"),
        [local("alice@example.org", None)]
    );
    d.remove_account("alice@example.org").unwrap();
    assert_eq!(
        d.resolve(&addr("pair@example.org")).unwrap(),
        Resolution::NotFound
    );
}

#[test]
fn file_database_sees_changes_from_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.sqlite");
    let server = SqliteDirectory::open_with(&path, options()).unwrap();
    let cli = SqliteDirectory::open_with(&path, options()).unwrap();
    cli.add_domain("example.org").unwrap();
    assert!(server.is_local_domain("example.org").unwrap());
    cli.add_account("alice@example.org", "pw").unwrap();
    assert!(server
        .authenticate("alice@example.org", b"pw")
        .unwrap()
        .is_some());
    cli.set_password("alice@example.org", "pw2").unwrap();
    assert!(server
        .authenticate("alice@example.org", b"pw")
        .unwrap()
        .is_none());
    assert!(server
        .authenticate("alice@example.org", b"pw2")
        .unwrap()
        .is_some());
    cli.set_enabled("alice@example.org", false).unwrap();
    assert!(server
        .authenticate("alice@example.org", b"pw2")
        .unwrap()
        .is_none());
    drop(server);
    drop(cli);
    // Reopening keeps the data and the schema version.
    let again = SqliteDirectory::open_with(&path, options()).unwrap();
    assert_eq!(again.list_accounts(None).unwrap().len(), 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn refuses_newer_schema_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/db.sqlite");
    let e = SqliteDirectory::open_with(&missing, options()).unwrap_err();
    assert!(matches!(e, DirectoryError::Open { .. }));
    assert!(e.to_string().contains("no/such/dir"), "{e}");
    let newer = dir.path().join("newer.sqlite");
    SqliteDirectory::open_with(&newer, options()).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    assert!(matches!(
        SqliteDirectory::open_with(&newer, options()),
        Err(DirectoryError::SchemaTooNew { found: 99, .. })
    ));
    let foreign = dir.path().join("foreign.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    assert!(matches!(
        SqliteDirectory::open_with(&foreign, options()),
        Err(DirectoryError::Corrupt(_))
    ));
}

#[test]
fn sasl_against_directory() {
    let d = Arc::new(populated());
    let mut s = SaslSession::new(SaslMechanism::Plain, d.clone());
    let step = s.start(Some(b"\0alice@example.org\0alice-pw")).unwrap();
    assert_eq!(
        step,
        SaslStep::Done(Credentials {
            account: "alice@example.org".into(),
            authzid: None
        })
    );
    let mut s = SaslSession::new(SaslMechanism::Login, d.clone());
    s.start(None).unwrap();
    s.step(b"bob@example.org").unwrap();
    assert!(matches!(
        s.step(b"wrong"),
        Err(SaslError::AuthenticationFailed { .. })
    ));
}

#[test]
fn unknown_account_costs_a_verification() {
    // Timing equalisation: an unknown account is checked against a dummy argon2id
    // hash, created on the first authentication of any kind.
    let d = populated();
    assert!(d.dummy_hash_initialised_for_tests().is_none());
    assert_eq!(d.authenticate("ghost@example.org", b"x").unwrap(), None);
    assert!(d
        .dummy_hash_initialised_for_tests()
        .is_some_and(|h| h.starts_with("$argon2id$")));
}

#[test]
fn concurrent_use_from_threads() {
    let d = Arc::new(populated());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let d = d.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let name = format!("t{i}-{j}@example.org");
                    d.add_account(&name, "pw").unwrap();
                    assert!(d.authenticate(&name, b"pw").unwrap().is_some());
                    assert!(d
                        .authenticate("alice@example.org", b"alice-pw")
                        .unwrap()
                        .is_some());
                    assert!(matches!(
                        d.resolve(&addr(&name)).unwrap(),
                        Resolution::Deliver(_)
                    ));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(d.list_accounts(None).unwrap().len(), 42);
}

// ----- SCRAM keys ----------------------------------------------------------------

fn scram_keys(d: &SqliteDirectory, a: &str) -> Option<sasl::ScramCredentials> {
    d.scram_credentials(a, scram::SCRAM_SHA_256).unwrap()
}

/// Whether `password` produces the stored keys (RFC 5802 §3).
fn keys_match(c: &sasl::ScramCredentials, password: &str) -> bool {
    let k = scram::derive_keys(password.as_bytes(), &c.salt, c.iterations);
    k.stored_key[..] == c.stored_key[..] && k.server_key[..] == c.server_key[..]
}

#[test]
fn scram_keys_follow_the_password() {
    let d = populated();
    let alice = scram_keys(&d, "Alice@Example.org").expect("add_account stores keys");
    assert_eq!(alice.account, "alice@example.org");
    assert_eq!(alice.iterations, scram::MIN_ITERATIONS);
    assert_eq!(alice.salt.len(), scram::SALT_LEN);
    assert!(keys_match(&alice, "alice-pw"));
    assert!(
        d.get_account("alice@example.org")
            .unwrap()
            .unwrap()
            .has_scram_keys
    );

    d.set_password("alice@example.org", "new pw").unwrap();
    let new = scram_keys(&d, "alice@example.org").unwrap();
    assert!(keys_match(&new, "new pw"));
    assert_ne!(new.salt, alice.salt, "a new password gets a new salt");

    // Disabled accounts have no usable keys; enabled again, they do.
    d.set_enabled("alice@example.org", false).unwrap();
    assert!(scram_keys(&d, "alice@example.org").is_none());
    d.set_enabled("alice@example.org", true).unwrap();
    assert!(scram_keys(&d, "alice@example.org").is_some());

    // An imported hash replaces the password: the old keys must go.
    d.set_password_hash(
        "alice@example.org",
        &format!("{{SHA512-CRYPT}}{SHA512_HUNTER2}"),
    )
    .unwrap();
    assert!(scram_keys(&d, "alice@example.org").is_none());
    assert!(
        !d.get_account("alice@example.org")
            .unwrap()
            .unwrap()
            .has_scram_keys
    );

    // Gone with the account.
    d.remove_account("bob@example.org").unwrap();
    assert!(scram_keys(&d, "bob@example.org").is_none());
    let n: i64 = d
        .lock_for_tests()
        .query_row(
            "SELECT count(*) FROM scram_keys WHERE address = 'bob@example.org'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    assert!(scram_keys(&d, "nobody@example.org").is_none());
    assert!(scram_keys(&d, "not an address").is_none());
}

#[test]
fn imported_hash_gains_scram_keys_at_first_plaintext_login() {
    let d = populated();
    d.add_account_with_hash("carol@example.org", SHA512_HUNTER2)
        .unwrap();
    assert!(scram_keys(&d, "carol@example.org").is_none());
    assert!(
        !d.get_account("carol@example.org")
            .unwrap()
            .unwrap()
            .has_scram_keys
    );
    assert_eq!(d.authenticate("carol@example.org", b"wrong").unwrap(), None);
    assert!(
        scram_keys(&d, "carol@example.org").is_none(),
        "not on a failure"
    );
    assert!(d
        .authenticate("carol@example.org", b"hunter2")
        .unwrap()
        .is_some());
    let keys = scram_keys(&d, "carol@example.org").expect("made at login");
    assert!(keys_match(&keys, "hunter2"));
    // Not re-derived at every login.
    assert!(d
        .authenticate("carol@example.org", b"hunter2")
        .unwrap()
        .is_some());
    assert_eq!(scram_keys(&d, "carol@example.org").unwrap(), keys);
}

#[test]
fn weaker_scram_keys_are_rederived_at_login() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let weak = SqliteDirectory::open_with(&path, options()).unwrap();
    weak.add_domain("example.org").unwrap();
    weak.add_account("alice@example.org", "pw").unwrap();
    drop(weak);
    let strong = SqliteDirectory::open_with(
        &path,
        DirectoryOptions {
            password_params: PasswordParams {
                scram_iterations: 5000,
                ..PasswordParams::insecure_fast_for_tests()
            },
            ..options()
        },
    )
    .unwrap();
    assert_eq!(
        scram_keys(&strong, "alice@example.org").unwrap().iterations,
        4096
    );
    assert!(strong
        .authenticate("alice@example.org", b"pw")
        .unwrap()
        .is_some());
    let keys = scram_keys(&strong, "alice@example.org").unwrap();
    assert_eq!(keys.iterations, 5000);
    assert!(keys_match(&keys, "pw"));
}

#[test]
fn non_ascii_passwords_get_no_scram_keys() {
    // RFC 5802 §2.2: without SASLprep, non-ASCII passwords have no SCRAM form.
    let d = populated();
    d.add_account("carol@example.org", "pässwort").unwrap();
    assert!(scram_keys(&d, "carol@example.org").is_none());
    assert!(d
        .authenticate("carol@example.org", "pässwort".as_bytes())
        .unwrap()
        .is_some());
    assert!(scram_keys(&d, "carol@example.org").is_none());
}

#[test]
fn scram_decoy_is_stable_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let d = SqliteDirectory::open_with(&path, options()).unwrap();
    let (salt, iterations) = d
        .scram_decoy("nobody@example.org", scram::SCRAM_SHA_256)
        .unwrap();
    assert_eq!(iterations, scram::MIN_ITERATIONS);
    assert_eq!(
        d.scram_decoy("NoBody@Example.ORG", scram::SCRAM_SHA_256)
            .unwrap()
            .0,
        salt,
        "names are normalised like real ones"
    );
    assert_ne!(
        d.scram_decoy("other@example.org", scram::SCRAM_SHA_256)
            .unwrap()
            .0,
        salt
    );
    drop(d);
    let d = SqliteDirectory::open_with(&path, options()).unwrap();
    assert_eq!(
        d.scram_decoy("nobody@example.org", scram::SCRAM_SHA_256)
            .unwrap()
            .0,
        salt
    );
    // Another directory has another secret.
    assert_ne!(
        mem()
            .scram_decoy("nobody@example.org", scram::SCRAM_SHA_256)
            .unwrap()
            .0,
        salt
    );
}

#[test]
fn malformed_stored_legacy_hashes_fail_closed() {
    // A hash damaged in the database (or by hand) refuses every password, including
    // the one it once matched, and is left in place for the administrator to see.
    let d = populated();
    for damaged in [
        "$1$saltsalt$ZliGyAN3DciDHEkDboonh",
        "{SSHA512}CQj2OMeSV1K4Kz8wNHTkkitd/XQx",
        "{SSHA512}not base64!",
        "{SHA}87u9ZqY9S/F0eUBXjsPQEDUw4h0",
        "{PLAIN}",
        "CQj2OMeSV1K4Kz8wNHTkkitd/XQxB8mQzPGYOt76WzM2ko/0qvubJAqUj0swnt2KpZpr9Ye4yk9Lek3zAD/HhMCf6Hw=",
    ] {
        d.lock_for_tests()
            .execute(
                "UPDATE accounts SET password_hash = ?1 WHERE address = 'bob@example.org'",
                [damaged],
            )
            .unwrap();
        for pw in [&b"hunter2"[..], b"", damaged.as_bytes()] {
            assert_eq!(
                d.authenticate("bob@example.org", pw).unwrap(),
                None,
                "{damaged}"
            );
        }
        assert_eq!(
            d.export_password_hash("bob@example.org")
                .unwrap()
                .as_deref(),
            Some(damaged)
        );
        assert_eq!(
            d.get_account("bob@example.org").unwrap().unwrap().hash_scheme,
            password::identify(damaged).ok().map(|(s, _)| s)
        );
    }
}

#[test]
fn file_backed_reads_use_the_pool_and_see_committed_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Arc::new(
        SqliteDirectory::open_with(
            tmp.path().join("directory.db"),
            DirectoryOptions {
                read_connections: 2,
                ..options()
            },
        )
        .unwrap(),
    );
    d.add_domain("example.org").unwrap();
    d.add_account("alice@example.org", "pw").unwrap();
    let alice = Address::parse("alice@example.org").unwrap();
    // More readers at once than connections: they wait for each other, none fails.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let d = d.clone();
            let alice = alice.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    assert!(matches!(d.resolve(&alice).unwrap(), Resolution::Deliver(_)));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A write through the writer is seen by the next read through a reader.
    d.add_account("bob@example.org", "pw").unwrap();
    let bob = Address::parse("bob@example.org").unwrap();
    assert!(matches!(d.resolve(&bob).unwrap(), Resolution::Deliver(_)));
    // Readers cannot write.
    let reader = d.read();
    assert!(reader
        .execute(
            "DELETE FROM accounts WHERE address = 'alice@example.org'",
            []
        )
        .is_err());
}

#[tokio::test]
async fn the_trait_answers_from_blocking_threads() {
    let d: Arc<dyn Directory> = Arc::new(populated());
    let alice = Address::parse("alice@example.org").unwrap();
    assert!(matches!(
        d.resolve(&alice).await.unwrap(),
        Resolution::Deliver(_)
    ));
    assert!(d.is_local_domain("EXAMPLE.org").await.unwrap());
    assert!(!d.is_local_domain("remote.test").await.unwrap());
    assert_eq!(d.domains().await.unwrap()[0].name, "example.org");
    assert!(d.account("alice@example.org").await.unwrap().is_some());
    assert_eq!(d.subaddress_separator(), Some('+'));
}

fn fa(address: &str, targets: &[&str]) -> FileAlias {
    FileAlias {
        address: address.into(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
    }
}

#[test]
fn file_aliases_replace_only_their_own_entries() {
    let d = populated();
    d.add_alias("admin@example.org", &["alice@example.org"])
        .unwrap();
    let src = "file:/etc/aliases";
    let r = d
        .replace_file_aliases(
            src,
            &[
                fa(
                    "staff@example.org",
                    &["alice@example.org", "bob@example.org", "x@remote.test"],
                ),
                fa(
                    "log@example.org",
                    &["|/usr/bin/logger -t mail", "/var/mail/archive"],
                ),
                fa("admin@example.org", &["bob@example.org"]),
                fa("alice@example.org", &["bob@example.org"]),
                fa("ghost@example.org", &["nobody@example.org"]),
            ],
        )
        .unwrap();
    assert_eq!(
        r.imported,
        ["staff@example.org", "log@example.org", "ghost@example.org"]
    );
    assert_eq!(
        r.skipped.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [2, 3]
    );
    assert!(
        r.skipped[0].1.contains("postern alias add"),
        "{:?}",
        r.skipped
    );
    assert!(r.skipped[1].1.contains("is an account"));
    assert_eq!(r.dangling, [(4, "nobody@example.org".to_string())]);
    assert_eq!(
        deliver(&d, "staff@example.org"),
        [
            local("alice@example.org", None),
            local("bob@example.org", None),
            Destination::Remote("x@remote.test".into())
        ]
    );
    assert_eq!(
        deliver(&d, "log@example.org"),
        [
            Destination::File {
                alias: "log@example.org".into(),
                path: "/var/mail/archive".into()
            },
            Destination::Command {
                alias: "log@example.org".into(),
                command: "/usr/bin/logger -t mail".into()
            },
        ]
    );
    // The admin's alias is untouched.
    assert_eq!(
        d.alias_targets("admin@example.org").unwrap(),
        ["alice@example.org"]
    );
    let listed = d.list_aliases(Some("example.org")).unwrap();
    let source = |a: &str| {
        listed
            .iter()
            .find(|x| x.address == a)
            .unwrap()
            .source
            .clone()
    };
    assert_eq!(source("admin@example.org"), None);
    assert_eq!(source("log@example.org").as_deref(), Some(src));
    // One command target removed by its text, as `alias remove` is given it.
    assert_eq!(
        d.remove_alias("log@example.org", Some("|/usr/bin/logger -t mail"))
            .unwrap(),
        1
    );

    // Import again without staff: it is removed, the others stay.
    let r = d
        .replace_file_aliases(src, &[fa("log@example.org", &["alice@example.org"])])
        .unwrap();
    assert_eq!(r.imported, ["log@example.org"]);
    assert_eq!(r.removed, ["ghost@example.org", "staff@example.org"]);
    assert_eq!(
        d.resolve(&addr("staff@example.org")).unwrap(),
        Resolution::NotFound
    );
    assert_eq!(
        deliver(&d, "log@example.org"),
        [local("alice@example.org", None)]
    );
    assert_eq!(
        d.alias_targets("admin@example.org").unwrap(),
        ["alice@example.org"]
    );
}

#[test]
fn file_alias_loops_and_bad_entries_change_nothing() {
    let d = populated();
    let src = "file:/etc/aliases";
    d.replace_file_aliases(src, &[fa("keep@example.org", &["alice@example.org"])])
        .unwrap();
    let e = d
        .replace_file_aliases(
            src,
            &[
                fa("a@example.org", &["b@example.org"]),
                fa("b@example.org", &["a@example.org"]),
            ],
        )
        .unwrap_err();
    assert!(matches!(e.error, DirectoryError::AliasLoop(_)), "{e}");
    assert_eq!(e.index, Some(0));
    let e = d
        .replace_file_aliases(src, &[fa("x@elsewhere.test", &["alice@example.org"])])
        .unwrap_err();
    assert!(matches!(e.error, DirectoryError::NoSuchDomain(_)), "{e}");
    // Still the first import.
    assert_eq!(
        deliver(&d, "keep@example.org"),
        [local("alice@example.org", None)]
    );
    assert_eq!(
        d.resolve(&addr("a@example.org")).unwrap(),
        Resolution::NotFound
    );
    // `alias add` still refuses command targets: only an import may store them.
    assert!(d.add_alias("p@example.org", &["|/bin/true"]).is_err());
}

/// The lookup cache never answers differently from the database: a change committed by another
/// handle (another process, like `postern user add` beside `serve`) is seen at the next lookup.
#[tokio::test]
async fn cached_lookups_see_changes_made_by_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dir.db");
    let server = SqliteDirectory::open_with(&path, options()).unwrap();
    let admin = SqliteDirectory::open_with(&path, options()).unwrap();
    let d: Arc<dyn Directory> = Arc::new(server.clone());
    let bob = addr("bob@example.org");

    // Misses, then hits, of every cached kind.
    for _ in 0..2 {
        assert!(!d.is_local_domain("example.org").await.unwrap());
        assert_eq!(d.resolve(&bob).await.unwrap(), Resolution::NotLocal);
        assert_eq!(d.account("bob@example.org").await.unwrap(), None);
    }
    admin.add_domain("example.org").unwrap();
    assert!(d.is_local_domain("example.org").await.unwrap());
    assert_eq!(d.resolve(&bob).await.unwrap(), Resolution::NotFound);
    admin.add_account("bob@example.org", "pw").unwrap();
    assert!(matches!(
        d.resolve(&bob).await.unwrap(),
        Resolution::Deliver(_)
    ));
    assert!(d.account("bob@example.org").await.unwrap().unwrap().enabled);
    admin.set_enabled("bob@example.org", false).unwrap();
    assert!(!d.account("bob@example.org").await.unwrap().unwrap().enabled);
    // A change through the server's own handle is seen too.
    server.remove_account("bob@example.org").unwrap();
    assert_eq!(d.resolve(&bob).await.unwrap(), Resolution::NotFound);
    assert_eq!(d.account("bob@example.org").await.unwrap(), None);
}
