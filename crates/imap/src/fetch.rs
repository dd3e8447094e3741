//! FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE/VANISHED).

use postern_store::{Flag, FlagOp, Flags, MessagePart, SystemFlags, UidSet};
use std::borrow::Cow;

use crate::mime;
use crate::parser::{format_date_time, FetchAtt, SectionText, SeqSet};
use crate::response::{bad, literal, literal8, no_code, ok, to_crlf, Code, Data, Reply};
use crate::selected::{flags_string, set_string, Msg};
use crate::session::{SResult, Session};
use postern_mail::header::header_section;

/// What a FETCH needs to read from the store.
#[derive(Default, Clone, Copy)]
struct Needs {
    full: bool,
    header: bool,
    size: bool,
    /// The MIME structure of the full message (sections, BODYSTRUCTURE, TEXT, BINARY).
    structure: bool,
}

fn needs(atts: &[FetchAtt]) -> Needs {
    let mut n = Needs::default();
    for a in atts {
        match a {
            FetchAtt::Rfc822Size => n.size = true,
            FetchAtt::Envelope | FetchAtt::Rfc822Header => n.header = true,
            FetchAtt::BodySection { section, .. } => match (&section.part[..], &section.text) {
                ([], SectionText::Header)
                | ([], SectionText::HeaderFields(_))
                | ([], SectionText::HeaderFieldsNot(_)) => n.header = true,
                // The whole message needs no parsing (what mbsync and most clients fetch).
                ([], SectionText::Full) => n.full = true,
                _ => {
                    n.full = true;
                    n.structure = true;
                }
            },
            FetchAtt::Rfc822 => n.full = true,
            FetchAtt::Rfc822Text
            | FetchAtt::Body
            | FetchAtt::BodyStructure
            | FetchAtt::Binary { .. }
            | FetchAtt::BinarySize(_) => {
                n.full = true;
                n.structure = true;
            }
            _ => {}
        }
    }
    // With the full message loaded, header items are cut from it by the structure.
    n.structure |= n.full && n.header;
    n
}

/// What to read from the store for one message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    Nothing,
    Full,
    Header,
}

/// One message of a FETCH: its index in the snapshot, what to read and its file size.
#[derive(Clone, Copy)]
struct PlanItem {
    index: usize,
    uid: u32,
    load: Load,
    size: u64,
}

#[derive(Clone)]
enum Loaded {
    NotRead,
    Missing,
    Data(Vec<u8>),
}

/// Messages read per store call, and bytes: big enough to amortise the index transaction,
/// small enough that the next chunk can be read while this one is sent.
const CHUNK_MESSAGES: usize = 64;
const CHUNK_BYTES: u64 = 2 * 1024 * 1024;

/// Cuts a FETCH into chunks of at most [`CHUNK_MESSAGES`] messages and about [`CHUNK_BYTES`].
fn chunk_plan(plan: &[PlanItem]) -> Vec<&[PlanItem]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, item) in plan.iter().enumerate() {
        if i > start && (i - start >= CHUNK_MESSAGES || bytes >= CHUNK_BYTES) {
            chunks.push(&plan[start..i]);
            (start, bytes) = (i, 0);
        }
        if item.load != Load::Nothing {
            bytes += item.size;
        }
    }
    if start < plan.len() {
        chunks.push(&plan[start..]);
    }
    chunks
}

/// Reads what a chunk needs: one batched store call per kind of read.
async fn load_items(
    store: &dyn postern_store::Store,
    account: &str,
    mailbox: &str,
    items: Vec<PlanItem>,
) -> Vec<Loaded> {
    let mut out = vec![Loaded::NotRead; items.len()];
    for (load, part) in [
        (Load::Full, MessagePart::Full),
        (Load::Header, MessagePart::Header),
    ] {
        let (pos, uids): (Vec<usize>, Vec<u32>) = items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.load == load)
            .map(|(p, it)| (p, it.uid))
            .unzip();
        if uids.is_empty() {
            continue;
        }
        let got = store
            .fetch_many(account, mailbox, uids, part)
            .await
            .unwrap_or_default();
        let mut got = got.into_iter();
        for p in pos {
            out[p] = match got.next().flatten() {
                Some(d) => Loaded::Data(d),
                None => Loaded::Missing,
            };
        }
    }
    out
}

