//! The one check of a model's JSON settings (`config.json`, `generation_config.json`, a
//! `task_specific_params` entry) before anything is sized from them: every dimension, count and
//! epsilon hubside reads is range-checked here, for every architecture, so that a hostile or
//! corrupt config is refused with `Error::Config` naming the field instead of panicking, looping
//! or allocating without bound later on. Real checkpoints sit far inside these limits.
//!
//! Fields are found by name wherever an architecture spells them (BERT `hidden_size`, DistilBERT
//! `dim`, T5 `d_model`, ...); a field that is absent is not checked here (the architecture's own
//! parser decides whether it is required).

use serde_json::Value;

use crate::error::{Error, Result};

/// Most positions a model may declare (absolute position tables, decoder length).
pub const MAX_POSITIONS: u64 = 1 << 20;
/// Most labels a classifier may declare (`num_labels`, `id2label`).
pub const MAX_LABELS: u64 = 100_000;
/// Widest beam search.
pub const MAX_BEAMS: u64 = 64;
/// Largest vocabulary (rows of an embedding table).
pub const MAX_VOCAB: u64 = 1 << 22;
/// Largest hidden / feed-forward width.
pub const MAX_WIDTH: u64 = 1 << 18;
/// Most layers in a stack, heads in a layer, buckets, token types.
pub const MAX_COUNT: u64 = 4096;
/// Most elements one matrix sized from the config may have (rows × width): 2^32, 16 GiB in f32,
/// beyond anything that loads, but far from overflowing a usize product.
pub const MAX_MATRIX_ELEMENTS: u64 = 1 << 32;

#[derive(Clone, Copy)]
enum Kind {
    /// A width: 1..=MAX_WIDTH.
    Width,
    /// A vocabulary size.
    Vocab,
    /// A count of layers / heads / buckets: 1..=MAX_COUNT.
    Count,
    /// A count that may be 0 for none (DeBERTa's `type_vocab_size`, `conv_kernel_size`).
    CountOrZero,
    /// A position span, or 0 / negative for "not set" (DeBERTa's `max_relative_positions` and
    /// `position_buckets` default to -1).
    PositionsOrUnset,
    /// A position limit.
    Positions,
    /// A generation length (may be 0).
    Length,
    Labels,
    Beams,
    /// A LayerNorm / RMSNorm epsilon: finite and > 0.
    Epsilon,
    /// A token id, or a list of them (`eos_token_id` may be one): each below MAX_VOCAB.
    TokenIds,
}

/// Every field hubside sizes something from, by the names the architectures give it.
const FIELDS: &[(&str, Kind)] = &[
    ("hidden_size", Kind::Width),
    ("d_model", Kind::Width),
    ("dim", Kind::Width),
    ("hidden_dim", Kind::Width),
    ("intermediate_size", Kind::Width),
    ("encoder_ffn_dim", Kind::Width),
    ("decoder_ffn_dim", Kind::Width),
    ("d_ff", Kind::Width),
    ("d_kv", Kind::Width),
    ("vocab_size", Kind::Vocab),
    ("decoder_vocab_size", Kind::Vocab),
    ("type_vocab_size", Kind::CountOrZero),
    ("embedding_size", Kind::Width),
    ("pooler_hidden_size", Kind::Width),
    ("attention_head_size", Kind::Width),
    ("conv_kernel_size", Kind::CountOrZero),
    ("conv_groups", Kind::Count),
    ("position_buckets", Kind::PositionsOrUnset),
    ("max_relative_positions", Kind::PositionsOrUnset),
    ("num_hidden_layers", Kind::Count),
    ("n_layers", Kind::Count),
    ("num_layers", Kind::Count),
    ("num_decoder_layers", Kind::Count),
    ("encoder_layers", Kind::Count),
    ("decoder_layers", Kind::Count),
    ("num_attention_heads", Kind::Count),
    ("n_heads", Kind::Count),
    ("num_heads", Kind::Count),
    ("encoder_attention_heads", Kind::Count),
    ("decoder_attention_heads", Kind::Count),
    ("relative_attention_num_buckets", Kind::Count),
    // Whisper: 80, or 128 from large-v3 on.
    ("num_mel_bins", Kind::Count),
    ("relative_attention_max_distance", Kind::Positions),
    ("max_position_embeddings", Kind::Positions),
    ("n_positions", Kind::Positions),
    ("max_source_positions", Kind::Positions),
    ("max_target_positions", Kind::Positions),
    ("max_length", Kind::Length),
    ("max_new_tokens", Kind::Length),
    ("num_labels", Kind::Labels),
    ("num_beams", Kind::Beams),
    ("layer_norm_eps", Kind::Epsilon),
    ("layer_norm_epsilon", Kind::Epsilon),
    ("pad_token_id", Kind::TokenIds),
    ("bos_token_id", Kind::TokenIds),
    ("eos_token_id", Kind::TokenIds),
    ("decoder_start_token_id", Kind::TokenIds),
    ("forced_bos_token_id", Kind::TokenIds),
];

