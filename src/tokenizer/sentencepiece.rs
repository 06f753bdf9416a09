//! SentencePiece models (`.spm`, `.model`) read from their protobuf bytes with a small hand-written
//! protobuf reader, and encoded/decoded the way the C++ library does it:
//!
//! - normalisation: the precompiled character map (a Darts double-array trie over UTF-8 bytes,
//!   longest match wins), leading/trailing/repeated whitespace removal, the dummy `▁` prefix and
//!   whitespace escaping (`NormalizerSpec`);
//! - unigram models: the optimised Viterbi of `unigram_model.cc` (unknown characters scored
//!   `min_score - 10`, user-defined pieces preferred), consecutive unknowns fused into one piece;
//! - BPE models: repeated merge of the best-scoring adjacent pair (leftmost on ties);
//! - decoding pieces back to text (`DecodePieces`).
//!
//! Only what encoding and decoding need is kept from the model proto.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// `▁` (U+2581), which stands for a space inside pieces.
pub const SPACE: char = '\u{2581}';
const SPACE_STR: &str = "\u{2581}";
/// What an `<unk>` piece decodes to (` ⁇ `).
const UNKNOWN_SURFACE: &str = " \u{2047} ";
/// Longest piece accepted, in bytes (SentencePiece's trainer caps `max_sentencepiece_length` at
/// 512; real models' pieces are a few dozen bytes at most).
pub const MAX_PIECE_BYTES: usize = 512;
/// Unigram: unknown characters score this far below the lowest piece score.
const UNK_PENALTY: f32 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    Unigram,
    Bpe,
    Word,
    Char,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

#[derive(Debug, Clone)]
pub struct NormalizerSpec {
    pub name: String,
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

impl Default for NormalizerSpec {
    /// The proto defaults.
    fn default() -> Self {
        NormalizerSpec {
            name: String::new(),
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        }
    }
}

/// A parsed SentencePiece model, ready to encode and decode.
#[derive(Debug, Clone)]
pub struct SentencePiece {
    pub pieces: Vec<Piece>,
    pub model_type: ModelType,
    pub normalizer: NormalizerSpec,
    pub treat_whitespace_as_suffix: bool,
    pub byte_fallback: bool,
    /// Id of the `Unknown` piece.
    pub unk_id: u32,
    index: HashMap<String, u32>,
    /// Longest piece in bytes (bounds the Viterbi's inner loop).
    max_piece_bytes: usize,
    min_score: f32,
    max_score: f32,
    user_defined: Vec<String>,
    charsmap: Option<CharsMap>,
}

// ---------------------------------------------------------------------------------------------
// Protobuf reading

struct ProtoReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

enum Value<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64,
    Bytes(&'a [u8]),
}

impl<'a> ProtoReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        ProtoReader { bytes, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(bad("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| bad("truncated field"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    /// The next (field number, value), or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad("length overflows"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().unwrap())),
            other => return Err(bad(&format!("unsupported protobuf wire type {other}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn bad(message: &str) -> Error {
    Error::Tokenizer(format!("invalid SentencePiece model: {message}"))
}

fn string(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| bad("a string field is not UTF-8"))
}

fn parse_piece(bytes: &[u8]) -> Result<Piece> {
    let mut piece = Piece { piece: String::new(), score: 0.0, kind: PieceType::Normal };
    let mut reader = ProtoReader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => piece.piece = string(b)?,
            (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Value::Varint(v)) => {
                piece.kind = match v {
                    1 => PieceType::Normal,
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    other => return Err(bad(&format!("unknown piece type {other}"))),
                }
            }
            _ => {}
        }
    }
    // As the C++ library: an empty piece would match everywhere and consume nothing (the
    // segmentation loops would never advance).
    if piece.piece.is_empty() {
        return Err(bad("a piece is empty"));
    }
    // Every start position tries each prefix up to the longest piece, so one huge piece would
    // make encoding quadratic in the text.
    if piece.piece.len() > MAX_PIECE_BYTES {
        return Err(bad(&format!("a piece of {} bytes is longer than {MAX_PIECE_BYTES}", piece.piece.len())));
    }
    if !piece.score.is_finite() {
        return Err(bad(&format!("piece '{}' has score {}", piece.piece, piece.score)));
    }
    Ok(piece)
}

struct TrainerSpec {
    model_type: ModelType,
    treat_whitespace_as_suffix: bool,
    byte_fallback: bool,
}

