//! The syntax tree of RFC 5228 §8.2: commands with arguments, tests and blocks. Knows nothing of
//! what the commands mean; the compiler checks that.

use crate::lexer::{Lexer, Pos, Token};
use crate::CompileError;

/// One argument (RFC 5228 §2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    Tag(String, Pos),
    Number(u64, Pos),
    /// A single string (not in brackets).
    Str(String, Pos),
    /// A bracketed string list.
    List(Vec<String>, Pos),
}

impl Arg {
    pub(crate) fn pos(&self) -> Pos {
        match self {
            Arg::Tag(_, p) | Arg::Number(_, p) | Arg::Str(_, p) | Arg::List(_, p) => *p,
        }
    }
}

/// A test (RFC 5228 §2.9 `test = identifier arguments`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TestNode {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) args: Vec<Arg>,
    pub(crate) tests: Vec<TestNode>,
    /// Whether the tests were written as a parenthesized test list.
    pub(crate) test_list: bool,
}

/// A command (RFC 5228 §8.2 `command = identifier arguments (";" / block)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommandNode {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) args: Vec<Arg>,
    pub(crate) tests: Vec<TestNode>,
    pub(crate) test_list: bool,
    pub(crate) block: Option<Vec<CommandNode>>,
}

/// Parses a whole script into its commands.
pub(crate) fn parse(source: &str) -> Result<Vec<CommandNode>, CompileError> {
    let tokens = Lexer::new(source).tokenize()?;
    let mut parser = Parser { tokens, at: 0 };
    let commands = parser.commands(0)?;
    let (token, pos) = parser.peek();
    if *token != Token::End {
        return Err(pos.error(format!("unexpected {}", token.describe())));
    }
    Ok(commands)
}

/// Deepest nesting of blocks and tests accepted (keeps recursion bounded).
const MAX_NESTING: usize = 64;

struct Parser {
    tokens: Vec<(Token, Pos)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> (&Token, Pos) {
        let (t, p) = &self.tokens[self.at.min(self.tokens.len() - 1)];
        (t, *p)
    }

    fn next(&mut self) -> (Token, Pos) {
        let i = self.at.min(self.tokens.len() - 1);
        self.at += 1;
        self.tokens[i].clone()
    }

