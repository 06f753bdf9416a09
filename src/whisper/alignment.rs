//! Alignment heads: the decoder's cross-attention heads whose weights follow the spoken words in
//! time, which word timestamps (`timing`) read. Where they come from, first found wins:
//! - a transformers repo's `generation_config.json` `alignment_heads` (`[[layer, head], ...]`);
//! - a CTranslate2 repo's `config.json` `alignment_heads` (the same shape);
//! - openai/whisper's defaults per model (`_ALIGNMENT_HEADS` in
//!   [whisper/__init__.py](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/__init__.py)),
//!   recognised by the model's dimensions (whisper.cpp ggml files, repos without the key);
//! - otherwise openai's fallback in `Whisper.__init__`: every head of the last half of the decoder
//!   layers.

use super::config::Config;
use crate::error::{Error, Result};

/// (decoder layer, head) pairs.
pub type Heads = Vec<(usize, usize)>;

/// (n_text_layer, n_text_state, n_vocab).
type Dimensions = (usize, usize, usize);

/// A model name, its dimensions and its heads.
type Entry = (&'static str, Dimensions, &'static [(usize, usize)]);

/// openai's `_ALIGNMENT_HEADS` (base85 + gzip boolean (layer, head) masks), decoded once by
/// tests/models/make_whisper_words.py into tests/fixtures/whisper/alignment_heads.json, keyed here
/// by (n_text_layer, n_text_state, n_vocab), which tell the released models apart — except
/// large-v1 and large-v2, which share every dimension: large-v2 (the later, more used one) wins;
/// large-v1 repos ship their own heads in their configs. large-v3 and turbo name the same masks
/// as "large" and "turbo".
const OPENAI_DEFAULTS: &[Entry] = &[
    ("tiny.en", (4, 384, 51864), &[(1, 0), (2, 0), (2, 5), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4)]),
    ("tiny", (4, 384, 51865), &[(2, 2), (3, 0), (3, 2), (3, 3), (3, 4), (3, 5)]),
    ("base.en", (6, 512, 51864), &[(3, 3), (4, 7), (5, 1), (5, 5), (5, 7)]),
    ("base", (6, 512, 51865), &[(3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6)]),
    (
        "small.en",
        (12, 768, 51864),
        &[
            (6, 6), (7, 0), (7, 3), (7, 8), (8, 2), (8, 5), (8, 7), (9, 0), (9, 4), (9, 8), (9, 10), (10, 0), (10, 1),
            (10, 2), (10, 3), (10, 6), (10, 11), (11, 2), (11, 4),
        ],
    ),
    ("small", (12, 768, 51865), &[(5, 3), (5, 9), (8, 0), (8, 4), (8, 7), (8, 8), (9, 0), (9, 7), (9, 9), (10, 5)]),
    (
        "medium.en",
        (24, 1024, 51864),
        &[
            (11, 4), (14, 1), (14, 12), (14, 14), (15, 4), (16, 0), (16, 4), (16, 9), (17, 12), (17, 14), (18, 7),
            (18, 10), (18, 15), (20, 0), (20, 3), (20, 9), (20, 14), (21, 12),
        ],
    ),
    ("medium", (24, 1024, 51865), &[(13, 15), (15, 4), (15, 15), (16, 1), (20, 0), (23, 4)]),
    (
        "large-v2",
        (32, 1280, 51865),
        &[
            (10, 12), (13, 17), (16, 11), (16, 12), (16, 13), (17, 15), (17, 16), (18, 4), (18, 11), (18, 19), (19, 11),
            (21, 2), (21, 3), (22, 3), (22, 9), (22, 12), (23, 5), (23, 7), (23, 13), (25, 5), (26, 1), (26, 12), (27, 15),
        ],
    ),
    ("large-v3", (32, 1280, 51866), &[(7, 0), (10, 17), (12, 18), (13, 12), (16, 1), (17, 14), (19, 11), (21, 4), (24, 1), (25, 6)]),
    ("large-v3-turbo", (4, 1280, 51866), &[(2, 4), (2, 11), (3, 3), (3, 6), (3, 11), (3, 14)]),
];

/// openai's table entry for a model of these dimensions, by name.
pub fn openai_default(config: &Config) -> Option<(&'static str, Heads)> {
    let key = (config.n_text_layer, config.n_text_state, config.n_vocab);
    OPENAI_DEFAULTS.iter().find(|(_, dims, _)| *dims == key).map(|(name, _, heads)| (*name, heads.to_vec()))
}

