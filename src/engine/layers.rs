//! Sending an engine only the layers it lacks. An image archive (`docker
//! save`) is filtered as it streams: a layer whose chain (the layer on top
//! of every layer below it) the receiving engine already holds is left out,
//! and the engine's load takes it from its own layer store. Layers are known
//! by their diff id: a blob named by it (`blobs/sha256/<hex>`, Docker 25 and
//! later) is left out by its name; a `<v1 id>/layer.tar` (older engines) is
//! held, hashed, then left out or sent, up to [`HOLD_LIMIT`], past which it
//! is sent whole.

use std::collections::HashSet;

use crate::registry::digest_of as sha256;
use bytes::{Bytes, BytesMut};
use ring::digest;

/// The most of one `layer.tar` held in memory while its digest is computed;
/// a bigger layer is sent as it comes, whether the engine has it or not.
pub const HOLD_LIMIT: u64 = 512 << 20;

const BLOCK: usize = 512;

/// The chain id of every prefix of `diff_ids` (bottom first), as the OCI
/// image spec defines it: the first layer's diff id, then
/// `sha256(parent_chain + " " + diff_id)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => sha256(format!("{parent} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The diff ids of an image's layers (bottom first) that an engine holding
/// `chains` need not be sent: those whose every place in the image sits on a
/// chain it holds.
pub fn already_there(diff_ids: &[String], chains: &HashSet<String>) -> HashSet<String> {
    let mut there: HashSet<String> = diff_ids.iter().cloned().collect();
    for (diff, chain) in diff_ids.iter().zip(chain_ids(diff_ids)) {
        if !chains.contains(&chain) {
            there.remove(diff);
        }
    }
    there
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(7 + bytes.len() * 2);
    out.push_str("sha256:");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What the filter left out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub layers: usize,
    pub bytes: u64,
}

enum State {
    /// Waiting for the next 512-byte header.
    Header,
    /// Passing an entry's data (and padding) through.
    Pass(u64),
    /// Dropping an entry's data (and padding).
    Drop(u64),
    /// An extended header's data, kept with the entry it describes.
    Extended(u64),
    /// A `layer.tar` held while it is hashed.
    Hold(Box<Held>),
    /// After the archive's end: everything passes.
    Trailer,
}

struct Held {
    pieces: Vec<Bytes>,
    held: u64,
    /// Data bytes still to hash, then padding bytes still to hold.
    data_left: u64,
    pad_left: u64,
    context: digest::Context,
}

/// A tar stream in, the same stream out without the entries of `skip`'s layers.
pub struct Filter {
    skip: HashSet<String>,
    input: BytesMut,
    state: State,
    /// Extended headers (pax, GNU long names) waiting for the entry they
    /// describe; an entry that has them is always sent.
    extended: Vec<Bytes>,
    pub skipped: Skipped,
    hold_limit: u64,
}

impl Filter {
    pub fn new(skip: HashSet<String>) -> Filter {
        Filter::with_hold_limit(skip, HOLD_LIMIT)
    }

    pub fn with_hold_limit(skip: HashSet<String>, hold_limit: u64) -> Filter {
        Filter {
            skip,
            input: BytesMut::new(),
            state: State::Header,
            extended: Vec::new(),
            skipped: Skipped::default(),
            hold_limit,
        }
    }