    fn unexpected(&self, expected: &str) -> CompileError {
        let (token, pos) = self.peek();
        pos.error(format!(
            "expected {expected}, but found {}",
            token.describe()
        ))
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<CommandNode>, CompileError> {
        let mut out = Vec::new();
        loop {
            match self.peek().0 {
                Token::Identifier(_) => out.push(self.command(depth)?),
                Token::End | Token::RightBrace => return Ok(out),
                _ => return Err(self.unexpected("a command")),
            }
        }
    }

    fn command(&mut self, depth: usize) -> Result<CommandNode, CompileError> {
        if depth > MAX_NESTING {
            return Err(self.peek().1.error("blocks are nested too deeply"));
        }
        let (Token::Identifier(name), pos) = self.next() else {
            unreachable!("command() is called on an identifier")
        };
        let args = self.arguments()?;
        let (tests, test_list) = self.tests(depth)?;
        let block = match self.peek().0 {
            Token::Semicolon => {
                self.next();
                None
            }
            Token::LeftBrace => {
                self.next();
                let body = self.commands(depth + 1)?;
                match self.peek().0 {
                    Token::RightBrace => {
                        self.next();
                    }
                    _ => return Err(self.unexpected("'}'")),
                }
                Some(body)
            }
            _ => {
                return Err(
                    self.unexpected("end of command ';' or the beginning of a compound block '{'")
                )
            }
        };
        Ok(CommandNode {
            name: name.to_ascii_lowercase(),
            pos,
            args,
            tests,
            test_list,
            block,
        })
    }

    /// Zero or more arguments (§8.2 `argument = string-list / number / tag`).
    fn arguments(&mut self) -> Result<Vec<Arg>, CompileError> {
        let mut args = Vec::new();
        loop {
            let (token, pos) = self.peek();
            let arg = match token {
                Token::Tag(t) => Arg::Tag(t.clone(), pos),
                Token::Number(n) => Arg::Number(*n, pos),
                Token::Str(s) => Arg::Str(s.clone(), pos),
                Token::LeftBracket => {
                    self.next();
                    args.push(Arg::List(self.string_list()?, pos));
                    continue;
                }
                _ => return Ok(args),
            };
            self.next();
            args.push(arg);
        }
    }

    /// After `[`: strings separated by commas, then `]` (§8.2 `string-list`).
    fn string_list(&mut self) -> Result<Vec<String>, CompileError> {
        let mut list = Vec::new();
        loop {
            match self.next() {
                (Token::Str(s), _) => list.push(s),
                _ => {
                    self.at -= 1;
                    return Err(self.unexpected("a string in the string list"));
                }
            }
            match self.next().0 {
                Token::Comma => continue,
                Token::RightBracket => return Ok(list),
                _ => {
                    self.at -= 1;
                    return Err(self.unexpected("',' or ']' in the string list"));
                }
            }
        }
    }

    /// An optional test or parenthesized test list.
    fn tests(&mut self, depth: usize) -> Result<(Vec<TestNode>, bool), CompileError> {
        match self.peek().0 {
            Token::Identifier(_) => Ok((vec![self.test(depth)?], false)),
            Token::LeftParen => {
                self.next();
                let mut tests = Vec::new();
                loop {
                    match self.peek().0 {
                        Token::Identifier(_) => tests.push(self.test(depth)?),
                        _ => return Err(self.unexpected("a test")),
                    }
                    match self.next().0 {
                        Token::Comma => continue,
                        Token::RightParen => return Ok((tests, true)),
                        _ => {
                            self.at -= 1;
                            return Err(self.unexpected("',' or ')' in the test list"));
                        }
                    }
                }
            }
            _ => Ok((Vec::new(), false)),
        }
    }

    fn test(&mut self, depth: usize) -> Result<TestNode, CompileError> {
        if depth > MAX_NESTING {
            return Err(self.peek().1.error("tests are nested too deeply"));
        }
        let (Token::Identifier(name), pos) = self.next() else {
            unreachable!("test() is called on an identifier")
        };
        let args = self.arguments()?;
        let (tests, test_list) = self.tests(depth + 1)?;
        Ok(TestNode {
            name: name.to_ascii_lowercase(),
            pos,
            args,
            tests,
            test_list,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5228 §2.6–§2.9 structure: arguments, tests, test lists and blocks.
    #[test]
    fn parses_nested_structure() {
        let s = parse(
            "if anyof (header :contains \"from\" [\"a\", \"b\"], size :over 1K) { fileinto \"x\"; } else { keep; }",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "if");
        assert_eq!(s[0].tests[0].name, "anyof");
        assert_eq!(s[0].tests[0].tests.len(), 2);
        assert_eq!(
            s[0].tests[0].tests[0].args[2],
            Arg::List(
                vec!["a".into(), "b".into()],
                s[0].tests[0].tests[0].args[2].pos()
            )
        );
        assert_eq!(s[1].name, "else");
    }

    #[test]
    fn errors_say_what_was_expected() {
        let e = parse("keep").unwrap_err();
        assert_eq!(
            e.message,
            "expected end of command ';' or the beginning of a compound block '{', but found end of file"
        );
        let e = parse("keep\n}").unwrap_err();
        assert!(e.message.contains("expected end of command ';'"), "{e:?}");
        assert_eq!(e.line, 2);
        let e = parse("if true { keep;").unwrap_err();
        assert!(e.message.contains("'}'"), "{e:?}");
        let e = parse("fileinto [\"a\" \"b\"];").unwrap_err();
        assert!(e.message.contains("',' or ']'"), "{e:?}");
    }
}
