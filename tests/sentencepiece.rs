//! The SentencePiece reader and encoder against the C++ library: tests/sentencepiece/cases.json
//! holds what `sentencepiece` (Python bindings of the C++ code) makes of tricky inputs with the
//! fixtures' models (regenerate with tests/sentencepiece/make_cases.py).
#![cfg(not(target_arch = "wasm32"))]

use hubside::tokenizer::sentencepiece::SentencePiece;
use serde::Deserialize;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Deserialize)]
struct Cases {
    models: std::collections::BTreeMap<String, ModelCases>,
}

#[derive(Deserialize)]
struct ModelCases {
    encode: Vec<Encode>,
    decode_pieces: Vec<Decode>,
}

#[derive(Deserialize)]
struct Encode {
    text: String,
    pieces: Vec<String>,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Decode {
    pieces: Vec<String>,
    text: String,
}

#[test]
fn matches_the_sentencepiece_library() {
    let cases: Cases =
        serde_json::from_slice(&std::fs::read(format!("{ROOT}/tests/sentencepiece/cases.json")).unwrap()).unwrap();
    assert_eq!(cases.models.len(), 3);
    for (name, model) in &cases.models {
        let bytes = std::fs::read(format!("{ROOT}/tests/fixtures/hub/tiny-random/{name}")).unwrap();
        let sp = SentencePiece::from_bytes(&bytes).unwrap();
        for case in &model.encode {
            let (pieces, ids): (Vec<String>, Vec<u32>) = sp.encode(&case.text).into_iter().unzip();
            assert_eq!(pieces, case.pieces, "{name}: pieces of {:?}", case.text);
            assert_eq!(ids, case.ids, "{name}: ids of {:?}", case.text);
        }
        for case in &model.decode_pieces {
            assert_eq!(sp.decode_pieces(&case.pieces), case.text, "{name}: decode {:?}", case.pieces);
        }
    }
}

#[test]
fn model_fields_are_read() {
    use hubside::tokenizer::sentencepiece::{ModelType, PieceType};
    let bytes = std::fs::read(format!("{ROOT}/tests/fixtures/hub/tiny-random/t5/spiece.model")).unwrap();
    let sp = SentencePiece::from_bytes(&bytes).unwrap();
    assert_eq!(sp.model_type, ModelType::Unigram);
    assert_eq!(sp.len(), 300);
    assert_eq!(sp.unk_id, 2);
    assert_eq!(sp.pieces[0].kind, PieceType::Control);
    assert_eq!(sp.normalizer.name, "nmt_nfkc");
    assert!(sp.normalizer.add_dummy_prefix && sp.normalizer.remove_extra_whitespaces && sp.normalizer.escape_whitespaces);
    assert!(!sp.normalizer.precompiled_charsmap.is_empty());
    // Truncated or foreign bytes are errors, not panics.
    assert!(SentencePiece::from_bytes(&bytes[..bytes.len() / 2]).is_err());
    assert!(SentencePiece::from_bytes(b"PK\x03\x04 not a model").is_err());
}