/// The names openai's table covers, with their heads (for tests against the decoded table).
pub fn openai_table() -> impl Iterator<Item = (&'static str, &'static [(usize, usize)])> {
    OPENAI_DEFAULTS.iter().map(|(name, _, heads)| (*name, *heads))
}

/// openai's fallback: all heads of the last half of the decoder layers.
pub fn last_half(config: &Config) -> Heads {
    (config.n_text_layer / 2..config.n_text_layer).flat_map(|l| (0..config.n_text_head).map(move |h| (l, h))).collect()
}

/// `[[layer, head], ...]` from a config file's `alignment_heads` (`None`: key absent or null),
/// checked against the model.
pub fn from_json(value: Option<&serde_json::Value>, file: &str, config: &Config) -> Result<Option<Heads>> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let bad = || Error::Config(format!("{file}: alignment_heads must be a list of [layer, head] pairs, got {value}"));
    let pairs = value.as_array().ok_or_else(bad)?;
    let heads = pairs
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([l, h]) => Some((l.as_u64()? as usize, h.as_u64()? as usize)),
            _ => None,
        })
        .collect::<Option<Heads>>()
        .ok_or_else(bad)?;
    validate(&heads, config, file)?;
    Ok(Some(heads))
}

/// Every head must exist in the model, and there must be at least one.
pub fn validate(heads: &[(usize, usize)], config: &Config, origin: &str) -> Result<()> {
    if heads.is_empty() {
        return Err(Error::Config(format!("{origin}: alignment_heads is empty")));
    }
    if let Some((l, h)) = heads.iter().find(|(l, h)| *l >= config.n_text_layer || *h >= config.n_text_head) {
        return Err(Error::Config(format!(
            "{origin}: alignment head [{l}, {h}] does not exist: the decoder has {} layers of {} heads",
            config.n_text_layer, config.n_text_head
        )));
    }
    Ok(())
}

/// The heads for a model whose repo named none: openai's table, else the last half.
pub fn defaults(config: &Config) -> Heads {
    openai_default(config).map_or_else(|| last_half(config), |(_, heads)| heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n_text_layer: usize, n_text_head: usize, n_text_state: usize, n_vocab: usize) -> Config {
        Config {
            n_mels: 80,
            n_audio_ctx: 1500,
            n_audio_state: n_text_state,
            n_audio_head: n_text_head,
            n_audio_layer: n_text_layer,
            n_vocab,
            n_text_ctx: 448,
            n_text_state,
            n_text_head,
            n_text_layer,
        }
    }

    #[test]
    fn table_matches_openais_decoded_masks() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/whisper/alignment_heads.json");
        let decoded: std::collections::HashMap<String, Vec<(usize, usize)>> =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for (name, heads) in openai_table() {
            assert_eq!(decoded[name], heads, "{name}");
        }
        // The names that share masks with a listed one.
        assert_eq!(decoded["large"], decoded["large-v3"]);
        assert_eq!(decoded["turbo"], decoded["large-v3-turbo"]);
    }

    #[test]
    fn defaults_follow_the_dimensions() {
        assert_eq!(openai_default(&config(4, 6, 384, 51864)).unwrap().0, "tiny.en");
        assert_eq!(openai_default(&config(6, 8, 512, 51865)).unwrap().0, "base");
        // distil-large-v3: 2 decoder layers, unknown to openai: all heads of layer 1.
        let distil = config(2, 20, 1280, 51866);
        assert_eq!(defaults(&distil), (0..20).map(|h| (1, h)).collect::<Vec<_>>());
    }

    #[test]
    fn json_heads_are_checked_against_the_model() {
        let c = config(4, 6, 384, 51864);
        let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(from_json(Some(&json("[[1, 0], [3, 5]]")), "f", &c).unwrap(), Some(vec![(1, 0), (3, 5)]));
        assert_eq!(from_json(None, "f", &c).unwrap(), None);
        assert_eq!(from_json(Some(&json("null")), "f", &c).unwrap(), None);
        for bad in ["[[4, 0]]", "[[0, 6]]", "[]", "[[1]]", "[[1, -1]]", "\"x\"", "[[1, 0.5]]"] {
            assert!(matches!(from_json(Some(&json(bad)), "f", &c), Err(Error::Config(_))), "{bad}");
        }
    }
}
