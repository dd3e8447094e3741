//! The `sendmail` command line, as Postfix's sendmail(1) documents it: getopt-style options
//! (clustered flags, values attached or in the next argument) up to the first non-option or
//! `--`, then recipients. Options of Sendmail that make no sense here are accepted and ignored
//! where Postfix ignores them; anything else is a usage error (exit 64).

use super::request::{parse_notify, value_ok};
use postern_spool::{BodyType, Notify, Ret};
use std::path::PathBuf;

/// What the command is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `-bm` (the default): read a message on standard input and send it.
    Deliver,
    /// `-bs`: an SMTP session on standard input and output.
    Smtp,
    /// `-bp`, or called as `mailq`: list the queue.
    Mailq,
    /// `-bi`, `-I`, or called as `newaliases`: rebuild the aliases.
    Newaliases,
    /// `-q` with no interval: attempt every queued message now (Postfix: `postqueue -f`).
    Flush,
    /// `-bh`, `-bH`, `-q<interval>`: accepted, nothing to do (Postfix ignores them too).
    Nothing,
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub mode: Mode,
    /// `-C FILE`: postern's configuration file (Postfix: its configuration directory).
    pub config: Option<PathBuf>,
    /// `-f`/`-r`: `Some("")` is `<>`.
    pub from: Option<String>,
    /// `-F`.
    pub full_name: Option<String>,
    /// `-t`.
    pub extract: bool,
    /// `-i`/`-oi`: a line with a lone `.` does not end the message.
    pub ignore_dots: bool,
    /// `-v` (repeatable).
    pub verbose: u8,
    /// `-N`.
    pub notify: Option<Notify>,
    /// `-R`.
    pub ret: Option<Ret>,
    /// `-V`.
    pub envid: Option<String>,
    /// `-B`.
    pub body: Option<BodyType>,
    /// The recipient arguments.
    pub recipients: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: Mode::Deliver,
            config: None,
            from: None,
            full_name: None,
            extract: false,
            ignore_dots: false,
            verbose: 0,
            notify: None,
            ret: None,
            envid: None,
            body: None,
            recipients: Vec::new(),
        }
    }
}

/// A usage error, in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Usage(pub String);

/// `-f` and `-r`: the address, without the angle brackets; `<>` (or nothing) is the null sender.
fn sender(v: &str) -> String {
    let v = v.trim();
    let v = v
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(v);
    v.trim().to_string()
}

