use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Source::Defaults)
}

#[test]
fn defaults_listen_on_standard_ports_everywhere() {
    let c = parse("").unwrap();
    assert_eq!(c.data_dir, PathBuf::from("./postern-data"));
    assert!(!c.hostname.is_empty());
    for s in Service::ALL {
        let addrs = c.listen.addresses(s);
        if !s.enabled_by_default() {
            assert!(addrs.is_empty(), "{s}");
            continue;
        }
        assert_eq!(addrs.len(), 1, "{s}");
        assert_eq!(addrs[0].port(), s.standard_port());
        assert!(addrs[0].ip().is_unspecified());
    }
    assert!(!c.auth.allow_plaintext);
    assert_eq!(c.mail.recipient_delimiter, "+");
    assert_eq!(c.tls.cert, None);
}

#[test]
fn full_example_from_the_docs_parses() {
    let c = parse(
        r#"
        hostname = "Mail.Example.org"
        data_dir = "/var/lib/postern"
        [listen]
        smtp = ["[::]:25"]
        submission = ["[::]:587", "127.0.0.1:1587"]
        submissions = ["[::]:465"]
        imap = ["[::]:143"]
        imaps = ["[::]:993"]
        pop3 = []
        pop3s = ["[::]:995"]
        managesieve = ["[::]:4190"]
        [tls]
        cert = "/etc/postern/fullchain.pem"
        key = "/etc/postern/key.pem"
        "#,
    )
    .unwrap();
    assert_eq!(c.hostname, "mail.example.org");
    assert_eq!(c.listen.submission.len(), 2);
    assert!(c.listen.pop3.is_empty());
    let enabled = c.enabled_services();
    assert!(!enabled.contains_key(&Service::Pop3));
    assert_eq!(enabled.len(), 7);
    assert_eq!(c.listen.managesieve, ["[::]:4190".parse().unwrap()]);
    assert_eq!(c.tls.key, Some(PathBuf::from("/etc/postern/key.pem")));
}

#[test]
fn managesieve_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.listen.managesieve, ["[::]:4190".parse().unwrap()]);
    assert_eq!(c.managesieve.idle_timeout_secs, 30 * 60);
    let c = parse("[managesieve]\nlogin_timeout_secs = 60").unwrap();
    assert_eq!(c.managesieve.login_timeout_secs, 60);
    // The quotas are [sieve]'s: one limit for every way scripts arrive.
    let e = parse("[managesieve]\nmax_scripts = 3")
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_scripts"), "{e}");
    let e = parse("[managesieve]\nidle_timeout_secs = 10")
        .unwrap_err()
        .to_string();
    assert!(e.contains("managesieve.idle_timeout_secs"), "{e}");
}

#[test]
fn unknown_keys_are_named() {
    let e = parse("hostnme = \"x\"").unwrap_err().to_string();
    assert!(e.contains("hostnme"), "{e}");
    let e = parse("[listen]\nimap4 = []").unwrap_err().to_string();
    assert!(e.contains("imap4"), "{e}");
    let e = parse("[tls]\ncertificate = \"a\"").unwrap_err().to_string();
    assert!(e.contains("certificate"), "{e}");
}

#[test]
fn bad_addresses_are_named_with_their_key() {
    let e = parse("[listen]\nimap = [\"127.0.0.1:143\", \"localhost\"]")
        .unwrap_err()
        .to_string();
    assert!(e.contains("listen.imap[1]"), "{e}");
    assert!(e.contains("localhost"), "{e}");
    let e = parse("[listen]\nsmtp = [\"1.2.3.4:99999\"]")
        .unwrap_err()
        .to_string();
    assert!(e.contains("listen.smtp[0]"), "{e}");
    let e = parse("[listen]\nsmtp = \"[::]:25\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("smtp"), "{e}");
}

#[test]
fn one_address_for_two_services_is_refused() {
    let e = parse("[listen]\nsmtp = [\"127.0.0.1:2525\"]\nimap = [\"127.0.0.1:2525\"]")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("listen.imap") && e.contains("listen.smtp"),
        "{e}"
    );
    // Port 0 means "any free port" and may repeat.
    parse("[listen]\nsmtp = [\"127.0.0.1:0\"]\nimap = [\"127.0.0.1:0\"]").unwrap();
}