    /// Takes the next piece of the archive; returns what is to be sent.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.input.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            match &mut self.state {
                State::Trailer => {
                    if !self.input.is_empty() {
                        out.push(self.input.split().freeze());
                    }
                    return out;
                }
                State::Pass(left) | State::Drop(left) | State::Extended(left) if *left == 0 => {
                    self.state = State::Header
                }
                State::Extended(left) => {
                    if self.input.is_empty() {
                        return out;
                    }
                    let n = (*left).min(self.input.len() as u64);
                    *left -= n;
                    self.extended.push(self.input.split_to(n as usize).freeze());
                }
                State::Pass(left) => {
                    if self.input.is_empty() {
                        return out;
                    }
                    let n = (*left).min(self.input.len() as u64);
                    *left -= n;
                    out.push(self.input.split_to(n as usize).freeze());
                }
                State::Drop(left) => {
                    if self.input.is_empty() {
                        return out;
                    }
                    let n = (*left).min(self.input.len() as u64);
                    *left -= n;
                    let _ = self.input.split_to(n as usize);
                }
                State::Hold(held) => {
                    if held.data_left == 0 && held.pad_left == 0 {
                        let State::Hold(held) = std::mem::replace(&mut self.state, State::Header)
                        else {
                            unreachable!()
                        };
                        let diff = hex(held.context.finish().as_ref());
                        if self.skip.contains(&diff) {
                            self.skipped.layers += 1;
                            self.skipped.bytes += held.held;
                        } else {
                            out.extend(held.pieces);
                        }
                        continue;
                    }
                    if self.input.is_empty() {
                        return out;
                    }
                    let n = (held.data_left + held.pad_left).min(self.input.len() as u64);
                    let piece = self.input.split_to(n as usize).freeze();
                    let data = held.data_left.min(n);
                    held.context.update(&piece[..data as usize]);
                    held.data_left -= data;
                    held.pad_left -= n - data;
                    held.held += n;
                    held.pieces.push(piece);
                    if held.held > self.hold_limit {
                        // Too big to hold: sent as it comes.
                        let left = held.data_left + held.pad_left;
                        let State::Hold(held) =
                            std::mem::replace(&mut self.state, State::Pass(left))
                        else {
                            unreachable!()
                        };
                        out.extend(held.pieces);
                    }
                }
                State::Header => {
                    if self.input.len() < BLOCK {
                        return out;
                    }
                    let header = self.input.split_to(BLOCK).freeze();
                    self.header(header, &mut out);
                }
            }
        }
    }

    fn header(&mut self, header: Bytes, out: &mut Vec<Bytes>) {
        if header.iter().all(|b| *b == 0) {
            // The end of the archive: it and whatever follows pass.
            out.append(&mut self.extended);
            out.push(header);
            self.state = State::Trailer;
            return;
        }
        let size = entry_size(&header);
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        let kind = header[156];
        if matches!(kind, b'x' | b'L' | b'K') {
            // Describes the next entry: kept with it, with its data.
            self.extended.push(header);
            self.state = State::Extended(padded);
            return;
        }
        let name = entry_name(&header);
        let plain = self.extended.is_empty() && matches!(kind, b'0' | 0);
        out.append(&mut self.extended);
        if plain
            && let Some(diff) = blob_diff(&name)
            && self.skip.contains(&diff)
        {
            self.skipped.layers += 1;
            self.skipped.bytes += BLOCK as u64 + padded;
            self.state = State::Drop(padded);
        } else if plain && !self.skip.is_empty() && name.ends_with("/layer.tar") {
            self.state = State::Hold(Box::new(Held {
                pieces: vec![header],
                held: BLOCK as u64,
                data_left: size,
                pad_left: padded - size,
                context: digest::Context::new(&digest::SHA256),
            }));
        } else {
            out.push(header);
            self.state = State::Pass(padded);
        }
    }

    /// Whether the archive ended where an archive may end.
    pub fn complete(&self) -> bool {
        matches!(self.state, State::Trailer | State::Header)
            && self.input.is_empty()
            && self.extended.is_empty()
    }
}

/// An entry's size: octal digits, or base-256 when the first byte's top bit is set.
fn entry_size(header: &[u8]) -> u64 {
    let field = &header[124..136];
    if field[0] & 0x80 != 0 {
        return field[1..]
            .iter()
            .fold(u64::from(field[0] & 0x7f), |n, b| (n << 8) | u64::from(*b));
    }
    field
        .iter()
        .filter(|b| (b'0'..=b'7').contains(*b))
        .fold(0, |n, b| n * 8 + u64::from(b - b'0'))
}