fn sets_seen(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Rfc822
            | FetchAtt::Rfc822Text
            | FetchAtt::BodySection { peek: false, .. }
            | FetchAtt::Binary { peek: false, .. }
    )
}

fn partial_slice(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    match partial {
        None => data,
        Some((start, len)) => {
            let s = (start as usize).min(data.len());
            let e = s.saturating_add(len as usize).min(data.len());
            &data[s..e]
        }
    }
}

/// The content of `BINARY[part]` (RFC 3516 §4.2): the section with its Content-Transfer-Encoding
/// removed; `None` for a part the message does not have.
fn binary_section(
    full: &[u8],
    root: &mime::Part,
    part: &[u32],
) -> Result<Option<Vec<u8>>, mime::UnknownCte> {
    Ok(match mime::part_at(root, part) {
        // BINARY[] is the whole message, which has no Content-Transfer-Encoding of its own
        // (RFC 2045 §6.4: a multipart or message is 7bit, 8bit or binary).
        Some(_) if part.is_empty() => Some(full.to_vec()),
        Some(p) if p.children.is_empty() => Some(mime::decoded(full, p)?),
        // A multipart has no single decoded body: its raw octets.
        Some(_) => mime::section_bytes(full, root, part, &SectionText::Full),
        None => None,
    })
}

fn section_name(part: &[u32], text: &SectionText) -> String {
    let mut s: Vec<String> = part.iter().map(u32::to_string).collect();
    match text {
        SectionText::Full => {}
        SectionText::Header => s.push("HEADER".into()),
        SectionText::Text => s.push("TEXT".into()),
        SectionText::Mime => s.push("MIME".into()),
        SectionText::HeaderFields(f) => s.push(format!(
            "HEADER.FIELDS ({})",
            f.join(" ").to_ascii_uppercase()
        )),
        SectionText::HeaderFieldsNot(f) => s.push(format!(
            "HEADER.FIELDS.NOT ({})",
            f.join(" ").to_ascii_uppercase()
        )),
    }
    s.join(".")
}

impl Session {
    /// What each message of a FETCH needs read: the whole message for body items, the header
    /// for header-only items (RFC822.SIZE is known from the store).
    fn load_plan(&self, idx: &[usize], need: Needs) -> Vec<PlanItem> {
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        idx.iter()
            .filter_map(|&index| {
                let m = sel.msgs.get(index)?;
                let load = if need.full {
                    Load::Full
                } else if need.header {
                    Load::Header
                } else {
                    Load::Nothing
                };
                Some(PlanItem {
                    index,
                    uid: m.uid,
                    load,
                    size: m.size,
                })
            })
            .collect()
    }

    async fn load(&self, items: Vec<PlanItem>) -> Vec<Loaded> {
        let Some(sel) = self.sel.as_ref() else {
            return vec![Loaded::Missing; items.len()];
        };
        load_items(self.srv.store.as_ref(), self.account(), &sel.name, items).await
    }