fn parse_trainer_spec(bytes: &[u8]) -> Result<TrainerSpec> {
    let mut spec = TrainerSpec { model_type: ModelType::Unigram, treat_whitespace_as_suffix: false, byte_fallback: false };
    let mut reader = ProtoReader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (3, Value::Varint(v)) => {
                spec.model_type = match v {
                    1 => ModelType::Unigram,
                    2 => ModelType::Bpe,
                    3 => ModelType::Word,
                    4 => ModelType::Char,
                    other => return Err(bad(&format!("unknown model_type {other}"))),
                }
            }
            (24, Value::Varint(v)) => spec.treat_whitespace_as_suffix = v != 0,
            (35, Value::Varint(v)) => spec.byte_fallback = v != 0,
            _ => {}
        }
    }
    Ok(spec)
}

fn parse_normalizer_spec(bytes: &[u8]) -> Result<NormalizerSpec> {
    let mut spec = NormalizerSpec::default();
    let mut reader = ProtoReader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => spec.name = string(b)?,
            (2, Value::Bytes(b)) => spec.precompiled_charsmap = b.to_vec(),
            (3, Value::Varint(v)) => spec.add_dummy_prefix = v != 0,
            (4, Value::Varint(v)) => spec.remove_extra_whitespaces = v != 0,
            (5, Value::Varint(v)) => spec.escape_whitespaces = v != 0,
            _ => {}
        }
    }
    Ok(spec)
}

// ---------------------------------------------------------------------------------------------
// Precompiled character map: Darts-clone double array + NUL-separated replacement strings.

#[derive(Debug, Clone)]
struct CharsMap {
    units: Vec<u32>,
    normalized: Vec<u8>,
}

impl CharsMap {
    fn parse(blob: &[u8]) -> Result<Self> {
        let size = blob.get(..4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize).ok_or_else(|| bad("charsmap too short"))?;
        let trie = size.checked_add(4).and_then(|end| blob.get(4..end)).ok_or_else(|| bad("charsmap trie truncated"))?;
        if size % 4 != 0 {
            return Err(bad("charsmap trie size is not a multiple of 4"));
        }
        let units = trie.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        Ok(CharsMap { units, normalized: blob[4 + size..].to_vec() })
    }

    /// Where a unit's children are, relative to it.
    fn offset(u: u32) -> usize {
        ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize
    }

    /// The byte that leads to a unit (with the leaf flag bit, so a leaf never matches a byte).
    fn label(u: u32) -> u32 {
        u & ((1 << 31) | 0xff)
    }

    /// Whether a unit's child is a leaf holding a replacement.
    fn has_leaf(u: u32) -> bool {
        (u >> 8) & 1 == 1
    }

    /// A leaf's replacement: where it starts in the replacement strings.
    fn value(u: u32) -> usize {
        (u & 0x7fff_ffff) as usize
    }

    /// Darts `commonPrefixSearch`, keeping the longest match: (bytes matched, replacement).
    fn longest_prefix(&self, key: &[u8]) -> Option<(usize, &[u8])> {
        let unit = |pos: usize| self.units.get(pos).copied();
        let (offset, label, has_leaf, value) = (Self::offset, Self::label, Self::has_leaf, Self::value);

        let mut best = None;
        let mut node = offset(unit(0)?);
        for (i, &byte) in key.iter().enumerate() {
            node ^= byte as usize;
            let u = unit(node)?;
            if label(u) != u32::from(byte) {
                break;
            }
            node ^= offset(u);
            if has_leaf(u) {
                let start = value(unit(node)?);
                let rest = self.normalized.get(start..)?;
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                best = Some((i + 1, &rest[..end]));
            }
        }
        best
    }
}