/// An entry's path: the ustar prefix and name.
fn entry_name(header: &[u8]) -> String {
    let text = |field: &[u8]| {
        let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
        String::from_utf8_lossy(&field[..end]).into_owned()
    };
    let name = text(&header[..100]);
    let prefix = if &header[257..262] == b"ustar" {
        text(&header[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// The digest a `blobs/sha256/<hex>` entry is named by.
fn blob_diff(name: &str) -> Option<String> {
    let hex = name
        .trim_start_matches("./")
        .strip_prefix("blobs/sha256/")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, &data[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn names(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut read = tar::Archive::new(archive);
        read.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), data)
            })
            .collect()
    }

    /// The archive through the filter, fed `size` bytes at a time.
    fn filtered(
        input: &[u8],
        skip: &HashSet<String>,
        size: usize,
        limit: u64,
    ) -> (Vec<u8>, Skipped) {
        let mut filter = Filter::with_hold_limit(skip.clone(), limit);
        let mut out = Vec::new();
        for chunk in input.chunks(size) {
            for piece in filter.push(chunk) {
                out.extend_from_slice(&piece);
            }
        }
        assert!(filter.complete());
        (out, filter.skipped)
    }

    fn layer(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
            .collect()
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let chains = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chains[0], a);
        assert_eq!(chains[1], sha256(format!("{a} {b}").as_bytes()));
        // The same layer on another parent is another chain.
        assert_ne!(chain_ids(&[b.clone(), b.clone()])[1], chains[1]);
    }

    #[test]
    fn a_layer_is_there_only_where_every_place_of_it_is_on_a_held_chain() {
        let (a, b, c) = (
            "sha256:a".to_string(),
            "sha256:b".to_string(),
            "sha256:c".to_string(),
        );
        let old = chain_ids(&[a.clone(), b.clone()]);
        let held: HashSet<String> = old.into_iter().collect();
        let there = already_there(&[a.clone(), b.clone(), c.clone()], &held);
        assert_eq!(there, [a.clone(), b.clone()].into_iter().collect());
        // `b` again on top of `c`: that place is not held, so `b` is sent.
        let there = already_there(&[a.clone(), b.clone(), c, b.clone()], &held);
        assert_eq!(there, [a].into_iter().collect());
    }

    #[test]
    fn held_layers_are_left_out_and_everything_else_passes_byte_for_byte() {
        let (base, top) = (layer(1, 70_000), layer(2, 1_000));
        let input = archive(&[
            ("1111/VERSION", b"1.0".to_vec()),
            ("1111/layer.tar", base.clone()),
            ("2222/layer.tar", top.clone()),
            ("cfg.json", b"{}".to_vec()),
            ("manifest.json", b"[]".to_vec()),
        ]);
        let skip: HashSet<String> = [sha256(&base)].into_iter().collect();
        for size in [1, 7, 511, 512, 513, 4096, input.len()] {
            let (out, skipped) = filtered(&input, &skip, size, HOLD_LIMIT);
            let entries = names(&out);
            let got: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                got,
                [
                    "1111/VERSION",
                    "2222/layer.tar",
                    "cfg.json",
                    "manifest.json"
                ],
                "chunks of {size}"
            );
            assert_eq!(entries[1].1, top);
            assert_eq!(
                skipped,
                Skipped {
                    layers: 1,
                    bytes: 512 + 70_144
                }
            );
            assert_eq!(out.len(), input.len() - 512 - 70_144);
        }
        // Nothing to leave out: the very same bytes.
        let (out, skipped) = filtered(&input, &HashSet::new(), 1000, HOLD_LIMIT);
        assert_eq!(out, input);
        assert_eq!(skipped, Skipped::default());
    }

    #[test]
    fn blobs_named_by_their_digest_are_left_out_without_being_held() {
        let base = layer(3, 5_000);
        let name = format!("blobs/sha256/{}", &sha256(&base)[7..]);
        let input = archive(&[(&name, base.clone()), ("index.json", b"{}".to_vec())]);
        let skip: HashSet<String> = [sha256(&base)].into_iter().collect();
        // Held no byte: a limit of zero would send any held layer.
        let (out, skipped) = filtered(&input, &skip, 100, 0);
        assert_eq!(names(&out).len(), 1);
        assert_eq!(skipped.layers, 1);
    }

    #[test]
    fn a_layer_too_big_to_hold_is_sent_whole() {
        let base = layer(4, 9_000);
        let input = archive(&[
            ("1111/layer.tar", base.clone()),
            ("manifest.json", b"[]".to_vec()),
        ]);
        let skip: HashSet<String> = [sha256(&base)].into_iter().collect();
        let (out, skipped) = filtered(&input, &skip, 1000, 4_096);
        assert_eq!(out, input);
        assert_eq!(skipped, Skipped::default());
    }

    #[test]
    fn an_entry_with_an_extended_header_is_always_sent_with_it() {
        let base = layer(5, 2_000);
        let long = format!("{}/layer.tar", "9".repeat(120));
        let input = archive(&[(&long, base.clone()), ("manifest.json", b"[]".to_vec())]);
        let skip: HashSet<String> = [sha256(&base)].into_iter().collect();
        for size in [1, 300, 100_000] {
            let (out, skipped) = filtered(&input, &skip, size, HOLD_LIMIT);
            assert_eq!(out, input, "chunks of {size}");
            assert_eq!(skipped, Skipped::default());
        }
    }

    #[test]
    fn a_cut_archive_is_not_complete() {
        let input = archive(&[("a", layer(6, 3_000))]);
        let mut filter = Filter::new(HashSet::new());
        filter.push(&input[..1_000]);
        assert!(!filter.complete());
    }
}