/// Options that take a value (Postfix's getopt string `B:C:F:GIL:N:R:UV:X:b:ce:f:h:imno:p:r:q:tvx`).
fn takes_value(c: char) -> bool {
    matches!(
        c,
        'B' | 'C' | 'F' | 'L' | 'N' | 'R' | 'V' | 'X' | 'b' | 'e' | 'f' | 'h' | 'o' | 'p' | 'r'
    )
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String], mut mode: Mode) -> Result<Options, Usage> {
    let mut o = Options {
        mode,
        ..Options::default()
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        if arg.starts_with("--") {
            return Err(Usage(format!("unknown option {arg}")));
        }
        let flags: Vec<char> = arg[1..].chars().collect();
        let mut k = 0;
        while k < flags.len() {
            let c = flags[k];
            k += 1;
            if c == 'q' {
                // -q alone: flush now; -q<interval>, -qR<site>, -qS<site>: ignored (daemon mode).
                let rest: String = flags[k..].iter().collect();
                mode = if rest.is_empty() {
                    Mode::Flush
                } else {
                    Mode::Nothing
                };
                break;
            }
            if !takes_value(c) {
                match c {
                    't' => o.extract = true,
                    'i' => o.ignore_dots = true,
                    'v' => o.verbose = o.verbose.saturating_add(1),
                    'I' => mode = Mode::Newaliases,
                    // -G gateway, -U initial submission, -c, -m, -n, -x: ignored by Postfix.
                    'G' | 'U' | 'c' | 'm' | 'n' | 'x' => {}
                    other => {
                        return Err(Usage(format!("unknown option -{other}")));
                    }
                }
                continue;
            }
            let value: String = if k < flags.len() {
                let v: String = flags[k..].iter().collect();
                k = flags.len();
                v
            } else {
                i += 1;
                match args.get(i) {
                    Some(v) => v.clone(),
                    None => return Err(Usage(format!("option -{c} needs a value"))),
                }
            };
            if !value_ok(&value) {
                return Err(Usage(format!(
                    "option -{c}: the value contains a line break"
                )));
            }
            match c {
                'b' => {
                    mode = match value.as_str() {
                        "m" => Mode::Deliver,
                        "s" => Mode::Smtp,
                        "p" => Mode::Mailq,
                        "i" => Mode::Newaliases,
                        "h" | "H" => Mode::Nothing,
                        "d" | "D" | "l" => {
                            return Err(Usage(format!(
                            "-b{value} (daemon mode) is not how postern runs: use `postern serve`"
                        )))
                        }
                        "v" => {
                            return Err(Usage(
                                "-bv (address verification reports) is not supported".into(),
                            ))
                        }
                        _ => return Err(Usage(format!("unknown mode -b{value}"))),
                    }
                }
                'B' => {
                    o.body = Some(if value.eq_ignore_ascii_case("7bit") {
                        BodyType::SevenBit
                    } else if value.eq_ignore_ascii_case("8bitmime") {
                        BodyType::EightBitMime
                    } else {
                        return Err(Usage(format!(
                            "-B {value}: the body type is 7BIT or 8BITMIME"
                        )));
                    })
                }
                'C' => o.config = Some(PathBuf::from(value)),
                'F' => o.full_name = Some(value),
                'f' | 'r' => o.from = Some(sender(&value)),
                'N' => {
                    o.notify = Some(parse_notify(&value).ok_or_else(|| {
                        Usage(format!(
                            "-N {value}: give never, or a comma list of success, delay, failure"
                        ))
                    })?)
                }
                'R' => {
                    o.ret = Some(if value.eq_ignore_ascii_case("full") {
                        Ret::Full
                    } else if value.eq_ignore_ascii_case("hdrs") {
                        Ret::Headers
                    } else {
                        return Err(Usage(format!("-R {value}: give full or hdrs")));
                    })
                }
                'V' => {
                    // RFC 3461 §4.4: ENVID is xtext on the wire, printable ASCII here.
                    if value.is_empty()
                        || value.len() > 100
                        || !value.bytes().all(|b| b.is_ascii_graphic())
                    {
                        return Err(Usage(format!(
                            "-V {value:?}: the envelope id is 1 to 100 printable ASCII characters"
                        )));
                    }
                    o.envid = Some(value)
                }
                // -oi: dots are not special; -o7, -o8, -om, -oA..., -od..., -oe...: ignored.
                'o' if value == "i" => o.ignore_dots = true,
                // -L label, -X log file, -e mode, -h hops, -p protocol: ignored by Postfix.
                _ => {}
            }
        }
        i += 1;
    }
    o.recipients = args[i..].to_vec();
    for r in &o.recipients {
        if !value_ok(r) || r.contains(' ') {
            return Err(Usage(format!("{r:?} is not a recipient address")));
        }
    }
    if let Some(name) = &o.full_name {
        if name.chars().any(char::is_control) {
            return Err(Usage("-F: the name contains control characters".into()));
        }
    }
    if let Some(f) = &o.from {
        if f.contains(char::is_whitespace) || f.chars().any(char::is_control) {
            return Err(Usage(format!("-f {f:?} is not an address")));
        }
    }
    o.mode = mode;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, Usage> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&args, Mode::Deliver)
    }

    #[test]
    fn common_command_lines() {
        // mutt: sendmail -oem -oi -- rcpt; mailx: sendmail -i rcpt; cron: sendmail -FCronDaemon -i -B8BITMIME -oem rcpt
        let o = p(&["-oem", "-oi", "--", "bob@example.org", "-carol"]).unwrap();
        assert!(o.ignore_dots);
        assert_eq!(o.recipients, ["bob@example.org", "-carol"]);
        let o = p(&["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "alice"]).unwrap();
        assert_eq!(o.full_name.as_deref(), Some("CronDaemon"));
        assert_eq!(o.body, Some(BodyType::EightBitMime));
        assert_eq!(o.recipients, ["alice"]);
        let o = p(&["-tif", "<>", "x@y"]).unwrap();
        assert!(o.extract && o.ignore_dots);
        assert_eq!(o.from.as_deref(), Some(""));
        let o = p(&[
            "-r",
            "<a@b.example>",
            "-N",
            "success,failure",
            "-R",
            "hdrs",
            "-V",
            "id1",
        ])
        .unwrap();
        assert_eq!(o.from.as_deref(), Some("a@b.example"));
        assert!(o.notify.unwrap().success && !o.notify.unwrap().delay);
        assert_eq!(o.ret, Some(Ret::Headers));
        assert_eq!(o.envid.as_deref(), Some("id1"));
        assert!(o.recipients.is_empty());
    }

    #[test]
    fn modes() {
        assert_eq!(p(&["-bs"]).unwrap().mode, Mode::Smtp);
        assert_eq!(p(&["-bp"]).unwrap().mode, Mode::Mailq);
        assert_eq!(p(&["-b", "i"]).unwrap().mode, Mode::Newaliases);
        assert_eq!(p(&["-I"]).unwrap().mode, Mode::Newaliases);
        assert_eq!(p(&["-bm", "x"]).unwrap().mode, Mode::Deliver);
        assert_eq!(p(&["-q"]).unwrap().mode, Mode::Flush);
        assert_eq!(p(&["-q30m"]).unwrap().mode, Mode::Nothing);
        assert_eq!(p(&["-bh"]).unwrap().mode, Mode::Nothing);
        assert_eq!(
            p(&["-C", "/etc/p.toml", "-v", "-v"]).unwrap().config,
            Some(PathBuf::from("/etc/p.toml"))
        );
        assert_eq!(p(&["-vv"]).unwrap().verbose, 2);
        // Ignored ones, with and without values.
        let o = p(&[
            "-G", "-U", "-L", "tag", "-Xlog", "-h", "10", "-pESMTP", "-o7", "r",
        ])
        .unwrap();
        assert_eq!(o.recipients, ["r"]);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["-d"][..],
            &["-bd"],
            &["-bv", "x"],
            &["-bz"],
            &["-f"],
            &["-N", "sometimes"],
            &["-R", "some"],
            &["-B", "binary"],
            &["-V", "has space"],
            &["-f", "a b@c"],
            &["bad address"],
            &["-F", "x\ny"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert_eq!(p(&["-k"]).unwrap_err(), Usage("unknown option -k".into()));
        assert_eq!(
            p(&["--help"]).unwrap_err(),
            Usage("unknown option --help".into())
        );
    }
}
