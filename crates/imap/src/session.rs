//! The per-connection state machine (RFC 9051 §3): reading commands with their literals,
//! dispatching them by state, writing responses, and the untagged updates of the selected
//! mailbox.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_directory::{advertised_mechanisms, ChannelBindings, ClientAuth};
use postern_net::{
    trim_eol, CancellationToken, ChannelBindingKind, CleartextPolicy, IoSettings, LineError,
    LineIo, LongLine, MailStream, TlsContext,
};

use crate::parser::{self, Command, CommandKind};
use crate::response::{self, bad, bad_code, no_code, ok, Code, Data, Reply};
use crate::selected::Selected;
use crate::{utf7, Inner, UserGuard};

/// How a session ends or a read fails.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Reading from or writing to the connection failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The client closed the connection (EOF).
    #[error("client closed the connection")]
    Closed,
    /// No command within the autologout time (RFC 9051 §5.4).
    #[error("autologout timer expired")]
    Timeout,
    /// The server is shutting down; the session says BYE.
    #[error("server shutting down")]
    Shutdown,
    /// The client sent a line longer than the limit and the connection cannot recover.
    #[error("line too long")]
    LineTooLong,
    /// The client logged out (RFC 9051 §6.1.3).
    #[error("logout")]
    Logout,
    /// The selected mailbox was deleted or renamed elsewhere, so the session must end (RFC 9051 §7.1.5 BYE).
    #[error("selected mailbox became unavailable")]
    MailboxGone,
}

pub(crate) type SResult<T> = Result<T, SessionError>;

/// A stop in the connection layer, in the session's terms.
pub(crate) fn net_err(e: LineError) -> SessionError {
    match e {
        LineError::TooLong => SessionError::LineTooLong,
        LineError::Closed => SessionError::Closed,
        LineError::Timeout => SessionError::Timeout,
        LineError::Stopped => SessionError::Shutdown,
        LineError::Io(e) => SessionError::Io(e),
    }
}

/// How long a literal's octets may take to arrive, and the client to read our output.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);

/// RFC 9051 §3 connection states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
}

/// One IMAP connection.
pub(crate) struct Session {
    pub(crate) srv: Arc<Inner>,
    /// The connection: input buffer, gathered output, TLS.
    pub(crate) io: LineIo,
    /// This client's door to the directory (every login path, one throttle).
    pub(crate) auth: Arc<ClientAuth>,
    pub(crate) tls_ctx: Option<TlsContext>,
    pub(crate) shutdown: CancellationToken,
    /// The server's own shutdown token: `shutdown` is a child of it after login, which an
    /// admin's kick cancels alone.
    pub(crate) server_shutdown: CancellationToken,
    /// The session's entry in the registry `postern kick` uses.
    pub(crate) registration: Option<postern_net::Registration>,
    pub(crate) user: Option<String>,
    pub(crate) user_guard: Option<UserGuard>,
    pub(crate) sel: Option<Selected>,
    /// RFC 9051 ENABLE IMAP4rev2.
    pub(crate) rev2: bool,
    /// RFC 6855 UTF8=ACCEPT enabled.
    pub(crate) utf8: bool,
    /// RFC 7162 CONDSTORE enabled (explicitly or by a CONDSTORE-using command).
    pub(crate) condstore: bool,
    /// RFC 7162 QRESYNC enabled.
    pub(crate) qresync: bool,
    /// RFC 5182 §2.1 search result variable `$`: the UIDs a SEARCH/SORT RETURN (SAVE) saved.
    pub(crate) saved: Vec<u32>,
}

