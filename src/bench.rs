//! Benchmarks shared by the native CLI (`hubside bench`) and the browser (`bench*` exports of a
//! `--features bench` wasm build): models of real size with seeded random weights (or real
//! Whisper weights from the mirror), loaded and timed through the normal code paths.

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

/// Seeded uniform values in [-scale, scale].
struct Seeded(fastrand::Rng);

impl Seeded {
    fn new(seed: u64) -> Self {
        Seeded(fastrand::Rng::with_seed(seed))
    }

    fn tensor(&mut self, shape: &[usize], scale: f32) -> candle_core::Tensor {
        let n: usize = shape.iter().product();
        candle_core::Tensor::from_vec(self.fill(n, scale), shape, &candle_core::Device::Cpu).expect("shape matches data")
    }

    fn fill(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| (self.0.f32() * 2.0 - 1.0) * scale).collect()
    }
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
    let mut rng = Seeded::new(seed);
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
        ("model.safetensors".to_string(), crate::weights::safetensors::to_bytes(&tensors)),
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
    for _ in 0..runs.max(1) {
        let start = now_ms();
        f()?;
        times.push(now_ms() - start);
    }
    Ok(median(times))
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

/// A Marian model the size of Helsinki-NLP/opus-mt-en-de (d_model 512, 6 + 6 layers, 8 heads,
/// ffn 2048, vocab 58101; 74 M parameters) with seeded random weights.
pub fn marian_opus_mt_size(seed: u64) -> Result<crate::models::marian::Marian> {
    use candle_core::{DType, Device, Tensor};
    const VOCAB: usize = 58101;
    const D: usize = 512;
    const FFN: usize = 2048;
    const LAYERS: usize = 6;
    let config = serde_json::json!({
        "model_type": "marian", "vocab_size": VOCAB, "d_model": D, "encoder_layers": LAYERS, "decoder_layers": LAYERS,
        "encoder_attention_heads": 8, "decoder_attention_heads": 8, "encoder_ffn_dim": FFN, "decoder_ffn_dim": FFN,
        "activation_function": "swish", "max_position_embeddings": 512, "pad_token_id": VOCAB - 1, "eos_token_id": 0,
        "decoder_start_token_id": VOCAB - 1, "scale_embedding": true
    });
    let mut rng = Seeded::new(seed);
    let mut t = HashMap::new();
    t.insert("model.shared.weight".to_string(), rng.tensor(&[VOCAB, D], 0.05));
    t.insert("final_logits_bias".to_string(), Tensor::zeros((1, VOCAB), DType::F32, &Device::Cpu)?);
    let ones = Tensor::ones(D, DType::F32, &Device::Cpu)?;
    let zeros = Tensor::zeros(D, DType::F32, &Device::Cpu)?;
    let mut linear = |t: &mut HashMap<String, Tensor>, name: &str, out: usize, inp: usize| {
        t.insert(format!("{name}.weight"), rng.tensor(&[out, inp], 1.0 / (inp as f32).sqrt()));
        t.insert(format!("{name}.bias"), rng.tensor(&[out], 0.02));
    };
    for stack in ["encoder", "decoder"] {
        for i in 0..LAYERS {
            let p = format!("model.{stack}.layers.{i}");
            let attentions: &[&str] = if stack == "decoder" { &["self_attn", "encoder_attn"] } else { &["self_attn"] };
            for attn in attentions {
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    linear(&mut t, &format!("{p}.{attn}.{proj}"), D, D);
                }
                t.insert(format!("{p}.{attn}_layer_norm.weight"), ones.clone());
                t.insert(format!("{p}.{attn}_layer_norm.bias"), zeros.clone());
            }
            linear(&mut t, &format!("{p}.fc1"), FFN, D);
            linear(&mut t, &format!("{p}.fc2"), D, FFN);
            t.insert(format!("{p}.final_layer_norm.weight"), ones.clone());
            t.insert(format!("{p}.final_layer_norm.bias"), zeros.clone());
        }
    }
    crate::models::marian::Marian::load(&config, crate::weights::Weights::from_tensors(t))
}

