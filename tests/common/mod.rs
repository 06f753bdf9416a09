//! Helpers shared by the native test files: the fixtures mirror and their references.
#![allow(dead_code)] // each test file uses its own subset

use hubside::serve::{self, ServeOptions};

pub const HUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hub");

/// `hubside serve` over tests/fixtures/hub on a free port; stops when dropped.
pub fn mirror() -> serve::Running {
    serve::start("127.0.0.1:0", ServeOptions { hub: vec![HUB.into()], ..Default::default() }).unwrap()
}

/// A fixture model's reference.json.
pub fn reference<T: serde::de::DeserializeOwned>(model: &str) -> T {
    let path = format!("{HUB}/{model}/reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The Hub mirror directory scripts/fetch-whisper.sh fills (`$HUBSIDE_CACHE/hub`) with the real
/// Whisper test weights; missing weights fail the test with what to run.
pub fn whisper_hub() -> std::path::PathBuf {
    let hub = hubside::hub::cache_dir().expect("neither HUBSIDE_CACHE nor HOME is set").join("hub");
    for repo in ["Systran/faster-whisper-tiny.en", "Systran/faster-whisper-base"] {
        for file in ["model.bin", "config.json", "tokenizer.json"] {
            let path = hub.join(repo).join(file);
            assert!(
                path.is_file(),
                "Whisper test weights missing: {} not found. Run scripts/fetch-whisper.sh \
                 (downloads and verifies them into ${{HUBSIDE_CACHE:-$HOME/.cache/hubside}}/hub).",
                path.display()
            );
        }
    }
    hub
}

/// A Whisper CTranslate2 repo (`ct2_dir`: model.bin, config.json, tokenizer.json) written into
/// `repo_dir` in the openai/whisper-* (transformers) layout, f16 as the source: model.safetensors,
/// config.json, generation_config.json (suppress lists and alignment heads from the CTranslate2
/// config, as openai's generation_config.json lists them) and tokenizer.json.
pub fn write_whisper_transformers(ct2_dir: &std::path::Path, repo_dir: &std::path::Path) {
    use candle_core::{DType, Tensor};
    let bytes = std::fs::read(ct2_dir.join("model.bin")).unwrap();
    let ct2 = hubside::weights::ctranslate2::from_bytes(&bytes, "model.bin").unwrap();
    let mut hf: std::collections::HashMap<String, Tensor> = std::collections::HashMap::new();
    let get = |name: &str| ct2[name].clone();
    let (vocab, d) = get("decoder/embeddings/weight").dims2().unwrap();
    let mut put = |name: String, t: Tensor| {
        hf.insert(name, t.to_dtype(DType::F16).unwrap());
    };
    let mut layers = [0; 2];
    for (side, count) in ["encoder", "decoder"].into_iter().zip(&mut layers) {
        *count = (0..).take_while(|i| ct2.contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))).count();
        for i in 0..*count {
            let (c, h) = (format!("{side}/layer_{i}"), format!("model.{side}.layers.{i}"));
            let qkv_w = get(&format!("{c}/self_attention/linear_0/weight"));
            let qkv_b = get(&format!("{c}/self_attention/linear_0/bias"));
            for (j, p) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                put(format!("{h}.self_attn.{p}.weight"), qkv_w.narrow(0, j * d, d).unwrap());
                if *p != "k_proj" {
                    put(format!("{h}.self_attn.{p}.bias"), qkv_b.narrow(0, j * d, d).unwrap());
                }
            }
            put(format!("{h}.self_attn.out_proj.weight"), get(&format!("{c}/self_attention/linear_1/weight")));
            put(format!("{h}.self_attn.out_proj.bias"), get(&format!("{c}/self_attention/linear_1/bias")));
            put(format!("{h}.self_attn_layer_norm.weight"), get(&format!("{c}/self_attention/layer_norm/gamma")));
            put(format!("{h}.self_attn_layer_norm.bias"), get(&format!("{c}/self_attention/layer_norm/beta")));
            for (ct, hn) in [("linear_0", "fc1"), ("linear_1", "fc2")] {
                put(format!("{h}.{hn}.weight"), get(&format!("{c}/ffn/{ct}/weight")));
                put(format!("{h}.{hn}.bias"), get(&format!("{c}/ffn/{ct}/bias")));
            }
            put(format!("{h}.final_layer_norm.weight"), get(&format!("{c}/ffn/layer_norm/gamma")));
            put(format!("{h}.final_layer_norm.bias"), get(&format!("{c}/ffn/layer_norm/beta")));
            if side == "decoder" {
                let a = format!("{c}/attention");
                put(format!("{h}.encoder_attn.q_proj.weight"), get(&format!("{a}/linear_0/weight")));
                put(format!("{h}.encoder_attn.q_proj.bias"), get(&format!("{a}/linear_0/bias")));
                let kv_w = get(&format!("{a}/linear_1/weight"));
                let kv_b = get(&format!("{a}/linear_1/bias"));
                put(format!("{h}.encoder_attn.k_proj.weight"), kv_w.narrow(0, 0, d).unwrap());
                put(format!("{h}.encoder_attn.v_proj.weight"), kv_w.narrow(0, d, d).unwrap());
                put(format!("{h}.encoder_attn.v_proj.bias"), kv_b.narrow(0, d, d).unwrap());
                put(format!("{h}.encoder_attn.out_proj.weight"), get(&format!("{a}/linear_2/weight")));
                put(format!("{h}.encoder_attn.out_proj.bias"), get(&format!("{a}/linear_2/bias")));
                put(format!("{h}.encoder_attn_layer_norm.weight"), get(&format!("{a}/layer_norm/gamma")));
                put(format!("{h}.encoder_attn_layer_norm.bias"), get(&format!("{a}/layer_norm/beta")));
            }
        }
        put(format!("model.{side}.layer_norm.weight"), get(&format!("{side}/layer_norm/gamma")));
        put(format!("model.{side}.layer_norm.bias"), get(&format!("{side}/layer_norm/beta")));
    }
    for conv in ["conv1", "conv2"] {
        put(format!("model.encoder.{conv}.weight"), get(&format!("encoder/{conv}/weight")));
        put(format!("model.encoder.{conv}.bias"), get(&format!("encoder/{conv}/bias")));
    }
    put("model.encoder.embed_positions.weight".into(), get("encoder/position_encodings/encodings"));
    put("model.decoder.embed_positions.weight".into(), get("decoder/position_encodings/encodings"));
    put("model.decoder.embed_tokens.weight".into(), get("decoder/embeddings/weight"));

    std::fs::create_dir_all(repo_dir).unwrap();
    candle_core::safetensors::save(&hf, repo_dir.join("model.safetensors")).unwrap();
    std::fs::copy(ct2_dir.join("tokenizer.json"), repo_dir.join("tokenizer.json")).unwrap();
    let ct2_config: serde_json::Value = serde_json::from_slice(&std::fs::read(ct2_dir.join("config.json")).unwrap()).unwrap();
    let heads = d / 64;
    let config = serde_json::json!({
        "model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"],
        "num_mel_bins": 80, "d_model": d, "encoder_attention_heads": heads, "decoder_attention_heads": heads,
        "encoder_layers": layers[0], "decoder_layers": layers[1], "vocab_size": vocab,
        "max_source_positions": 1500, "max_target_positions": 448,
    });
    let generation = serde_json::json!({
        "suppress_tokens": ct2_config["suppress_ids"], "begin_suppress_tokens": ct2_config["suppress_ids_begin"],
        "alignment_heads": ct2_config["alignment_heads"],
    });
    std::fs::write(repo_dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(repo_dir.join("generation_config.json"), generation.to_string()).unwrap();
}