/// RFC 5182 §2.1: `$` as a search key is the saved result, whether given as a sequence set
/// or after UID.
fn replace_saved_key(key: &mut parser::SearchKey, uids: &parser::SeqSet) {
    use parser::SearchKey as K;
    match key {
        K::Seq(set) | K::Uid(set) if set.is_saved() => *key = K::Uid(uids.clone()),
        K::Not(k) => replace_saved_key(k, uids),
        K::Or(a, b) => {
            replace_saved_key(a, uids);
            replace_saved_key(b, uids);
        }
        K::And(ks) => ks.iter_mut().for_each(|k| replace_saved_key(k, uids)),
        _ => {}
    }
}

impl Session {
    pub(crate) fn new(
        srv: Arc<Inner>,
        stream: MailStream,
        peer: SocketAddr,
        tls_ctx: Option<TlsContext>,
        shutdown: CancellationToken,
    ) -> Session {
        let settings = IoSettings {
            read_chunk: 4096,
            write_timeout: TRANSFER_TIMEOUT,
            // Pipelined responses are held back up to this much (RFC 9051 §5.5).
            pipeline_limit: 64 * 1024,
            // A too long command line ends the session with BYE: no need to read to its end.
            long_line: LongLine::Stop,
            ..IoSettings::default()
        };
        let mut io = LineIo::new(stream, peer, settings);
        io.set_stop(Some(shutdown.clone()));
        Session {
            auth: srv.gate.client("imap", peer.ip()),
            srv,
            io,
            tls_ctx,
            server_shutdown: shutdown.clone(),
            shutdown,
            registration: None,
            user: None,
            user_guard: None,
            sel: None,
            rev2: false,
            utf8: false,
            condstore: false,
            qresync: false,
            saved: Vec::new(),
        }
    }

