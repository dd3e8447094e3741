//! RFC 9051 §9 `sequence-set` and RFC 5182 `$` (the saved search result).

use super::error::ParseError;
use super::lexer::Lexer;

/// One number of a sequence set: a number or `*` (RFC 9051 §9 `seq-number`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    /// A message sequence number or UID.
    Num(u32),
    /// `*`: the largest number in use.
    Star,
    /// RFC 5182 §2.1 `$`: the saved search result (always alone in its set).
    Saved,
}

/// RFC 9051 §9 `sequence-set`, unresolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeqSet(pub Vec<(SeqNum, SeqNum)>);

impl SeqSet {
    /// RFC 5182 §2.1: the set `$`, the saved search result.
    pub fn saved() -> SeqSet {
        SeqSet(vec![(SeqNum::Saved, SeqNum::Saved)])
    }

    /// Whether this is `$` (to be replaced by the saved result before use).
    pub fn is_saved(&self) -> bool {
        self.0
            .iter()
            .any(|&(a, b)| a == SeqNum::Saved || b == SeqNum::Saved)
    }

    /// Resolves against the largest value in use (`*`); ranges are normalised (low, high).
    /// An unreplaced `$` resolves to nothing.
    pub fn resolve(&self, largest: u32) -> Vec<(u32, u32)> {
        let v = |n: SeqNum| match n {
            SeqNum::Num(n) => n,
            SeqNum::Star => largest,
            SeqNum::Saved => 0,
        };
        self.0
            .iter()
            .filter(|&&(a, b)| a != SeqNum::Saved && b != SeqNum::Saved)
            .map(|&(a, b)| {
                let (a, b) = (v(a), v(b));
                (a.min(b), a.max(b))
            })
            .collect()
    }
}

/// RFC 9051 §9 `seq-number` = nz-number / "*".
fn seq_num(c: &mut Lexer) -> Result<SeqNum, ParseError> {
    if c.eat(b'*') {
        return Ok(SeqNum::Star);
    }
    let n = c.number()?;
    if n == 0 {
        return Err(ParseError::BadSequenceSet);
    }
    Ok(SeqNum::Num(n))
}

/// RFC 9051 §9 `sequence-set` = (seq-number / seq-range) ["," sequence-set].
pub(super) fn seq_set(c: &mut Lexer) -> Result<SeqSet, ParseError> {
    let mut set = Vec::new();
    loop {
        let a = seq_num(c)?;
        let b = if c.eat(b':') { seq_num(c)? } else { a };
        set.push((a, b));
        if !c.eat(b',') {
            break;
        }
    }
    Ok(SeqSet(set))
}

/// RFC 9051 §9 `sequence-set / "$"` (RFC 5182 §3 `seq-last-command`).
pub(super) fn seq_set_or_saved(c: &mut Lexer) -> Result<SeqSet, ParseError> {
    if c.eat(b'$') {
        return Ok(SeqSet::saved());
    }
    seq_set(c)
}