    /// RFC 9051 §6.4.5 FETCH
    pub(crate) async fn fetch(
        &mut self,
        uid: bool,
        set: SeqSet,
        mut atts: Vec<FetchAtt>,
        changed_since: Option<u64>,
        vanished: bool,
    ) -> SResult<Reply> {
        let account = self.account().to_string();
        let Some(sel) = self.sel.as_ref() else {
            return Ok(bad("No mailbox selected"));
        };
        let idx = if uid {
            sel.uid_indexes(&set)
        } else {
            match sel.seq_indexes(&set) {
                Ok(i) => i,
                Err(()) => return Ok(bad("Invalid message sequence number")),
            }
        };
        if uid && !atts.contains(&FetchAtt::Uid) {
            atts.insert(0, FetchAtt::Uid);
        }
        let enables_condstore = changed_since.is_some() || atts.contains(&FetchAtt::Modseq);
        if changed_since.is_some() && !atts.contains(&FetchAtt::Modseq) {
            atts.push(FetchAtt::Modseq);
        }
        let name = sel.name.clone();
        let readonly = sel.readonly;
        if enables_condstore {
            // RFC 7162 §3.1: FETCH MODSEQ / CHANGEDSINCE enable CONDSTORE.
            self.enable_condstore();
        }
        if vanished {
            if !self.qresync {
                return Ok(bad("QRESYNC is not enabled"));
            }
            if let Some(since) = changed_since {
                if let Ok(ch) = self.srv.store.changes_since(&account, &name, since).await {
                    let ranges = set.resolve(self.sel.as_ref().map_or(0, |s| s.max_uid()));
                    let v: Vec<u32> = ch
                        .vanished
                        .ranges()
                        .iter()
                        .flat_map(|&(a, b)| {
                            ranges.iter().filter_map(move |&(x, y)| {
                                let (lo, hi) = (a.max(x), b.min(y));
                                (lo <= hi).then_some((lo, hi))
                            })
                        })
                        .flat_map(|(lo, hi)| lo..=hi)
                        .take(1_000_000)
                        .collect();
                    if !v.is_empty() {
                        let uids = set_string(v);
                        self.data(Data::Vanished {
                            earlier: true,
                            uids: &uids,
                        });
                    }
                }
            }
        }
        let mut idx = idx;
        if let Some(since) = changed_since {
            if let Some(sel) = self.sel.as_ref() {
                idx.retain(|&i| sel.msgs[i].modseq > since);
            }
        }
        // RFC 9051 §6.4.5: BODY[...] without PEEK sets \Seen.
        let mut seen_changed: Vec<u32> = Vec::new();
        if !readonly && atts.iter().any(sets_seen) {
            if let Some(sel) = self.sel.as_ref() {
                let unseen: UidSet = idx
                    .iter()
                    .map(|&i| &sel.msgs[i])
                    .filter(|m| !m.flags.has(SystemFlags::SEEN))
                    .map(|m| m.uid)
                    .collect();
                if !unseen.is_empty() {
                    let mut f = Flags::new();
                    f.insert(Flag::Seen);
                    if let Ok(outcome) = self
                        .srv
                        .store
                        .store_flags(&account, &name, unseen, FlagOp::Add, f, None)
                        .await
                    {
                        if let Some(sel) = self.sel.as_mut() {
                            for ch in outcome.updated {
                                if let Some(uid) = sel.apply_own_change(ch) {
                                    seen_changed.push(uid);
                                }
                            }
                        }
                    }
                }
            }
        }
        let need = needs(&atts);
        let mut missing = false;
        let plan = self.load_plan(&idx, need);
        let chunks = chunk_plan(&plan);
        let mut prefetched: Option<tokio::task::JoinHandle<Vec<Loaded>>> = None;
        for (k, chunk) in chunks.iter().enumerate() {
            let loaded = match prefetched.take() {
                Some(h) => h
                    .await
                    .unwrap_or_else(|_| vec![Loaded::Missing; chunk.len()]),
                None => self.load(chunk.to_vec()).await,
            };
            // Read the next chunk from disk while this one is rendered and sent.
            if let Some(next) = chunks.get(k + 1) {
                let (store, account, name, next) = (
                    self.srv.store.clone(),
                    account.clone(),
                    name.clone(),
                    next.to_vec(),
                );
                prefetched = Some(tokio::spawn(async move {
                    load_items(store.as_ref(), &account, &name, next).await
                }));
            }
            for (item, loaded) in chunk.iter().zip(loaded) {
                let Some(m) = self
                    .sel
                    .as_ref()
                    .and_then(|s| s.msgs.get(item.index))
                    .cloned()
                else {
                    continue;
                };
                let seq = item.index + 1;
                let (full, header) = match (item.load, loaded) {
                    (_, Loaded::Missing) => {
                        missing = true;
                        continue;
                    }
                    (Load::Full, Loaded::Data(d)) => {
                        let d = to_crlf(d);
                        let header =
                            (need.header && !need.structure).then(|| header_section(&d).to_vec());
                        (Some(d), header)
                    }
                    (Load::Header, Loaded::Data(d)) => (None, Some(to_crlf(d))),
                    _ => (None, None),
                };
                match self
                    .render(
                        seq,
                        &m,
                        full,
                        header,
                        need,
                        &atts,
                        seen_changed.contains(&m.uid),
                    )
                    .await
                {
                    Ok(line) => self.io.write(&line),
                    Err(reply) => return Ok(reply),
                }
                self.maybe_flush().await?;
            }
        }
        if missing {
            return Ok(no_code(
                Code::ExpungeIssued,
                "Some messages were expunged meanwhile",
            ));
        }
        Ok(ok("FETCH completed"))
    }