    pub(crate) fn state(&self) -> State {
        if self.user.is_none() {
            State::NotAuthenticated
        } else if self.sel.is_some() {
            State::Selected
        } else {
            State::Authenticated
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.io.is_tls()
    }

    /// Passwords may be sent: TLS, trusted loopback, or allowed by the admin (RFC 9051 §11.1).
    pub(crate) fn plaintext_ok(&self) -> bool {
        CleartextPolicy {
            trust_loopback: self.srv.limits.trust_loopback,
            allow_plaintext: self.srv.config.auth.allow_plaintext,
        }
        .allows(self.is_tls(), &self.io.peer().ip())
    }

    /// The connection's channel binding data (RFC 5056), for SCRAM-SHA-256-PLUS: taken when
    /// it is needed, so after STARTTLS it is the TLS channel's.
    pub(crate) fn channel_bindings(&self) -> ChannelBindings {
        ChannelBindings::new(
            self.io.channel_binding(ChannelBindingKind::TlsExporter),
            self.io
                .channel_binding(ChannelBindingKind::TlsServerEndPoint),
        )
    }

    /// RFC 9051 §7.2.2 capability list for the current state.
    pub(crate) fn capabilities(&self) -> String {
        let mut c = String::from("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE");
        if self.user.is_none() {
            if !self.is_tls() && self.tls_ctx.is_some() {
                c.push_str(" STARTTLS");
            }
            // SCRAM sends no password, so it is offered even where LOGIN is disabled.
            let offer_plus = self.channel_bindings().advertise_plus();
            for m in advertised_mechanisms(self.plaintext_ok(), offer_plus) {
                c.push_str(" AUTH=");
                c.push_str(m.name());
            }
            if !self.plaintext_ok() {
                c.push_str(" LOGINDISABLED");
            }
        } else {
            c.push_str(
                " UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS \
                 UIDPLUS MOVE CONDSTORE QRESYNC ESEARCH SORT SORT=DISPLAY THREAD=REFERENCES \
                 THREAD=ORDEREDSUBJECT QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE \
                 UTF8=ACCEPT BINARY WITHIN SEARCHRES I18NLEVEL=1",
            );
            c.push_str(&format!(" APPENDLIMIT={}", self.srv.limits.append_limit));
        }
        c
    }

    // ----- output ---------------------------------------------------------------------------

    /// One untagged response about the selected mailbox (see [`Data`]).
    pub(crate) fn data(&mut self, d: Data<'_>) {
        self.untagged(&d.render());
    }

    pub(crate) fn untagged(&mut self, line: &str) {
        let out = self.io.out_mut();
        out.extend_from_slice(b"* ");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    pub(crate) async fn flush(&mut self) -> SResult<()> {
        self.io.flush().await.map_err(net_err)
    }

    /// Flushes when the output buffer is large (long FETCH responses).
    pub(crate) async fn maybe_flush(&mut self) -> SResult<()> {
        if self.io.out_len() > 128 * 1024 {
            self.flush().await?;
        }
        Ok(())
    }

    // ----- input ----------------------------------------------------------------------------

    /// Whether a complete line is buffered.
    pub(crate) fn has_line(&self) -> bool {
        self.io.has_line()
    }

    /// Reads one line including its LF (at most `max` octets). Waiting for it writes the
    /// gathered output first, and ends at shutdown.
    pub(crate) async fn read_line(&mut self, max: usize, timeout: Duration) -> SResult<Vec<u8>> {
        let line = self.io.read_line_raw(max, timeout).await.map_err(net_err)?;
        Ok(line.to_vec())
    }

    async fn read_exact_into(&mut self, n: usize, dst: &mut Vec<u8>) -> SResult<()> {
        self.io
            .read_exact_into(n as u64, dst, TRANSFER_TIMEOUT)
            .await
            .map_err(net_err)
    }

    async fn skip_exact(&mut self, n: u64) -> SResult<()> {
        self.io.skip(n, TRANSFER_TIMEOUT).await.map_err(net_err)
    }

    fn idle_timeout(&self) -> Duration {
        if self.user.is_some() {
            self.srv.limits.autologout
        } else {
            self.srv.limits.login_timeout
        }
    }

    /// Reads one complete command with its literals. `Ok(None)` means the command was refused
    /// while reading (a response has been queued).
    async fn read_command(&mut self) -> SResult<Option<Vec<u8>>> {
        let max_line = self.srv.limits.max_line;
        let mut cmd = Vec::new();
        let mut first_line: Option<Vec<u8>> = None;
        loop {
            let t = self.idle_timeout();
            let line = self.io.read_line_raw(max_line, t).await.map_err(net_err)?;
            let start = cmd.len();
            cmd.extend_from_slice(line);
            let body = trim_eol(&cmd[start..]);
            if first_line.is_none() {
                first_line = Some(body.to_vec());
            }
            let Some(lit) = parser::literal_at_end(body) else {
                return Ok(Some(cmd));
            };
            let (tag, verb) = parser::peek_tag_verb(first_line.as_deref().unwrap_or_default());
            let tag = tag.unwrap_or_else(|| "*".into());
            let is_append = verb == "APPEND";
            let limit = if is_append {
                self.srv.limits.append_limit
            } else {
                self.srv.limits.max_literal
            };
            // RFC 3516 §4.2: literal8 only where the grammar allows it (APPEND data): refuse
            // at once instead of asking for the data.
            if lit.literal8 && !is_append {
                if lit.non_sync {
                    if lit.len > 2 * self.srv.limits.max_literal.max(1 << 20) {
                        return Err(SessionError::LineTooLong);
                    }
                    self.skip_exact(lit.len).await?;
                    self.discard_rest_of_command().await?;
                }
                self.io
                    .write(format!("{tag} BAD literal8 is only allowed in APPEND\r\n").as_bytes());
                return Ok(None);
            }
            let too_big = lit.len > limit
                || (!is_append && cmd.len() as u64 + lit.len > self.srv.limits.max_command);
            // RFC 7888 §4: LITERAL- limits non-synchronising literals to 4096 octets; we offer
            // LITERAL+, so any size up to the limit is fine.
            if too_big {
                if lit.non_sync {
                    if lit.len <= 2 * limit.max(1 << 20) {
                        // Swallow the literal and the rest of its command, then refuse.
                        self.skip_exact(lit.len).await?;
                        self.discard_rest_of_command().await?;
                        let refusal = no_code(Code::TooBig, "literal too large").tagged(&tag);
                        self.io.write(refusal.unwrap_or_default().as_bytes());
                        return Ok(None);
                    }
                    self.data(Data::Bye(Some(Code::TooBig), "literal too large"));
                    self.flush().await?;
                    return Err(SessionError::LineTooLong);
                }
                // RFC 7889 §4 / RFC 9051 §7.1: APPEND data too large is NO, any other BAD.
                let refusal = if is_append {
                    no_code(Code::TooBig, "literal too large")
                } else {
                    bad_code(Code::TooBig, "literal too large")
                };
                let line = refusal.tagged(&tag).unwrap_or_default();
                self.io.write(line.as_bytes());
                return Ok(None);
            }
            if !lit.non_sync {
                self.io.write(b"+ Ready for literal data\r\n");
                self.flush().await?;
            }
            self.read_exact_into(lit.len as usize, &mut cmd).await?;
        }
    }

    /// After a refused non-synchronising literal: drop the remaining lines of the command.
    async fn discard_rest_of_command(&mut self) -> SResult<()> {
        loop {
            let line = self
                .io
                .read_line_raw(self.srv.limits.max_line, TRANSFER_TIMEOUT)
                .await
                .map_err(net_err)?;
            match parser::literal_at_end(trim_eol(line)) {
                Some(l) if l.non_sync => self.skip_exact(l.len).await?,
                _ => return Ok(()),
            }
        }
    }

    // ----- mailbox names --------------------------------------------------------------------

    /// Client name → canonical store name (`/`-separated, UTF-8). RFC 3501 §5.1.3: without
    /// UTF8=ACCEPT or IMAP4rev2, a name with `&` must be modified UTF-7; one that is not is
    /// refused with NO (as Dovecot), not taken as raw octets.
    pub(crate) fn mailbox_in(&self, raw: &[u8]) -> Result<String, Reply> {
        self.name_in(raw)?
            .ok_or_else(|| no_code(Code::Cannot, "Mailbox name is not valid modified UTF-7"))
    }

    /// RFC 3501 §6.3.8-9: a LIST/LSUB reference or pattern; `None` when it is not valid
    /// modified UTF-7, and then it matches nothing (Dovecot answers OK with no entries).
    pub(crate) fn pattern_in(&self, raw: &[u8]) -> Result<Option<String>, Reply> {
        self.name_in(raw)
    }

    fn name_in(&self, raw: &[u8]) -> Result<Option<String>, Reply> {
        let name = if self.utf8 || self.rev2 {
            String::from_utf8(raw.to_vec()).map_err(|_| bad("mailbox name is not UTF-8"))?
        } else {
            match utf7::decode(raw) {
                Some(n) => n,
                None if raw.contains(&b'&') => return Ok(None),
                // 8-bit octets from a client that did not enable UTF8=ACCEPT: taken as UTF-8.
                None => String::from_utf8(raw.to_vec())
                    .map_err(|_| bad("mailbox name is not modified UTF-7"))?,
            }
        };
        let sep = self.srv.config.mail.hierarchy_separator;
        if sep != '/' {
            if name.contains('/') {
                return Err(no_code(Code::Cannot, "'/' is not allowed in mailbox names"));
            }
            return Ok(Some(name.replace(sep, "/")));
        }
        Ok(Some(name))
    }

    /// Canonical name → the client's form (wire-ready string).
    pub(crate) fn mailbox_out(&self, out: &mut Vec<u8>, name: &str) {
        let sep = self.srv.config.mail.hierarchy_separator;
        let shown = if sep != '/' {
            name.replace('/', &sep.to_string())
        } else {
            name.to_string()
        };
        if self.utf8 || self.rev2 {
            response::string_utf8(out, shown.as_bytes());
        } else {
            response::string(out, utf7::encode(&shown).as_bytes());
        }
    }

    pub(crate) fn account(&self) -> &str {
        self.user.as_deref().unwrap_or_default()
    }

    // ----- the loop -------------------------------------------------------------------------

    pub(crate) async fn run(&mut self) {
        let text = format!("{} IMAP4rev2 server ready", self.srv.config.hostname);
        self.data(Data::Ok(Code::Capability(self.capabilities()), &text));
        if self.flush().await.is_err() {
            return;
        }
        loop {
            let r = self.one_command().await;
            match r {
                Ok(()) => {}
                Err(SessionError::Logout) | Err(SessionError::Closed) => break,
                Err(SessionError::Io(e)) => {
                    tracing::debug!("i/o error: {e}");
                    break;
                }
                Err(SessionError::Timeout) => {
                    self.data(Data::Bye(None, "Autologout; idle for too long"));
                    let _ = self.flush().await;
                    break;
                }
                Err(SessionError::Shutdown) if !self.server_shutdown.is_cancelled() => {
                    self.data(Data::Bye(None, "Session ended by the administrator"));
                    let _ = self.flush().await;
                    break;
                }
                Err(SessionError::Shutdown) => {
                    self.data(Data::Bye(Some(Code::Unavailable), "Server shutting down"));
                    let _ = self.flush().await;
                    break;
                }
                Err(SessionError::LineTooLong) => {
                    self.data(Data::Bye(Some(Code::TooBig), "Command line too long"));
                    let _ = self.flush().await;
                    break;
                }
                Err(SessionError::MailboxGone) => {
                    self.data(Data::Bye(
                        Some(Code::Unavailable),
                        "The selected mailbox was deleted or renamed",
                    ));
                    let _ = self.flush().await;
                    break;
                }
            }
        }
        self.io.shutdown().await;
    }

    async fn one_command(&mut self) -> SResult<()> {
        let raw = match self.read_command().await? {
            Some(r) => r,
            None => return self.flush().await,
        };
        let cmd = match parser::parse_command(&raw) {
            Ok(c) => c,
            Err((tag, e)) => {
                let tag = tag.unwrap_or_else(|| "*".into());
                let text = e.to_string().replace(['\r', '\n'], " ");
                self.io.write(format!("{tag} BAD {text}\r\n").as_bytes());
                return self.flush().await;
            }
        };
        let tag = cmd.tag.clone();
        let reply = self.dispatch(cmd).await?;
        // RFC 9051 §7.4.1/§7.5: pending updates go out before the tagged response, except
        // that EXPUNGE is not sent after FETCH, STORE or SEARCH (handled per command).
        let Some(line) = reply.tagged(&tag) else {
            return self.flush().await;
        };
        self.io.write(line.as_bytes());
        self.flush_unless_pipelined().await
    }

    /// Flushes, unless the client has already sent the next command (RFC 9051 §5.5
    /// pipelining): then its response joins this one in one write, up to a bound. Reading
    /// flushes before it waits, so nothing is held back from a client that is waiting.
    async fn flush_unless_pipelined(&mut self) -> SResult<()> {
        if self.has_line() && self.io.out_len() < 64 * 1024 {
            return Ok(());
        }
        self.flush().await
    }

    async fn dispatch(&mut self, cmd: Command) -> SResult<Reply> {
        use CommandKind as C;
        let state = self.state();
        let needs_auth = !matches!(
            cmd.kind,
            C::Capability
                | C::Noop
                | C::Logout
                | C::StartTls
                | C::Authenticate { .. }
                | C::Login { .. }
                | C::Id
        );
        if needs_auth && state == State::NotAuthenticated {
            return Ok(bad("Not authenticated"));
        }
        let needs_selected = matches!(
            cmd.kind,
            C::Check
                | C::Close
                | C::Unselect
                | C::Expunge { .. }
                | C::Search { .. }
                | C::Fetch { .. }
                | C::Store { .. }
                | C::Copy { .. }
                | C::Sort { .. }
                | C::Thread { .. }
        );
        if needs_selected && state != State::Selected {
            return Ok(bad("No mailbox selected"));
        }
        let tag = cmd.tag;
        let mut kind = cmd.kind;
        if matches!(kind, C::Select { .. } | C::Close | C::Unselect) {
            // RFC 5182 §2.1: the search result variable is reset on SELECT, EXAMINE, CLOSE
            // and UNSELECT.
            self.saved.clear();
        }
        self.replace_saved(&mut kind);
        let allow_expunge_updates = !matches!(
            kind,
            C::Fetch { .. }
                | C::Store { .. }
                | C::Search { .. }
                | C::Sort { .. }
                | C::Thread { .. }
        );
        let reply = match kind {
            C::Capability => {
                let caps = self.capabilities();
                self.data(Data::Capability(&caps));
                ok("CAPABILITY completed")
            }
            C::Noop | C::Check => {
                if let Some(sel) = &self.sel {
                    let (a, m) = (self.account().to_string(), sel.name.clone());
                    let _ = self.srv.store.refresh(&a, &m).await;
                }
                ok("NOOP completed")
            }
            C::Logout => {
                self.data(Data::Bye(None, "Logging out"));
                self.io
                    .write(format!("{tag} OK LOGOUT completed\r\n").as_bytes());
                self.flush().await?;
                return Err(SessionError::Logout);
            }
            C::StartTls => return self.starttls(&tag).await,
            C::Authenticate { mechanism, initial } => {
                self.authenticate(&mechanism, initial).await?
            }
            C::Login { user, password } => self.login(user, password).await,
            C::Enable(caps) => self.enable(caps),
            C::Id => {
                self.untagged(&format!(
                    "ID (\"name\" \"postern\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ));
                ok("ID completed")
            }
            C::Namespace => {
                let sep = self.srv.config.mail.hierarchy_separator;
                self.untagged(&format!("NAMESPACE ((\"\" \"{sep}\")) NIL NIL"));
                ok("NAMESPACE completed")
            }
            C::Select {
                mailbox,
                examine,
                condstore,
                qresync,
            } => self.select(&mailbox, examine, condstore, qresync).await?,
            C::Create {
                mailbox,
                special_use,
            } => self.create(&mailbox, &special_use).await,
            C::Delete(m) => self.delete(&m).await,
            C::Rename(a, b) => self.rename(&a, &b).await,
            C::Subscribe(m) => self.subscribe(&m, true).await,
            C::Unsubscribe(m) => self.subscribe(&m, false).await,
            C::List {
                select,
                reference,
                patterns,
                ret,
                extended,
            } => {
                self.list(select, &reference, &patterns, ret, extended)
                    .await?
            }
            C::Lsub { reference, pattern } => self.lsub(&reference, &pattern).await?,
            C::Status { mailbox, items } => self.status(&mailbox, &items).await,
            C::Append { mailbox, messages } => self.append(&mailbox, messages).await,
            C::Idle => self.idle(&tag).await?,
            C::Close => self.close(true).await,
            C::Unselect => self.close(false).await,
            C::Expunge { uids } => self.expunge(uids).await?,
            C::Search { uid, ret, key } => self.search(&tag, uid, ret, key).await?,
            C::Fetch {
                uid,
                set,
                atts,
                changed_since,
                vanished,
            } => self.fetch(uid, set, atts, changed_since, vanished).await?,
            C::Store {
                uid,
                set,
                op,
                silent,
                flags,
                unchanged_since,
            } => {
                self.store(uid, set, op, silent, flags, unchanged_since)
                    .await?
            }
            C::Copy {
                uid,
                set,
                mailbox,
                is_move,
            } => self.copy(uid, set, &mailbox, is_move).await?,
            C::Sort {
                uid,
                criteria,
                key,
                ret,
            } => self.sort(&tag, uid, criteria, key, ret).await?,
            C::Thread {
                uid,
                references,
                key,
            } => self.thread(uid, references, key).await?,
            C::GetQuota(root) => self.get_quota(&root).await,
            C::GetQuotaRoot(m) => self.get_quota_root(&m).await,
            C::SetQuota => no_code(Code::NoPerm, "quotas are set by the administrator"),
        };
        if self.sel.is_some() {
            self.pump(allow_expunge_updates).await?;
        }
        Ok(reply)
    }

    /// RFC 5182 §2.1: replaces `$` by the saved result (UIDs of messages still in the view):
    /// as UIDs in UID commands and search keys, as sequence numbers in the others.
    fn replace_saved(&self, kind: &mut CommandKind) {
        use CommandKind as C;
        let Some(sel) = self.sel.as_ref() else {
            return;
        };
        let uids: Vec<u32> = self
            .saved
            .iter()
            .copied()
            .filter(|&u| sel.seq_of(u).is_some())
            .collect();
        let as_set = |nums: &[u32]| {
            parser::SeqSet(
                nums.iter()
                    .map(|&n| (parser::SeqNum::Num(n), parser::SeqNum::Num(n)))
                    .collect(),
            )
        };
        let uid_set = as_set(&uids);
        let seqs: Vec<u32> = uids
            .iter()
            .filter_map(|&u| sel.seq_of(u).map(|s| s as u32))
            .collect();
        let seq_set = as_set(&seqs);
        let fix = |uid: bool, set: &mut parser::SeqSet| {
            if set.is_saved() {
                *set = if uid {
                    uid_set.clone()
                } else {
                    seq_set.clone()
                };
            }
        };
        match kind {
            C::Fetch { uid, set, .. } | C::Store { uid, set, .. } | C::Copy { uid, set, .. } => {
                fix(*uid, set)
            }
            C::Expunge { uids: Some(set) } => fix(true, set),
            C::Search { key, .. } | C::Sort { key, .. } | C::Thread { key, .. } => {
                replace_saved_key(key, &uid_set)
            }
            _ => {}
        }
    }

    /// RFC 9051 §6.3.1 ENABLE
    fn enable(&mut self, caps: Vec<String>) -> Reply {
        let mut enabled = Vec::new();
        for c in caps {
            match c.as_str() {
                "IMAP4REV2" => {
                    self.rev2 = true;
                    enabled.push("IMAP4rev2");
                }
                "UTF8=ACCEPT" => {
                    self.utf8 = true;
                    enabled.push("UTF8=ACCEPT");
                }
                "CONDSTORE" => {
                    self.condstore = true;
                    enabled.push("CONDSTORE");
                }
                "QRESYNC" => {
                    self.condstore = true;
                    self.qresync = true;
                    enabled.push("QRESYNC");
                }
                _ => {}
            }
        }
        self.data(Data::Enabled(&enabled));
        ok("ENABLE completed")
    }

    /// RFC 9051 §6.2.1 STARTTLS
    async fn starttls(&mut self, tag: &str) -> SResult<Reply> {
        if self.is_tls() {
            return Ok(bad("TLS is already active"));
        }
        if self.user.is_some() {
            return Ok(bad("STARTTLS only before authentication"));
        }
        let Some(ctx) = self.tls_ctx.clone() else {
            return Ok(no_code(Code::Unavailable, "TLS is not available"));
        };
        self.io
            .write(format!("{tag} OK Begin TLS negotiation now\r\n").as_bytes());
        // RFC 9051 §6.2.1: what the client pipelined after STARTTLS is discarded.
        self.io.starttls(&ctx).await.map_err(net_err)?;
        Ok(Reply::Sent)
    }
}