#[derive(Debug, Serialize)]
pub struct TranslationBench {
    pub input_tokens: usize,
    pub new_tokens: usize,
    /// Encoder + cross-attention keys/values + first decoder step (median).
    pub first_token_ms: f64,
    /// New tokens per second over the whole generation (median run).
    pub tokens_per_second: f64,
    pub runs: usize,
}

/// Greedy decoding speed of an opus-mt-en-de sized Marian through the translator's own loop
/// (eos banned so every run makes exactly `new_tokens`).
pub fn translation(input_tokens: usize, new_tokens: usize, runs: usize) -> Result<TranslationBench> {
    use crate::generation::{generate_seq2seq, GenerationConfig};
    let model = marian_opus_mt_size(0x5eed)?;
    let mut rng = fastrand::Rng::with_seed(42);
    // Any token but eos (0) and pad (58100).
    let mut input: Vec<u32> = (0..input_tokens.saturating_sub(1)).map(|_| rng.u32(1..58_100)).collect();
    input.push(0);
    let config = GenerationConfig { max_new_tokens: new_tokens, num_beams: 1, suppress_tokens: vec![0], ..Default::default() };
    generate_seq2seq(&model, &input, &GenerationConfig { max_new_tokens: 2, ..config.clone() }, None)?; // warm-up
    let (mut firsts, mut rates) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let start = now_ms();
        let mut first = None;
        let mut on_token = |_: &[u32]| {
            first.get_or_insert_with(|| now_ms() - start);
        };
        let out = generate_seq2seq(&model, &input, &config, Some(&mut on_token))?;
        let total = now_ms() - start;
        firsts.push(first.unwrap_or(total));
        rates.push((out.ids.len() - 1) as f64 / (total / 1000.0));
    }
    Ok(TranslationBench {
        input_tokens: input.len(),
        new_tokens,
        first_token_ms: median(firsts),
        tokens_per_second: median(rates),
        runs: runs.max(1),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[derive(Debug, Serialize)]
pub struct TranscriptionBench {
    pub model: String,
    pub audio_seconds: f64,
    /// Download (or cache read) + parse → ready.
    pub load_ms: f64,
    /// Median wall time to transcribe the clip.
    pub transcribe_ms: f64,
    pub real_time_factor: f64,
    pub text: String,
    pub runs: usize,
}

/// Whisper load time and real-time factor on a clip (mono samples at `sample_rate`).
pub async fn transcription(repo: &Repo, samples: &[f32], sample_rate: u32, runs: usize) -> Result<TranscriptionBench> {
    use crate::audio::Pcm;
    use crate::tasks::speech_recognition::{SpeechRecognizer, TranscribeOptions};
    let start = now_ms();
    let recognizer = SpeechRecognizer::load(repo).await?;
    let load_ms = now_ms() - start;
    let options = TranscribeOptions::default();
    let run = || recognizer.transcribe(Pcm { samples, sample_rate, channels: 1 }, &options, &mut |_| {});
    let text = run()?.text; // warm-up
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let start = now_ms();
        run()?;
        times.push(now_ms() - start);
    }
    let audio_seconds = samples.len() as f64 / sample_rate as f64;
    let transcribe_ms = median(times);
    Ok(TranscriptionBench {
        model: repo.name(),
        audio_seconds,
        load_ms,
        transcribe_ms,
        real_time_factor: transcribe_ms / 1000.0 / audio_seconds,
        text,
        runs: runs.max(1),
    })
}

/// One timing of [`kernels`]: y (m×n) = x (m×k) · Wᵀ.
#[derive(Debug, Serialize)]
pub struct KernelBench {
    /// `models::kernels::matmul_*`, or the candle call it replaces.
    pub kernel: &'static str,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// rayon's threads (`RAYON_NUM_THREADS`; candle's own pool follows the same variable).
    pub threads: usize,
    pub ms: f64,
}

/// `models::kernels` against candle (`Tensor::matmul` for f32, `QMatMul::forward` for q8_0 and q4_0)
/// on a decode step (m = 1) and a 128-token encoder pass, for a d=768 projection, a 768→3072
/// feed-forward and Marian's 512→58101 vocabulary projection; also q4_1 (the q4 dtype) and q5_1
/// (whisper.cpp files), ours only.
pub fn kernels(runs: usize) -> Result<Vec<KernelBench>> {
    use crate::models::kernels;
    use candle_core::quantized::k_quants::{BlockQ4_0, BlockQ4_1, BlockQ5_1, BlockQ8_0};
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    let threads = rayon::current_num_threads();
    let mut rng = Seeded::new(7);
    let mut timings = Vec::new();
    for (k, n) in [(768, 768), (768, 3072), (512, 58101)] {
        let w = rng.fill(n * k, 0.05);
        let w_f16: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
        let w_bf16: Vec<half::bf16> = w.iter().map(|&v| half::bf16::from_f32(v)).collect();
        let w_q8 = kernels::quantize_rows::<BlockQ8_0>(&w, n, k)?;
        let w_q4 = kernels::quantize_rows::<BlockQ4_0>(&w, n, k)?;
        let w_q4_1 = kernels::quantize_rows::<BlockQ4_1>(&w, n, k)?;
        let w_q5_1 = kernels::quantize_rows::<BlockQ5_1>(&w, n, k)?;
        let w_tensor = Tensor::from_slice(&w, (n, k), &Device::Cpu)?;
        let w_t = w_tensor.t()?;
        let candle_q8 = QMatMul::from_qtensor(QTensor::quantize(&w_tensor, GgmlDType::Q8_0)?)?;
        let candle_q4 = QMatMul::from_qtensor(QTensor::quantize(&w_tensor, GgmlDType::Q4_0)?)?;
        for m in [1, 2, 4, 8, 128] {
            let x = rng.fill(m * k, 1.0);
            let x_tensor = Tensor::from_slice(&x, (m, k), &Device::Cpu)?;
            let mut out = vec![0.0; m * n];
            let mut time = |kernel: &'static str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
                let ms = median_ms(runs, f)?;
                timings.push(KernelBench { kernel, m, k, n, threads, ms });
                Ok(())
            };
            time("f32 kernels::matmul_f32", &mut || kernels::matmul_f32(&x, m, k, &w, n, &mut out))?;
            time("f32 candle Tensor::matmul", &mut || x_tensor.matmul(&w_t).map(drop).map_err(Into::into))?;
            time("f16 kernels::matmul_half", &mut || kernels::matmul_half(&x, m, k, &w_f16, n, &mut out))?;
            time("bf16 kernels::matmul_half", &mut || kernels::matmul_half(&x, m, k, &w_bf16, n, &mut out))?;
            time("q8_0 kernels::matmul_quant", &mut || kernels::matmul_quant(&x, m, k, &w_q8, n, &mut out))?;
            time("q8_0 candle QMatMul::forward", &mut || candle_q8.forward(&x_tensor).map(drop).map_err(Into::into))?;
            time("q4_0 kernels::matmul_quant", &mut || kernels::matmul_quant(&x, m, k, &w_q4, n, &mut out))?;
            time("q4_0 candle QMatMul::forward", &mut || candle_q4.forward(&x_tensor).map(drop).map_err(Into::into))?;
            time("q4_1 kernels::matmul_quant", &mut || kernels::matmul_quant(&x, m, k, &w_q4_1, n, &mut out))?;
            time("q5_1 kernels::matmul_quant", &mut || kernels::matmul_quant(&x, m, k, &w_q5_1, n, &mut out))?;
        }
    }
    Ok(timings)
}