#[test]
fn tls_needs_both_or_neither() {
    let e = parse("[tls]\ncert = \"/x.pem\"").unwrap_err().to_string();
    assert!(e.contains("tls.key"), "{e}");
    let e = parse("[tls]\nkey = \"/x.pem\"").unwrap_err().to_string();
    assert!(e.contains("tls.cert"), "{e}");
}

#[test]
fn unreadable_certificate_is_named() {
    let c =
        parse("[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"").unwrap();
    let e = c.check_files().unwrap_err().to_string();
    assert!(
        e.starts_with("tls.cert: cannot read /nonexistent/cert.pem"),
        "{e}"
    );
}

#[test]
fn bad_values_are_refused() {
    for (text, key) in [
        ("hostname = \"bad host\"", "hostname"),
        ("hostname = \"-x.org\"", "hostname"),
        ("data_dir = \"\"", "data_dir"),
        ("[limits]\nmax_connections = 0", "limits.max_connections"),
        (
            "[limits]\nmax_connections = 5\nmax_connections_per_ip = 6",
            "limits.max_connections_per_ip",
        ),
        ("[auth]\nmax_failures = 0", "auth.max_failures"),
        (
            "[mail]\nrecipient_delimiter = \"@\"",
            "mail.recipient_delimiter",
        ),
        (
            "[mail]\nrecipient_delimiter = \"+-\"",
            "mail.recipient_delimiter",
        ),
        (
            "[mail]\nhierarchy_separator = \"\\\\\"",
            "mail.hierarchy_separator",
        ),
        (
            "[listen]\nimap = [\"127.0.0.1:143\", \"127.0.0.1:143\"]",
            "listen.imap[1]",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
}

#[test]
fn errors_from_a_file_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    std::fs::write(&path, "[listen]\nsmtp = [\"nope\"]\n").unwrap();
    let e = Config::from_file(&path).unwrap_err().to_string();
    assert!(
        e.contains("postern.toml") && e.contains("listen.smtp[0]"),
        "{e}"
    );
    let e = Config::from_file(&dir.path().join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.toml"), "{e}");
}

#[test]
fn effective_config_round_trips() {
    let c = parse("hostname = \"mx.example.net\"\n[listen]\npop3 = []").unwrap();
    let again = parse(&c.to_toml()).unwrap();
    assert_eq!(again.hostname, "mx.example.net");
    assert!(again.listen.pop3.is_empty());
    assert_eq!(again.listen.imap, c.listen.imap);
    assert_eq!(again.mail.hierarchy_separator, '/');
}

#[test]
fn unprivileged_port_rule() {
    assert_eq!(Service::unprivileged_port(25), Some(10025));
    assert_eq!(Service::unprivileged_port(993), Some(10993));
    assert_eq!(Service::unprivileged_port(2525), None);
}

#[test]
fn hostname_rules() {
    assert!(check::hostname("localhost"));
    assert!(check::hostname("mail.example.org"));
    assert!(!check::hostname("a..b"));
    assert!(!check::hostname("a_b.org"));
}

#[test]
fn the_shipped_example_is_valid() {
    let text = include_str!("../../../postern.toml.example");
    let c = parse(text).unwrap();
    assert_eq!(c.hostname, "mail.example.org");
    assert_eq!(c.listen.submissions[0].port(), 465);
    assert_eq!(c.auth.max_failures, 10);
    assert_eq!(c.server.user.as_deref(), Some("postern"));
    assert_eq!(c.imap.append_limit, 64 * 1024 * 1024);
    assert_eq!(c.pop3.max_bad_commands, 20);
}

#[test]
fn smtp_defaults_are_safe() {
    let c = parse("").unwrap();
    assert_eq!(c.smtp.max_message_size, 26_214_400);
    assert_eq!(c.smtp.max_recipients, 100);
    assert_eq!(c.smtp.max_line_length, 2048);
    assert_eq!(c.smtp.command_timeout_secs, 300);
    assert_eq!(c.smtp.vrfy, VrfyPolicy::Ambiguous);
    assert_eq!(c.smtp.expn, ExpnPolicy::Off);
    assert!(c.smtp.sender_must_match_login);
    assert_eq!(c.smtp.max_received_headers, 50);
    let trusted = |ip: &str| {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        c.smtp.trusted_networks.iter().any(|n| n.contains(ip))
    };
    assert!(trusted("127.0.0.1"));
    assert!(trusted("127.0.0.2"));
    assert!(trusted("::1"));
    assert!(trusted("::ffff:127.0.0.1"));
    assert!(!trusted("192.0.2.1"));
    assert!(!trusted("::2"));
}

#[test]
fn smtp_section_parses_and_round_trips() {
    let c = parse(
        r#"
        [smtp]
        max_message_size = 1000000
        max_recipients = 5
        trusted_networks = ["192.0.2.0/24", "2001:db8::/32", "10.1.2.3", "0.0.0.0/0"]
        vrfy = "authenticated"
        expn = "authenticated"
        sender_must_match_login = false
        "#,
    )
    .unwrap();
    assert_eq!(c.smtp.max_recipients, 5);
    assert_eq!(c.smtp.trusted_networks.len(), 4);
    let n = c.smtp.trusted_networks[0];
    assert!(n.contains("192.0.2.200".parse().unwrap()));
    assert!(!n.contains("192.0.3.1".parse().unwrap()));
    assert!(c.smtp.trusted_networks[1].contains("2001:db8:1::5".parse().unwrap()));
    assert!(c.smtp.trusted_networks[2].contains("10.1.2.3".parse().unwrap()));
    assert!(!c.smtp.trusted_networks[2].contains("10.1.2.4".parse().unwrap()));
    assert!(c.smtp.trusted_networks[3].contains("8.8.8.8".parse().unwrap()));
    assert_eq!(c.smtp.vrfy, VrfyPolicy::Authenticated);
    let again = parse(&c.to_toml()).unwrap();
    assert_eq!(again.smtp.trusted_networks, c.smtp.trusted_networks);
    assert_eq!(again.smtp.expn, ExpnPolicy::Authenticated);
    assert!(!again.smtp.sender_must_match_login);
}

#[test]
fn bad_smtp_values_are_named() {
    for (text, key) in [
        ("[smtp]\nmax_message_size = 0", "smtp.max_message_size"),
        ("[smtp]\nmax_recipients = 0", "smtp.max_recipients"),
        ("[smtp]\nmax_line_length = 100", "smtp.max_line_length"),
        (
            "[smtp]\ntrusted_networks = [\"::1\", \"10.0.0.0/33\"]",
            "smtp.trusted_networks[1]",
        ),
        (
            "[smtp]\ntrusted_networks = [\"localhost\"]",
            "smtp.trusted_networks[0]",
        ),
        ("[smtp]\nvrfy = \"yes\"", "smtp.vrfy"),
        ("[smtp]\nexpn = \"on\"", "smtp.expn"),
        ("[smtp]\nmax_bad_commands = 0", "smtp.max_bad_commands"),
        ("[smtp]\nmaxrecipients = 3", "maxrecipients"),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
}

#[test]
fn queue_outbound_and_relay_sections() {
    let c = parse("").unwrap();
    assert_eq!(c.queue.retry_delays_secs, [300, 600, 1200, 2400, 3600]);
    assert_eq!(c.queue.delay_warning_secs, 14400);
    assert!(c.relay.is_none());
    assert!(c.outbound.routes.is_empty());
    let c = parse(
        r#"
        [queue]
        retry_delays_secs = [1, 2]
        give_up_after_secs = 60
        [outbound]
        require_tls = ["Bank.Example."]
        [outbound.routes]
        "B.test" = "127.0.0.1:2525"
        "c.test" = "[::1]:25"
        [relay]
        host = "smtp.example.net:465"
        tls = "implicit"
        username = "u"
        password = "p"
        "#,
    )
    .unwrap();
    assert_eq!(c.queue.retry_delays_secs, [1, 2]);
    assert_eq!(c.outbound.require_tls, ["bank.example"]);
    assert_eq!(c.outbound.routes["b.test"], "127.0.0.1:2525");
    let relay = c.relay.as_ref().unwrap();
    assert_eq!(relay.tls, RelayTls::Implicit);
    assert_eq!((relay.host.as_str(), relay.port), ("smtp.example.net", 465));
    assert!(
        !c.to_toml().contains("\"p\""),
        "the relay password is never printed"
    );
    // What check-config prints reads back as the same relay.
    let again = parse(&c.to_toml().replace("[relay]", "[relay]\npassword = \"p\"")).unwrap();
    assert_eq!(again.relay.as_ref(), Some(relay));
    let v6 = parse("[relay]\nhost = \"[2001:db8::1]:587\"").unwrap();
    let v6 = v6.relay.unwrap();
    assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 587));
    assert_eq!(v6.host_port(), "[2001:db8::1]:587");

    for (text, key) in [
        ("[queue]\nretry_delays_secs = []", "queue.retry_delays_secs"),
        ("[queue]\nconcurrency = 0", "queue.concurrency"),
        (
            "[outbound.routes]\n\"b.test\" = \"nowhere\"",
            "outbound.routes",
        ),
        (
            "[outbound]\nmax_connections = 2\nmax_connections_per_host = 3",
            "outbound.max_connections_per_host",
        ),
        ("[relay]\nhost = \"x:1\"\ntls = \"maybe\"", "relay.tls"),
        ("[relay]\nusername = \"u\"", "relay.host"),
        ("[outbound]\nbogus = 1", "bogus"),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn server_user_and_group() {
    let c = parse("[server]\nuser = \"postern\"\ngroup = \"mail\"").unwrap();
    assert_eq!(c.server.user.as_deref(), Some("postern"));
    assert_eq!(c.server.group.as_deref(), Some("mail"));
    assert!(parse("").unwrap().server.user.is_none());
    let e = parse("[server]\ngroup = \"mail\"").unwrap_err().to_string();
    assert!(e.contains("set server.user too"), "{e}");
    let e = parse("[server]\nuser = \"bad name\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("server.user"), "{e}");
    assert!(parse("[server]\nuid = 5").is_err());
}

#[test]
fn relay_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.secret");
    std::fs::write(&file, "s3cret with spaces\n").unwrap();
    let text = format!(
        "[relay]\nhost = \"smtp.example.net:587\"\nusername = \"me\"\npassword_file = \"{}\"\n",
        file.display()
    );
    let c = parse(&text).unwrap();
    let relay = c.relay.as_ref().unwrap();
    assert_eq!(relay.password.as_deref(), Some("s3cret with spaces"));
    // Printed by check-config: the file's name, never the password.
    let shown = c.to_toml();
    assert!(
        shown.contains("relay.secret") && !shown.contains("s3cret"),
        "{shown}"
    );

    let both = format!("{text}password = \"x\"\n");
    assert!(parse(&both).unwrap_err().to_string().contains("not both"));
    let missing = text.replace("relay.secret", "nonexistent");
    let e = parse(&missing).unwrap_err().to_string();
    assert!(e.contains("relay.password_file: cannot read"), "{e}");
    std::fs::write(&file, "\n").unwrap();
    assert!(parse(&text).unwrap_err().to_string().contains("is empty"));
}

#[test]
fn imap_and_pop3_sections() {
    let c = parse("").unwrap();
    assert_eq!(c.imap.max_connections_per_user, 200);
    assert_eq!(c.imap.append_limit, 64 * 1024 * 1024);
    assert_eq!(c.imap.idle_timeout_secs, 1800);
    assert_eq!(c.pop3.idle_timeout_secs, 600);
    assert!(c.pop3.apop);
    let c = parse(
        "[imap]\nmax_connections_per_user = 5\nappend_limit = 1000\nidle_timeout_secs = 3600\n\
         [pop3]\nidle_timeout_secs = 900\napop = false\nmax_auth_failures = 2\n",
    )
    .unwrap();
    assert_eq!(c.imap.max_connections_per_user, 5);
    assert_eq!(c.imap.append_limit, 1000);
    assert_eq!(c.imap.idle_timeout_secs, 3600);
    assert_eq!(c.pop3.idle_timeout_secs, 900);
    assert!(!c.pop3.apop);
    assert_eq!(c.pop3.max_auth_failures, 2);
    for (text, words) in [
        (
            "[imap]\nidle_timeout_secs = 60",
            "imap.idle_timeout_secs: 60 is below the 1800 that RFC 9051 §5.4 requires",
        ),
        (
            "[pop3]\nidle_timeout_secs = 599",
            "pop3.idle_timeout_secs: 599 is below the 600 that RFC 1939 §3 requires",
        ),
        (
            "[imap]\nmax_connections_per_user = 0",
            "imap.max_connections_per_user: must be greater than zero",
        ),
        ("[imap]\nappend_limt = 1", "unknown field `append_limt`"),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(words), "{text}: {e}");
    }
}

#[test]
fn sieve_defaults_are_safe() {
    let c = parse("").unwrap();
    assert!(c.sieve.enabled);
    assert_eq!(c.sieve.max_redirects, 4);
    assert_eq!(c.sieve.vacation_default_period_secs, 7 * 86_400);
    assert!(!c.sieve.fileinto_creates_folders);
    assert!(c.sieve.before.is_empty() && c.sieve.global_dir.is_none());
}

#[test]
fn sieve_section_is_read_and_checked() {
    let c = parse(
        "[sieve]\nbefore = [\"/etc/postern/before.sieve\"]\nglobal_dir = \"/etc/postern/sieve\"\nmax_redirects = 0\nfileinto_creates_folders = true\n",
    )
    .unwrap();
    assert_eq!(
        c.sieve.before,
        [std::path::PathBuf::from("/etc/postern/before.sieve")]
    );
    assert_eq!(c.sieve.max_redirects, 0);
    assert!(c.sieve.fileinto_creates_folders);
    let e = parse("[sieve]\nvacation_min_period_secs = 100\nvacation_default_period_secs = 50\n")
        .unwrap_err();
    assert!(e.to_string().contains("vacation periods"), "{e}");
    assert!(parse("[sieve]\nmax_actions = 0\n").is_err());
    assert!(parse("[sieve]\nsieve_before = []\n").is_err());
}

#[test]
fn outbound_transport_security_keys() {
    let c = parse("").unwrap();
    assert_eq!(c.dns.dnssec, Dnssec::Off);
    assert!(c.outbound.dane && c.outbound.mta_sts && c.outbound.extra_ca_file.is_none());
    let c =
        parse("[dns]\ndnssec = \"trust-ad\"\n[outbound]\ndane = false\nmta_sts = false").unwrap();
    assert_eq!(c.dns.dnssec, Dnssec::TrustAd);
    assert!(!c.outbound.dane && !c.outbound.mta_sts);
    let e = parse("[dns]\ndnssec = \"yes\"").unwrap_err().to_string();
    assert!(e.contains("dns.dnssec") && e.contains("trust-ad"), "{e}");
    let e = parse("[outbound]\nextra_ca_file = \"/nonexistent/ca.pem\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("outbound.extra_ca_file"), "{e}");
}

#[test]
fn tls_reports_ip_version_and_destination_limits() {
    let c = parse("").unwrap();
    let o = &c.outbound;
    assert!(o.tls_reports && o.tls_report_org.is_none() && o.tls_report_from.is_none());
    assert_eq!(o.ip_version, crate::IpVersion::Both);
    assert_eq!((o.max_connections_per_domain, o.domain_rate), (20, 0));
    let c = parse(
        "[outbound]\ntls_reports = false\ntls_report_org = \"Org\"\ntls_report_from = \"r@example.org\"\nip_version = \"ipv4\"\nmax_connections_per_domain = 3\ndomain_rate = 30\n[outbound.domain_rates]\n\"Big.Example.\" = 600\n",
    )
    .unwrap();
    let o = &c.outbound;
    assert!(!o.tls_reports);
    assert_eq!(o.tls_report_org.as_deref(), Some("Org"));
    assert_eq!(o.tls_report_from.as_deref(), Some("r@example.org"));
    assert_eq!(o.ip_version, crate::IpVersion::Ipv4);
    assert_eq!((o.max_connections_per_domain, o.domain_rate), (3, 30));
    assert_eq!(o.domain_rates.get("big.example"), Some(&600));
    for (bad, key) in [
        ("ip_version = \"ipv5\"", "outbound.ip_version"),
        ("ipv6 = false\nip_version = \"ipv6\"", "outbound.ip_version"),
        (
            "tls_report_from = \"not an address\"",
            "outbound.tls_report_from",
        ),
        (
            "max_connections_per_domain = 0",
            "outbound.max_connections_per_domain",
        ),
        (
            "[outbound.domain_rates]\n\"x.example\" = 0",
            "outbound.domain_rates",
        ),
    ] {
        let e = parse(&format!("[outbound]\n{bad}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{bad}: {e}");
    }
}