/// Widths and the row counts they multiply with in one matrix (embedding tables, position tables,
/// feed-forward and attention projections).
const WIDTHS: &[&str] = &["hidden_size", "d_model", "dim", "embedding_size"];
const ROWS: &[&str] = &[
    "vocab_size",
    "decoder_vocab_size",
    "max_position_embeddings",
    "n_positions",
    "max_source_positions",
    "max_target_positions",
    "intermediate_size",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "hidden_dim",
    "d_ff",
    "num_labels",
    // DeBERTa's relative position embeddings have twice these rows; the element limit is far
    // enough from overflowing that the factor 2 needs no check of its own.
    "position_buckets",
    "max_relative_positions",
];

/// Check every field of `config` that hubside sizes something from. `file` names the JSON file in
/// the error (`config.json`, `generation_config.json`).
pub fn validate_config(config: &Value, file: &str) -> Result<()> {
    let refuse = |field: &str, why: String| Err(Error::Config(format!("{file}: {field} {why}")));
    for &(field, kind) in FIELDS {
        let Some(value) = config.get(field).filter(|v| !v.is_null()) else { continue };
        if let Kind::TokenIds = kind {
            let ids = value.as_array().map_or_else(|| vec![value], |ids| ids.iter().collect());
            if ids.iter().all(|id| id.as_u64().is_some_and(|id| id < MAX_VOCAB)) {
                continue;
            }
            return refuse(field, format!("is {value}; it must be a token id (or a list of them) below {MAX_VOCAB}"));
        }
        if let Kind::Epsilon = kind {
            match value.as_f64() {
                Some(eps) if eps.is_finite() && eps > 0.0 && eps < 1.0 => continue,
                _ => return refuse(field, format!("is {value}; it must be a number > 0 and < 1")),
            }
        }
        if let Kind::PositionsOrUnset = kind {
            match value.as_i64() {
                Some(n) if n <= MAX_POSITIONS as i64 => continue,
                _ => return refuse(field, format!("is {value}; it must be a whole number up to {MAX_POSITIONS} (0 or less: not set)")),
            }
        }
        let (min, max) = match kind {
            Kind::Width => (1, MAX_WIDTH),
            Kind::Vocab => (1, MAX_VOCAB),
            Kind::Count => (1, MAX_COUNT),
            Kind::CountOrZero => (0, MAX_COUNT),
            Kind::Positions => (1, MAX_POSITIONS),
            Kind::Length => (0, MAX_POSITIONS),
            Kind::Labels => (1, MAX_LABELS),
            Kind::Beams => (1, MAX_BEAMS),
            Kind::Epsilon | Kind::TokenIds | Kind::PositionsOrUnset => unreachable!("checked above"),
        };
        match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => {}
            _ => return refuse(field, format!("is {value}; it must be a whole number from {min} to {max}")),
        }
    }
    if let Some(labels) = config.get("id2label").and_then(Value::as_object) {
        if labels.len() as u64 > MAX_LABELS {
            return refuse("id2label", format!("has {} labels; at most {MAX_LABELS} are supported", labels.len()));
        }
    }
    let number = |field: &str| config.get(field).and_then(Value::as_u64);
    for width in WIDTHS.iter().filter_map(|&w| number(w).map(|n| (w, n))) {
        for rows in ROWS.iter().filter_map(|&r| number(r).map(|n| (r, n))) {
            if rows.1.checked_mul(width.1).is_none_or(|n| n > MAX_MATRIX_ELEMENTS) {
                return refuse(
                    rows.0,
                    format!("× {} = {} × {} is more than {MAX_MATRIX_ELEMENTS} elements in one matrix", width.0, rows.1, width.1),
                );
            }
        }
    }
    Ok(())
}