/// Check a precompiled charsmap (`.spm` normaliser, or tokenizer.json's `Precompiled`
/// normaliser) before anything walks it: every walk through the double array from the root, on
/// any input, must stay inside the array, and every replacement it names must start inside the
/// replacement strings on a character boundary. The tokenizers crate indexes both unchecked, so a
/// corrupt map would make it panic on some text.
pub fn check_charsmap(blob: &[u8]) -> Result<()> {
    let map = CharsMap::parse(blob)?;
    let units = &map.units;
    let normalized = std::str::from_utf8(&map.normalized).map_err(|_| bad("charsmap replacements are not UTF-8"))?;
    let root = *units.first().ok_or_else(|| bad("charsmap trie is empty"))?;
    let mut pending = vec![CharsMap::offset(root)];
    let mut seen = std::collections::HashSet::new();
    while let Some(node) = pending.pop() {
        if !seen.insert(node) {
            continue;
        }
        // The next input byte (1..=255) selects unit node ^ byte.
        if (node | 0xff) >= units.len() {
            return Err(bad("charsmap trie leads outside itself"));
        }
        for byte in 1..=0xffu32 {
            let unit = units[node ^ byte as usize];
            if CharsMap::label(unit) != byte {
                continue;
            }
            let next = node ^ byte as usize ^ CharsMap::offset(unit);
            if CharsMap::has_leaf(unit) {
                let leaf = *units.get(next).ok_or_else(|| bad("charsmap leaf outside the trie"))?;
                let start = CharsMap::value(leaf);
                if start > normalized.len() || !normalized.is_char_boundary(start) {
                    return Err(bad("charsmap names a replacement outside its strings"));
                }
            }
            pending.push(next);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

impl SentencePiece {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut pieces = Vec::new();
        let mut trainer = None;
        let mut normalizer = None;
        let mut reader = ProtoReader::new(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => pieces.push(parse_piece(b)?),
                (2, Value::Bytes(b)) => trainer = Some(parse_trainer_spec(b)?),
                (3, Value::Bytes(b)) => normalizer = Some(parse_normalizer_spec(b)?),
                _ => {}
            }
        }
        if pieces.is_empty() {
            return Err(bad("no pieces"));
        }
        let trainer = trainer.unwrap_or(TrainerSpec {
            model_type: ModelType::Unigram,
            treat_whitespace_as_suffix: false,
            byte_fallback: false,
        });
        let normalizer = normalizer.unwrap_or_default();
        let unk_id = pieces
            .iter()
            .position(|p| p.kind == PieceType::Unknown)
            .ok_or_else(|| bad("no unknown piece"))? as u32;
        let mut index = HashMap::with_capacity(pieces.len());
        let (mut min_score, mut max_score) = (f32::MAX, f32::MIN);
        for (id, piece) in pieces.iter().enumerate() {
            index.entry(piece.piece.clone()).or_insert(id as u32);
            if piece.kind == PieceType::Normal {
                min_score = min_score.min(piece.score);
                max_score = max_score.max(piece.score);
            }
        }
        if min_score > max_score {
            (min_score, max_score) = (0.0, 0.0);
        }
        let max_piece_bytes = pieces.iter().map(|p| p.piece.len()).max().unwrap_or(1);
        let user_defined = pieces
            .iter()
            .filter(|p| p.kind == PieceType::UserDefined)
            .map(|p| p.piece.clone())
            .collect();
        let charsmap = if normalizer.precompiled_charsmap.is_empty() {
            None
        } else {
            check_charsmap(&normalizer.precompiled_charsmap)?;
            Some(CharsMap::parse(&normalizer.precompiled_charsmap)?)
        };
        Ok(SentencePiece {
            pieces,
            model_type: trainer.model_type,
            normalizer,
            treat_whitespace_as_suffix: trainer.treat_whitespace_as_suffix,
            byte_fallback: trainer.byte_fallback,
            unk_id,
            index,
            max_piece_bytes,
            min_score,
            max_score,
            user_defined,
            charsmap,
        })
    }

    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The id of a piece; `None` if the model does not have it.
    pub fn piece_to_id(&self, piece: &str) -> Option<u32> {
        self.index.get(piece).copied()
    }

    pub fn id_to_piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(|p| p.piece.as_str())
    }

    fn kind(&self, id: u32) -> PieceType {
        self.pieces[id as usize].kind
    }

    /// `Normalizer::NormalizePrefix`: the replacement of the longest known prefix of `input` and
    /// how many bytes it consumes (user-defined pieces pass through untouched).
    fn normalize_prefix<'s>(&'s self, input: &'s str) -> (&'s str, usize) {
        if let Some(symbol) = self.user_defined.iter().filter(|s| input.starts_with(s.as_str())).max_by_key(|s| s.len()) {
            return (&input[..symbol.len()], symbol.len());
        }
        if let Some((len, replacement)) = self.charsmap.as_ref().and_then(|m| m.longest_prefix(input.as_bytes())) {
            // A map whose key ends inside a UTF-8 character (or whose replacement is not UTF-8)
            // is not used for that character: the text stays valid and the loop advances.
            match std::str::from_utf8(replacement) {
                Ok(replacement) if input.is_char_boundary(len) => return (replacement, len),
                _ => {}
            }
        }
        let len = input.chars().next().map_or(0, char::len_utf8);
        (&input[..len], len)
    }

    /// The normalised text the model segments (`Normalizer::Normalize`).
    pub fn normalize(&self, text: &str) -> String {
        let spec = &self.normalizer;
        let mut input = text;
        if spec.remove_extra_whitespaces {
            while !input.is_empty() {
                let (replacement, len) = self.normalize_prefix(input);
                if replacement != " " {
                    break;
                }
                input = &input[len..];
            }
        }
        let mut out = String::with_capacity(input.len() * 3);
        if input.is_empty() {
            return out;
        }
        let space = if spec.escape_whitespaces { SPACE_STR } else { " " };
        if !self.treat_whitespace_as_suffix && spec.add_dummy_prefix {
            out.push_str(space);
        }
        let mut is_prev_space = spec.remove_extra_whitespaces;
        while !input.is_empty() {
            let (mut replacement, len) = self.normalize_prefix(input);
            if is_prev_space {
                replacement = replacement.trim_start_matches(' ');
            }
            if !replacement.is_empty() {
                for c in replacement.chars() {
                    if spec.escape_whitespaces && c == ' ' {
                        out.push_str(SPACE_STR);
                    } else {
                        out.push(c);
                    }
                }
                is_prev_space = replacement.ends_with(' ');
            }
            input = &input[len..];
            if !spec.remove_extra_whitespaces {
                is_prev_space = false;
            }
        }
        if spec.remove_extra_whitespaces {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        if self.treat_whitespace_as_suffix && spec.add_dummy_prefix {
            out.push_str(space);
        }
        out
    }

    /// Normalise and segment `text`: (piece, id) pairs. An unknown span keeps its own text as the
    /// piece (with the unknown id), as `encode(..., out_type=str)` returns it.
    pub fn encode(&self, text: &str) -> Vec<(String, u32)> {
        let normalized = self.normalize(text);
        let segments = match self.model_type {
            ModelType::Unigram => self.viterbi(&normalized),
            ModelType::Bpe => self.bpe(&normalized),
            ModelType::Char => normalized
                .char_indices()
                .map(|(i, c)| (i, i + c.len_utf8(), self.piece_to_id(&normalized[i..i + c.len_utf8()])))
                .collect(),
            ModelType::Word => self.words(&normalized),
        };
        // Resolve unknowns, fusing consecutive ones into one span.
        let mut out: Vec<(String, u32)> = Vec::with_capacity(segments.len());
        let mut last_unknown = false;
        for (start, end, id) in segments {
            let surface = &normalized[start..end];
            match id.filter(|&id| self.kind(id) != PieceType::Unknown) {
                Some(id) => {
                    out.push((surface.to_string(), id));
                    last_unknown = false;
                }
                None if self.byte_fallback => {
                    for byte in surface.bytes() {
                        let piece = format!("<0x{byte:02X}>");
                        let id = self.piece_to_id(&piece).unwrap_or(self.unk_id);
                        out.push((piece, id));
                    }
                    last_unknown = false;
                }
                None => {
                    if last_unknown {
                        out.last_mut().unwrap().0.push_str(surface);
                    } else {
                        out.push((surface.to_string(), self.unk_id));
                    }
                    last_unknown = true;
                }
            }
        }
        out
    }

    /// `unigram_model.cc` `EncodeOptimized`: best path over all pieces matching at each
    /// character; returns (start, end, id) byte spans, `None` for unknown characters.
    fn viterbi(&self, text: &str) -> Vec<(usize, usize, Option<u32>)> {
        #[derive(Clone, Copy)]
        struct Best {
            id: Option<u32>,
            score: f32,
            starts_at: Option<usize>,
        }
        let size = text.len();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![Best { id: None, score: 0.0, starts_at: None }; size + 1];
        let mut starts_at = 0;
        while starts_at < size {
            let score_here = best[starts_at].score;
            let char_len = text[starts_at..].chars().next().map_or(1, char::len_utf8);
            let mut has_single_node = false;
            let mut end = starts_at;
            for c in text[starts_at..].chars() {
                end += c.len_utf8();
                if end - starts_at > self.max_piece_bytes {
                    break;
                }
                let Some(&id) = self.index.get(&text[starts_at..end]) else { continue };
                let piece = &self.pieces[id as usize];
                let score = match piece.kind {
                    PieceType::Normal => piece.score,
                    PieceType::UserDefined => (end - starts_at) as f32 * self.max_score - 0.1,
                    // Unused pieces and control/unknown/byte symbols are not matched in text.
                    _ => continue,
                };
                let candidate = score + score_here;
                let target = &mut best[end];
                if target.starts_at.is_none() || candidate > target.score {
                    *target = Best { id: Some(id), score: candidate, starts_at: Some(starts_at) };
                }
                if end - starts_at == char_len {
                    has_single_node = true;
                }
            }
            if !has_single_node {
                let candidate = unk_score + score_here;
                let target = &mut best[starts_at + char_len];
                if target.starts_at.is_none() || candidate > target.score {
                    *target = Best { id: None, score: candidate, starts_at: Some(starts_at) };
                }
            }
            starts_at += char_len;
        }
        let mut spans = Vec::new();
        let mut end = size;
        while end > 0 {
            let node = best[end];
            let start = node.starts_at.expect("every position is reachable");
            spans.push((start, end, node.id));
            end = start;
        }
        spans.reverse();
        spans
    }

    /// `bpe_model.cc` without dropout: start from characters (user-defined pieces kept whole),
    /// repeatedly merge the adjacent pair whose concatenation is the best-scoring piece (leftmost
    /// on ties). As in the C++ library the candidate pairs wait in a priority queue and the
    /// symbols form a linked list, so a text of n symbols takes O(n log n), not O(n²).
    fn bpe(&self, text: &str) -> Vec<(usize, usize, Option<u32>)> {
        use std::cmp::{Ordering, Reverse};
        use std::collections::BinaryHeap;

        /// A candidate merge of the symbols starting at `left` and `right`, which spanned
        /// `start..mid` and `mid..end` when it was queued (stale once either has changed).
        struct Candidate {
            score: f32,
            start: usize,
            mid: usize,
            end: usize,
            left: usize,
            right: usize,
        }
        impl Candidate {
            fn key(&self) -> (f32, Reverse<usize>) {
                (self.score, Reverse(self.start))
            }
        }
        impl PartialEq for Candidate {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl Eq for Candidate {}
        impl PartialOrd for Candidate {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Candidate {
            fn cmp(&self, other: &Self) -> Ordering {
                let ((a, ra), (b, rb)) = (self.key(), other.key());
                a.total_cmp(&b).then(ra.cmp(&rb))
            }
        }

        // The symbols' spans and their neighbours in the list; NONE = no neighbour.
        const NONE: usize = usize::MAX;
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let rest = &text[pos..];
            let len = self
                .user_defined
                .iter()
                .filter(|s| rest.starts_with(s.as_str()))
                .map(|s| s.len())
                .max()
                .unwrap_or_else(|| rest.chars().next().map_or(1, char::len_utf8));
            spans.push((pos, pos + len));
            pos += len;
        }
        let n = spans.len();
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
        let mut alive = vec![true; n];
        let score_of = |start: usize, end: usize| -> Option<f32> {
            let id = *self.index.get(&text[start..end])?;
            match self.kind(id) {
                PieceType::Normal | PieceType::UserDefined => Some(self.pieces[id as usize].score),
                _ => None,
            }
        };
        let candidate = |spans: &[(usize, usize)], left: usize, right: usize| -> Option<Candidate> {
            let ((start, mid), (_, end)) = (spans[left], spans[right]);
            score_of(start, end).map(|score| Candidate { score, start, mid, end, left, right })
        };
        let mut queue: BinaryHeap<Candidate> = (1..n).filter_map(|i| candidate(&spans, i - 1, i)).collect();
        while let Some(c) = queue.pop() {
            let current = alive[c.left] && alive[c.right] && next[c.left] == c.right;
            if !current || spans[c.left] != (c.start, c.mid) || spans[c.right] != (c.mid, c.end) {
                continue;
            }
            // Merge right into left.
            spans[c.left] = (c.start, c.end);
            alive[c.right] = false;
            next[c.left] = next[c.right];
            if next[c.left] != NONE {
                prev[next[c.left]] = c.left;
            }
            if prev[c.left] != NONE {
                queue.extend(candidate(&spans, prev[c.left], c.left));
            }
            if next[c.left] != NONE {
                queue.extend(candidate(&spans, c.left, next[c.left]));
            }
        }
        (0..n)
            .filter(|&i| alive[i])
            .map(|i| spans[i])
            .map(|(s, e)| (s, e, self.piece_to_id(&text[s..e]).filter(|&id| self.kind(id) != PieceType::Unused)))
            .collect()
    }

    /// Word models: split before each `▁`.
    fn words(&self, text: &str) -> Vec<(usize, usize, Option<u32>)> {
        let mut spans = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == SPACE && i > start {
                spans.push((start, i, self.piece_to_id(&text[start..i])));
                start = i;
            }
        }
        if start < text.len() {
            spans.push((start, text.len(), self.piece_to_id(&text[start..])));
        }
        spans
    }

    /// `DecodePieces`: control pieces vanish, `<unk>` becomes ` ⁇ `, pieces the model does not
    /// know are kept verbatim, byte pieces are reassembled into UTF-8, `▁` becomes a space, and
    /// the leading `▁` of the first piece (the dummy prefix) is dropped.
    pub fn decode_pieces<S: AsRef<str>>(&self, pieces: &[S]) -> String {
        let mut out = String::new();
        let mut bytes: Vec<u8> = Vec::new();
        let mut at_start = true;
        let strip_prefix = self.normalizer.add_dummy_prefix && !self.treat_whitespace_as_suffix;
        for piece in pieces {
            let piece = piece.as_ref();
            let id = self.piece_to_id(piece);
            let kind = id.map_or(PieceType::Unknown, |id| self.kind(id));
            if kind == PieceType::Byte {
                if let Some(byte) = piece.strip_prefix("<0x").and_then(|p| p.strip_suffix('>')).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    bytes.push(byte);
                    continue;
                }
            }
            if !bytes.is_empty() {
                out.push_str(&String::from_utf8_lossy(&bytes));
                bytes.clear();
                at_start = false;
            }
            match kind {
                PieceType::Control => {}
                PieceType::Unknown => {
                    if id.is_some() {
                        out.push_str(UNKNOWN_SURFACE);
                    } else {
                        out.push_str(piece);
                    }
                    at_start = false;
                }
                _ => {
                    let text = if at_start && strip_prefix { piece.strip_prefix(SPACE).unwrap_or(piece) } else { piece };
                    out.push_str(&text.replace(SPACE, " "));
                    // The sentence start lasts while nothing was written (`▁`, `▁b` → "b").
                    at_start = out.is_empty();
                }
            }
        }
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }

    fn field_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    /// A model proto with the given pieces (type 1 = normal, 2 = unknown) and model type.
    fn model(pieces: &[(&str, f32, u64)], model_type: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for (piece, score, kind) in pieces {
            let mut p = Vec::new();
            field_bytes(1, piece.as_bytes(), &mut p);
            varint(2 << 3 | 5, &mut p);
            p.extend_from_slice(&score.to_le_bytes());
            varint(3 << 3, &mut p);
            varint(*kind, &mut p);
            field_bytes(1, &p, &mut out);
        }
        let mut trainer = Vec::new();
        varint(3 << 3, &mut trainer);
        varint(model_type, &mut trainer);
        field_bytes(2, &trainer, &mut out);
        out
    }

    #[test]
    fn unigram_picks_best_path_and_fuses_unknowns() {
        let sp = SentencePiece::from_bytes(&model(
            &[("<unk>", 0.0, 2), ("\u{2581}", -1.0, 1), ("a", -2.0, 1), ("b", -2.0, 1), ("ab", -3.0, 1), ("\u{2581}ab", -10.0, 1), ("\u{2581}b", -4.0, 1)],
            1,
        ))
        .unwrap();
        assert_eq!(sp.normalize("  ab   b "), "\u{2581}ab\u{2581}b");
        let pieces: Vec<String> = sp.encode("ab xyb").into_iter().map(|(p, _)| p).collect();
        assert_eq!(pieces, ["\u{2581}", "ab", "\u{2581}", "xy", "b"]);
        assert_eq!(sp.encode("xy")[1], ("xy".to_string(), 0));
        assert!(sp.encode("").is_empty());
        assert_eq!(sp.decode_pieces(&["\u{2581}", "ab", "\u{2581}b", "zz\u{2581}", "<unk>"]), "ab bzz\u{2581} \u{2047} ");
        assert_eq!(sp.decode_pieces(&["\u{2581}", "\u{2581}b"]), "b");
    }

    #[test]
    fn bpe_merges_best_pair_first() {
        let sp = SentencePiece::from_bytes(&model(
            &[("<unk>", 0.0, 2), ("\u{2581}", -1.0, 1), ("a", -1.0, 1), ("b", -1.0, 1), ("ab", -2.0, 1), ("\u{2581}a", -1.5, 1), ("\u{2581}ab", -3.0, 1)],
            2,
        ))
        .unwrap();
        let pieces: Vec<String> = sp.encode("ab").into_iter().map(|(p, _)| p).collect();
        // ▁a (-1.5) beats ab (-2), then ▁a+b = ▁ab.
        assert_eq!(pieces, ["\u{2581}ab"]);
    }

    #[test]
    fn truncated_proto_is_an_error() {
        let bytes = model(&[("<unk>", 0.0, 2)], 1);
        assert!(SentencePiece::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(SentencePiece::from_bytes(b"").is_err());
    }

    #[test]
    fn empty_long_and_non_finite_pieces_are_refused() {
        for model_type in [1, 2] {
            for (pieces, why) in [
                (vec![("<unk>", 0.0, 2), ("", 0.0, 4)], "empty"),
                (vec![("<unk>", 0.0, 2), ("", 0.0, 1)], "empty"),
                (vec![("<unk>", 0.0, 2), ("a", f32::NAN, 1)], "score"),
            ] {
                let err = SentencePiece::from_bytes(&model(&pieces, model_type)).unwrap_err().to_string();
                assert!(err.contains(why), "{err}");
            }
            let long = "a".repeat(MAX_PIECE_BYTES + 1);
            let err = SentencePiece::from_bytes(&model(&[("<unk>", 0.0, 2), (&long, 0.0, 4)], model_type)).unwrap_err().to_string();
            assert!(err.contains("longer than"), "{err}");
        }
    }

    /// The queue-based merge gives what the plain rescan-every-pair loop gives (the definition:
    /// best-scoring adjacent pair, leftmost on ties), on random models and texts.
    #[test]
    fn bpe_queue_matches_the_plain_merge_loop() {
        let mut rng = fastrand::Rng::with_seed(13);
        for _ in 0..200 {
            let alphabet = ['a', 'b', 'c', '\u{2581}'];
            let mut pieces: Vec<(String, f32, u64)> = vec![("<unk>".into(), 0.0, 2)];
            pieces.extend(alphabet.iter().map(|c| (c.to_string(), -1.0, 1)));
            for _ in 0..rng.usize(1..30) {
                let piece: String = (0..rng.usize(2..5)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
                if pieces.iter().all(|(p, _, _)| *p != piece) {
                    // Few distinct scores, so ties happen.
                    pieces.push((piece, -(rng.usize(1..4) as f32), 1));
                }
            }
            let refs: Vec<(&str, f32, u64)> = pieces.iter().map(|(p, s, k)| (p.as_str(), *s, *k)).collect();
            let sp = SentencePiece::from_bytes(&model(&refs, 2)).unwrap();
            let text: String = (0..rng.usize(0..40)).map(|_| ['a', 'b', 'c', ' '][rng.usize(..4)]).collect();
            let normalized = sp.normalize(&text);

            let mut symbols: Vec<(usize, usize)> = normalized.char_indices().map(|(i, c)| (i, i + c.len_utf8())).collect();
            loop {
                let mut best: Option<(f32, usize)> = None;
                for i in 0..symbols.len().saturating_sub(1) {
                    if let Some(&id) = sp.index.get(&normalized[symbols[i].0..symbols[i + 1].1]) {
                        let score = sp.pieces[id as usize].score;
                        if best.is_none_or(|(s, _)| score > s) {
                            best = Some((score, i));
                        }
                    }
                }
                let Some((_, i)) = best else { break };
                symbols[i].1 = symbols[i + 1].1;
                symbols.remove(i + 1);
            }
            let expected: Vec<(usize, usize)> = symbols;
            let got: Vec<(usize, usize)> = sp.bpe(&normalized).into_iter().map(|(s, e, _)| (s, e)).collect();
            assert_eq!(got, expected, "{text:?} with {pieces:?}");
        }
    }
}
