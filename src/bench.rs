//! Benchmarks shared by the native CLI (`hubside bench`) and the browser (`benchSentiment` in a
//! `--features bench` wasm build): models of real size with seeded random weights, built in
//! memory as a Hub repo would ship them, then loaded and timed through the normal code paths.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::Result;
use crate::hub::Repo;
use crate::tasks::text_classification::TextClassifier;

/// Milliseconds from a monotonic clock (performance.now() in the browser).
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
        performance
            .and_then(|p| js_sys::Reflect::get(&p, &"now".into()).ok().map(|f| (p, f)))
            .and_then(|(p, f)| wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(f).ok().map(|f| (p, f)))
            .and_then(|(p, f)| f.call0(&p).ok())
            .and_then(|v| v.as_f64())
            .unwrap_or_else(js_sys::Date::now)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1000.0
    }
}

/// Deterministic uniform values in [-scale, scale] (xorshift64*; no rand dependency).
struct Seeded(u64);

impl Seeded {
    fn fill(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 random bits
                (bits as f32 / (1u64 << 23) as f32 - 1.0) * scale
            })
            .collect()
    }
}

/// A safetensors file (f32) from named tensors: 8-byte header length, JSON header, raw data.
pub fn safetensors_bytes(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        let end = offset + data.len() * 4;
        header.insert(name.clone(), serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    for (_, _, data) in tensors {
        for v in data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

/// The files of a DistilBERT-base sized SST-2 classifier (66M parameters) with seeded random
/// weights, using the given BERT uncased tokenizer.json; and the parameter count.
pub fn distilbert_base_repo(tokenizer_json: Vec<u8>, seed: u64) -> (HashMap<String, Vec<u8>>, usize) {
    let (vocab, d, ffn, layers, positions) = (30522, 768, 3072, 6, 512);
    let config = serde_json::json!({
        "model_type": "distilbert", "architectures": ["DistilBertForSequenceClassification"],
        "vocab_size": vocab, "dim": d, "hidden_dim": ffn, "n_layers": layers, "n_heads": 12,
        "max_position_embeddings": positions, "activation": "gelu", "pad_token_id": 0,
        "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
    });
    let mut rng = Seeded(seed.max(1));
    let mut tensors = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, scale: f32, rng: &mut Seeded| {
        let n = shape.iter().product();
        let data = if scale == 0.0 { vec![0.0; n] } else if scale < 0.0 { vec![1.0; n] } else { rng.fill(n, scale) };
        tensors.push((name, shape, data));
    };
    let e = "distilbert.embeddings";
    add(format!("{e}.word_embeddings.weight"), vec![vocab, d], 0.05, &mut rng);
    add(format!("{e}.position_embeddings.weight"), vec![positions, d], 0.05, &mut rng);
    add(format!("{e}.LayerNorm.weight"), vec![d], -1.0, &mut rng);
    add(format!("{e}.LayerNorm.bias"), vec![d], 0.0, &mut rng);
    for i in 0..layers {
        let l = format!("distilbert.transformer.layer.{i}");
        for lin in ["q_lin", "k_lin", "v_lin", "out_lin"] {
            add(format!("{l}.attention.{lin}.weight"), vec![d, d], 0.05, &mut rng);
            add(format!("{l}.attention.{lin}.bias"), vec![d], 0.01, &mut rng);
        }
        for norm in ["sa_layer_norm", "output_layer_norm"] {
            add(format!("{l}.{norm}.weight"), vec![d], -1.0, &mut rng);
            add(format!("{l}.{norm}.bias"), vec![d], 0.0, &mut rng);
        }
        add(format!("{l}.ffn.lin1.weight"), vec![ffn, d], 0.05, &mut rng);
        add(format!("{l}.ffn.lin1.bias"), vec![ffn], 0.01, &mut rng);
        add(format!("{l}.ffn.lin2.weight"), vec![d, ffn], 0.03, &mut rng);
        add(format!("{l}.ffn.lin2.bias"), vec![d], 0.01, &mut rng);
    }
    add("pre_classifier.weight".into(), vec![d, d], 0.05, &mut rng);
    add("pre_classifier.bias".into(), vec![d], 0.0, &mut rng);
    add("classifier.weight".into(), vec![2, d], 0.05, &mut rng);
    add("classifier.bias".into(), vec![2], 0.0, &mut rng);

    let parameters = tensors.iter().map(|(_, _, data)| data.len()).sum();
    let files = HashMap::from([
        ("config.json".to_string(), config.to_string().into_bytes()),
        ("tokenizer.json".to_string(), tokenizer_json),
        ("model.safetensors".to_string(), safetensors_bytes(&tensors)),
    ]);
    (files, parameters)
}

#[derive(Debug, Serialize)]
pub struct SentimentBench {
    pub parameters: usize,
    pub weights_bytes: usize,
    /// Bytes in memory → ready to run.
    pub load_ms: f64,
    pub short_tokens: usize,
    pub short_ms: f64,
    pub long_tokens: usize,
    pub long_ms: f64,
    pub runs: usize,
}

/// Median of `runs` timed calls after one warm-up.
fn median_ms(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = now_ms();
        f()?;
        times.push(now_ms() - start);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Sentiment latency on a ~16-token and a 128-token input, plus load time, for DistilBERT-base.
pub async fn sentiment(tokenizer_json: Vec<u8>, runs: usize) -> Result<SentimentBench> {
    let (files, parameters) = distilbert_base_repo(tokenizer_json, 42);
    let weights_bytes = files["model.safetensors"].len();
    let repo = Repo::memory("bench/distilbert-base-random", files);
    let start = now_ms();
    let classifier = TextClassifier::load(&repo).await?;
    let load_ms = now_ms() - start;

    let short = "I love this movie, the acting was wonderful and the story kept me hooked.";
    // Common single-piece words, repeated until the input is 128 tokens with [CLS] and [SEP].
    let words = "the film tells a long story about a family that moves to a small town by the sea";
    let long: Vec<&str> = words.split(' ').cycle().take(126).collect();
    let long = long.join(" ");
    let short_tokens = classifier.encode(short)?.len();
    let long_tokens = classifier.encode(&long)?.len();
    let short_ms = median_ms(runs, || classifier.classify(&[short]).map(drop))?;
    let long_ms = median_ms(runs, || classifier.classify(&[long.as_str()]).map(drop))?;
    Ok(SentimentBench {
        parameters,
        weights_bytes,
        load_ms,
        short_tokens,
        short_ms,
        long_tokens,
        long_ms,
        runs,
    })
}