/// A beam width asked for by a caller (not a file): the same limit as [`validate_config`]'s.
pub fn check_beams(num_beams: usize) -> Result<()> {
    if num_beams == 0 || num_beams as u64 > MAX_BEAMS {
        return Err(Error::Input(format!("num_beams is {num_beams}; it must be from 1 to {MAX_BEAMS}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(config: Value) -> String {
        match validate_config(&config, "config.json") {
            Err(Error::Config(message)) => message,
            other => panic!("{config} was not refused: {other:?}"),
        }
    }

    #[test]
    fn real_configs_pass() {
        let marian = json!({ "d_model": 512, "vocab_size": 58101, "max_position_embeddings": 512, "encoder_layers": 6,
            "encoder_attention_heads": 8, "encoder_ffn_dim": 2048, "num_beams": 4, "max_length": 512 });
        validate_config(&marian, "config.json").unwrap();
        let bert = json!({ "hidden_size": 768, "num_labels": 3, "layer_norm_eps": 1e-12, "id2label": {"0": "a"} });
        validate_config(&bert, "config.json").unwrap();
        let whisper_large_v3 = json!({ "d_model": 1280, "vocab_size": 51866, "num_mel_bins": 128, "encoder_layers": 32,
            "decoder_layers": 4, "max_source_positions": 1500, "max_target_positions": 448, "encoder_ffn_dim": 5120 });
        validate_config(&whisper_large_v3, "config.json").unwrap();
        let ids = json!({ "pad_token_id": 1, "eos_token_id": [1, 2], "decoder_start_token_id": 2, "bos_token_id": null });
        validate_config(&ids, "generation_config.json").unwrap();
        // microsoft/deberta-v3-base: no token types, relative span not set, 256 buckets.
        let deberta = json!({ "hidden_size": 768, "vocab_size": 128100, "type_vocab_size": 0, "max_relative_positions": -1,
            "position_buckets": 256, "pooler_hidden_size": 768, "layer_norm_eps": 1e-7 });
        validate_config(&deberta, "config.json").unwrap();
    }

    #[test]
    fn each_limit_names_its_field() {
        for (config, field) in [
            (json!({ "num_labels": 1_000_000_000_000u64 }), "num_labels"),
            (json!({ "max_position_embeddings": 1u64 << 62 }), "max_position_embeddings"),
            (json!({ "max_position_embeddings": 100_000_000 }), "max_position_embeddings"),
            (json!({ "num_beams": 1_000_000 }), "num_beams"),
            (json!({ "d_model": 0 }), "d_model"),
            (json!({ "d_model": -4 }), "d_model"),
            (json!({ "d_model": 1.5 }), "d_model"),
            (json!({ "layer_norm_eps": -1e-5 }), "layer_norm_eps"),
            (json!({ "num_mel_bins": 0 }), "num_mel_bins"),
            (json!({ "num_mel_bins": 1u64 << 40 }), "num_mel_bins"),
            (json!({ "layer_norm_epsilon": 0.0 }), "layer_norm_epsilon"),
            (json!({ "pad_token_id": -1 }), "pad_token_id"),
            (json!({ "pad_token_id": 1u64 << 40 }), "pad_token_id"),
            (json!({ "hidden_size": 1 << 18, "vocab_size": 1 << 22 }), "vocab_size"),
            (json!({ "decoder_start_token_id": 1u64 << 40 }), "decoder_start_token_id"),
            (json!({ "eos_token_id": [2, -1] }), "eos_token_id"),
            (json!({ "pad_token_id": "<pad>" }), "pad_token_id"),
            (json!({ "position_buckets": 1u64 << 40 }), "position_buckets"),
            (json!({ "max_relative_positions": 1.5 }), "max_relative_positions"),
            (json!({ "hidden_size": 1 << 18, "position_buckets": 1 << 20 }), "position_buckets"),
            (json!({ "embedding_size": 1 << 18, "vocab_size": 1 << 22 }), "vocab_size"),
            (json!({ "type_vocab_size": -1 }), "type_vocab_size"),
            (json!({ "conv_kernel_size": 5000 }), "conv_kernel_size"),
        ] {
            let message = refused(config.clone());
            assert!(message.contains(field), "{config}: {message}");
        }
        let labels: serde_json::Map<String, Value> = (0..=MAX_LABELS).map(|i| (i.to_string(), json!("x"))).collect();
        assert!(refused(json!({ "id2label": labels })).contains("id2label"));
        assert!(matches!(check_beams(65), Err(Error::Input(_))) && check_beams(64).is_ok());
    }
}
