//! Greedy decoding speed of a Marian model the size of Helsinki-NLP/opus-mt-en-de (d_model 512,
//! 6 + 6 layers, 8 heads, ffn 2048, vocab 58101) with seeded random weights: time to first token
//! (encoder + first decoder step) and new tokens per second, through the same generation code
//! the translator uses (eos is banned so every run makes exactly the requested tokens).
//!
//!     cargo run --release --example marian_bench -- [NEW_TOKENS] [INPUT_TOKENS] [RUNS]

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use hubside::models::marian::Marian;
use hubside::tasks::generation::{self, GenerationConfig};

const VOCAB: usize = 58101;
const D: usize = 512;
const FFN: usize = 2048;
const LAYERS: usize = 6;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> =
            (0..n).map(|_| ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }
}

fn model() -> Marian {
    let config = serde_json::json!({
        "model_type": "marian", "vocab_size": VOCAB, "d_model": D, "encoder_layers": LAYERS, "decoder_layers": LAYERS,
        "encoder_attention_heads": 8, "decoder_attention_heads": 8, "encoder_ffn_dim": FFN, "decoder_ffn_dim": FFN,
        "activation_function": "swish", "max_position_embeddings": 512, "pad_token_id": VOCAB - 1, "eos_token_id": 0,
        "decoder_start_token_id": VOCAB - 1, "scale_embedding": true
    });
    let mut rng = Rng(0x5eed);
    let mut t = HashMap::new();
    t.insert("model.shared.weight".to_string(), rng.tensor(&[VOCAB, D], 0.05));
    t.insert("final_logits_bias".to_string(), Tensor::zeros((1, VOCAB), DType::F32, &Device::Cpu).unwrap());
    let mut put = |t: &mut HashMap<String, Tensor>, name: &str, out: usize, inp: usize| {
        t.insert(format!("{name}.weight"), rng.tensor(&[out, inp], 1.0 / (inp as f32).sqrt()));
        t.insert(format!("{name}.bias"), rng.tensor(&[out], 0.02));
    };
    for stack in ["encoder", "decoder"] {
        for i in 0..LAYERS {
            let p = format!("model.{stack}.layers.{i}");
            let attentions: &[&str] = if stack == "decoder" { &["self_attn", "encoder_attn"] } else { &["self_attn"] };
            for attn in attentions {
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    put(&mut t, &format!("{p}.{attn}.{proj}"), D, D);
                }
                t.insert(format!("{p}.{attn}_layer_norm.weight"), Tensor::ones(D, DType::F32, &Device::Cpu).unwrap());
                t.insert(format!("{p}.{attn}_layer_norm.bias"), Tensor::zeros(D, DType::F32, &Device::Cpu).unwrap());
            }
            put(&mut t, &format!("{p}.fc1"), FFN, D);
            put(&mut t, &format!("{p}.fc2"), D, FFN);
            t.insert(format!("{p}.final_layer_norm.weight"), Tensor::ones(D, DType::F32, &Device::Cpu).unwrap());
            t.insert(format!("{p}.final_layer_norm.bias"), Tensor::zeros(D, DType::F32, &Device::Cpu).unwrap());
        }
    }
    let vb = candle_nn::VarBuilder::from_tensors(t, DType::F32, &Device::Cpu);
    Marian::load(&config, vb).unwrap()
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let new_tokens = args.first().copied().unwrap_or(64);
    let input_tokens = args.get(1).copied().unwrap_or(32);
    let runs = args.get(2).copied().unwrap_or(3);

    let start = Instant::now();
    let model = model();
    eprintln!("built opus-mt-en-de-sized Marian in {:.1} s", start.elapsed().as_secs_f64());
    let mut rng = Rng(42);
    let mut input: Vec<u32> = (0..input_tokens - 1).map(|_| 1 + (rng.next() % (VOCAB as u64 - 2)) as u32).collect();
    input.push(0);
    let config = GenerationConfig { max_new_tokens: new_tokens, num_beams: 1, bad_words_ids: vec![vec![0]], ..Default::default() };

    // Warm-up (allocations, thread pools).
    generation::greedy(&model, &input, &GenerationConfig { max_new_tokens: 2, ..config.clone() }, None).unwrap();
    for run in 0..runs {
        let start = Instant::now();
        let mut first = None;
        let mut on_token = |_: &[u32]| {
            first.get_or_insert_with(|| start.elapsed());
        };
        let out = generation::greedy(&model, &input, &config, Some(&mut on_token)).unwrap();
        let total = start.elapsed().as_secs_f64();
        let ttft = first.unwrap().as_secs_f64();
        let generated = out.ids.len() - 1;
        println!(
            "run {run}: input {input_tokens} tokens, {generated} new tokens: time to first token {:.1} ms, {:.1} tokens/s overall, {:.1} tokens/s after the first",
            ttft * 1e3,
            generated as f64 / total,
            (generated - 1) as f64 / (total - ttft),
        );
    }
}