    /// One `* n FETCH (...)` line. `flags_changed`: this FETCH set \Seen, so FLAGS goes out
    /// even when not asked for (RFC 9051 §6.4.5). Err is the command's reply when a part
    /// cannot be decoded.
    #[allow(clippy::too_many_arguments)]
    async fn render(
        &self,
        seq: usize,
        m: &Msg,
        full: Option<Vec<u8>>,
        header: Option<Vec<u8>>,
        need: Needs,
        atts: &[FetchAtt],
        flags_changed: bool,
    ) -> Result<Vec<u8>, Reply> {
        let structure = if need.structure {
            full.as_deref().map(mime::parse)
        } else {
            None
        };
        let hdr: Option<&[u8]> = match (&full, &structure, &header) {
            (Some(f), Some(s), _) => Some(&f[s.header.clone()]),
            (_, _, Some(h)) => Some(h.as_slice()),
            _ => None,
        };
        let size = if need.size {
            match &full {
                Some(f) => f.len() as u64,
                None => m.wire_size,
            }
        } else {
            0
        };
        let mut o: Vec<u8> = format!("* {seq} FETCH (").into_bytes();
        let mut first = true;
        let mut flags_done = false;
        for a in atts {
            if !first {
                o.push(b' ');
            }
            first = false;
            match a {
                FetchAtt::Uid => o.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
                FetchAtt::Flags => {
                    flags_done = true;
                    o.extend_from_slice(
                        format!("FLAGS {}", flags_string(&m.flags, m.recent && !self.rev2))
                            .as_bytes(),
                    )
                }
                FetchAtt::InternalDate => o.extend_from_slice(
                    format!("INTERNALDATE \"{}\"", format_date_time(m.internal_date)).as_bytes(),
                ),
                FetchAtt::Rfc822Size => {
                    o.extend_from_slice(format!("RFC822.SIZE {size}").as_bytes())
                }
                FetchAtt::Modseq => {
                    o.extend_from_slice(format!("MODSEQ ({})", m.modseq).as_bytes())
                }
                FetchAtt::Envelope => {
                    o.extend_from_slice(b"ENVELOPE ");
                    mime::envelope(&mut o, hdr.unwrap_or_default());
                }
                FetchAtt::Body | FetchAtt::BodyStructure => {
                    if let (Some(f), Some(s)) = (&full, &structure) {
                        let ext = matches!(a, FetchAtt::BodyStructure);
                        o.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
                        mime::body_structure(&mut o, f, s, ext);
                    }
                }
                FetchAtt::Rfc822 => {
                    o.extend_from_slice(b"RFC822 ");
                    literal(&mut o, full.as_deref().unwrap_or_default());
                }
                FetchAtt::Rfc822Header => {
                    o.extend_from_slice(b"RFC822.HEADER ");
                    literal(&mut o, hdr.unwrap_or_default());
                }
                FetchAtt::Rfc822Text => {
                    o.extend_from_slice(b"RFC822.TEXT ");
                    let body = match (&full, &structure) {
                        (Some(f), Some(s)) => &f[s.body.clone()],
                        _ => &[][..],
                    };
                    literal(&mut o, body);
                }
                FetchAtt::BodySection {
                    section, partial, ..
                } => {
                    let bytes: Option<Cow<'_, [u8]>> = match (&full, &structure) {
                        (Some(f), _)
                            if section.part.is_empty()
                                && matches!(section.text, SectionText::Full) =>
                        {
                            Some(Cow::Borrowed(f.as_slice()))
                        }
                        (Some(f), Some(s)) => {
                            mime::section_bytes(f, s, &section.part, &section.text).map(Cow::Owned)
                        }
                        _ => hdr.map(|h| {
                            Cow::Owned(match &section.text {
                                SectionText::HeaderFields(n) => mime::filter_header(h, n, false),
                                SectionText::HeaderFieldsNot(n) => mime::filter_header(h, n, true),
                                _ => h.to_vec(),
                            })
                        }),
                    };
                    o.extend_from_slice(
                        format!("BODY[{}]", section_name(&section.part, &section.text)).as_bytes(),
                    );
                    if let Some((start, _)) = partial {
                        o.extend_from_slice(format!("<{start}>").as_bytes());
                    }
                    o.push(b' ');
                    match bytes {
                        Some(b) => literal(&mut o, partial_slice(b.as_ref(), *partial)),
                        // A section the message does not have is empty (RFC 9051 §6.4.5
                        // leaves it open; Dovecot answers "", which no client chokes on).
                        None => o.extend_from_slice(b"\"\""),
                    }
                }
                FetchAtt::Binary { .. } | FetchAtt::BinarySize(_) => {
                    let (part, partial) = match a {
                        FetchAtt::Binary { part, partial, .. } => (part, *partial),
                        FetchAtt::BinarySize(part) => (part, None),
                        _ => continue,
                    };
                    let (Some(f), Some(s)) = (&full, &structure) else {
                        continue;
                    };
                    let decoded = match binary_section(f, s, part) {
                        Ok(d) => d,
                        Err(mime::UnknownCte) => {
                            return Err(no_code(Code::UnknownCte, "Cannot decode this part"));
                        }
                    };
                    let name: Vec<String> = part.iter().map(u32::to_string).collect();
                    if let FetchAtt::BinarySize(_) = a {
                        o.extend_from_slice(
                            format!(
                                "BINARY.SIZE[{}] {}",
                                name.join("."),
                                decoded.as_ref().map_or(0, Vec::len)
                            )
                            .as_bytes(),
                        );
                    } else {
                        o.extend_from_slice(format!("BINARY[{}]", name.join(".")).as_bytes());
                        if let Some((start, _)) = partial {
                            o.extend_from_slice(format!("<{start}>").as_bytes());
                        }
                        o.push(b' ');
                        match decoded {
                            Some(d) => {
                                let d = partial_slice(&d, partial);
                                if d.contains(&0) {
                                    // RFC 3516 §4.3: literal8 for binary content.
                                    literal8(&mut o, d);
                                } else {
                                    literal(&mut o, d);
                                }
                            }
                            // As for BODY[]: a nonexistent part is empty.
                            None => o.extend_from_slice(b"\"\""),
                        }
                    }
                }
            }
        }
        if !flags_done && flags_changed {
            o.extend_from_slice(
                format!(" FLAGS {}", flags_string(&m.flags, m.recent && !self.rev2)).as_bytes(),
            );
        }
        if flags_changed && self.condstore {
            // RFC 7162 §3.1: with CONDSTORE on, a FETCH that implicitly set \Seen reports
            // the change with UID and MODSEQ.
            if !atts.contains(&FetchAtt::Uid) {
                o.extend_from_slice(format!(" UID {}", m.uid).as_bytes());
            }
            if !atts.contains(&FetchAtt::Modseq) {
                o.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
            }
        }
        o.extend_from_slice(b")\r\n");
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_decodes_parts_and_keeps_the_whole_message() {
        let m = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n--B\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\nbreak =C3=A9\r\n--B\r\nContent-Transfer-Encoding: x-uue\r\n\r\nx\r\n--B--\r\n";
        let root = mime::parse(m);
        assert_eq!(binary_section(m, &root, &[]).unwrap().unwrap(), m.to_vec());
        assert_eq!(binary_section(m, &root, &[1]).unwrap().unwrap(), b"hello");
        assert_eq!(
            binary_section(m, &root, &[2]).unwrap().unwrap(),
            "softbreak \u{e9}".as_bytes()
        );
        assert_eq!(binary_section(m, &root, &[3]), Err(mime::UnknownCte));
        assert_eq!(binary_section(m, &root, &[4]), Ok(None));
    }

    #[test]
    fn chunks_cut_by_count_and_bytes() {
        let item = |index, size, load| PlanItem {
            index,
            uid: index as u32 + 1,
            load,
            size,
        };
        let many: Vec<PlanItem> = (0..150).map(|i| item(i, 10, Load::Full)).collect();
        let sizes: Vec<usize> = chunk_plan(&many).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![64, 64, 22]);
        let big: Vec<PlanItem> = (0..5).map(|i| item(i, CHUNK_BYTES, Load::Full)).collect();
        assert!(chunk_plan(&big).iter().all(|c| c.len() == 1));
        // Messages nothing is read for do not count towards the bytes.
        let flags: Vec<PlanItem> = (0..5)
            .map(|i| item(i, CHUNK_BYTES, Load::Nothing))
            .collect();
        assert_eq!(chunk_plan(&flags).len(), 1);
        assert!(chunk_plan(&[]).is_empty());
    }
}
