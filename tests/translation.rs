//! Translation against the PyTorch + transformers references in tests/fixtures (Marian from
//! model.safetensors and from pytorch_model.bin with tokenizers built from the .spm files, T5
//! from tokenizer.json), loading through the local Hub mirror over HTTP; long inputs, options,
//! errors, and beam search against an independent brute-force search.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use hubside::hub::Repo;
use hubside::models::marian::Marian;
use hubside::models::seq2seq::{Decoder, Seq2SeqModel};
use hubside::serve::{self, ServeOptions};
use hubside::generation::{generate_seq2seq, EarlyStopping, GenerationConfig};
use hubside::tasks::translation::{TranslateOptions, Translator};
use hubside::Error;

mod common;
use common::{mirror, HUB};

const MARIAN: &str = "tiny-random/marian-en-de";
const T5: &str = "tiny-random/t5";

mod references;
type Reference = references::Translation;

fn reference(model: &str) -> Reference {
    common::reference(model)
}

fn load(repo: &Repo) -> hubside::Result<Translator> {
    pollster::block_on(Translator::load(repo))
}

/// The references: greedy, 16 new tokens.
fn reference_options() -> TranslateOptions {
    TranslateOptions { max_new_tokens: Some(16), num_beams: Some(1), ..Default::default() }
}

fn check_against_reference(translator: &Translator, model: &str) {
    for case in &reference(model).cases {
        let result = translator.translate(&case.text, &reference_options(), None).unwrap();
        assert_eq!(result.input_ids, case.input_ids, "{model}: input_ids of {:?}", case.text);
        assert_eq!(result.generated_ids, case.generated_ids, "{model}: generated ids of {:?}", case.text);
        assert_eq!(result.translation_text, case.translation, "{model}: text of {:?}", case.text);
        assert!(result.chunks.is_empty());
    }
}

#[test]
fn marian_matches_reference_over_http() {
    let server = mirror();
    let repo = Repo::remote(MARIAN, Some(&server.hub_endpoint()), None).unwrap();
    let translator = load(&repo).unwrap();
    assert_eq!(translator.model_type(), "marian");
    check_against_reference(&translator, MARIAN);
}

/// A copy of the Marian repo without model.safetensors, so pytorch_model.bin is what loads.
fn marian_without_safetensors() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hubside-marian-pt-{}", std::process::id()));
    let target = dir.join(MARIAN);
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(format!("{HUB}/{MARIAN}")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "model.safetensors" {
            std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn marian_from_pytorch_bin_matches_reference() {
    let hub = marian_without_safetensors();
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![hub.clone()], ..Default::default() }).unwrap();
    let repo = Repo::remote(MARIAN, Some(&server.hub_endpoint()), None).unwrap();
    let translator = load(&repo).unwrap();
    check_against_reference(&translator, MARIAN);
    // And from a local directory.
    let translator = load(&Repo::local(hub.join(MARIAN))).unwrap();
    check_against_reference(&translator, MARIAN);
    std::fs::remove_dir_all(hub).ok();
}

#[test]
fn t5_matches_reference_over_http() {
    let server = mirror();
    let repo = Repo::remote(T5, Some(&server.hub_endpoint()), None).unwrap();
    let translator = load(&repo).unwrap();
    assert_eq!(translator.model_type(), "t5");
    assert_eq!(translator.tasks(), ["translation_en_to_de"]);
    check_against_reference(&translator, T5);
    // The prefix is chosen by language too.
    let options = TranslateOptions { src_lang: Some("en".into()), tgt_lang: Some("de".into()), ..reference_options() };
    let case = &reference(T5).cases[1];
    assert_eq!(translator.translate(&case.text, &options, None).unwrap().input_ids, case.input_ids);
}

fn marian_translator(server: &serve::Running) -> Translator {
    load(&Repo::remote(MARIAN, Some(&server.hub_endpoint()), None).unwrap()).unwrap()
}

#[test]
fn long_input_is_split_at_sentences_and_fully_translated() {
    let server = mirror();
    let translator = marian_translator(&server);
    let max = translator.max_input_tokens().unwrap();
    assert_eq!(max, 64, "min(max_position_embeddings, model_max_length)");
    let options = TranslateOptions { max_new_tokens: Some(3), ..reference_options() };
    let text = ["The house is small.", "How are you today?", "Hello world!", "Ünïcödé ✓ 123."].repeat(8).join(" ");
    assert!(translator.encode(&text, &options).unwrap().len() > 2 * max);

    let mut streamed = Vec::new();
    let mut on_text = |t: &str| streamed.push(t.to_string());
    let result = translator.translate(&text, &options, Some(&mut on_text)).unwrap();
    assert!(result.chunks.len() >= 3, "{} chunks", result.chunks.len());
    for chunk in &result.chunks {
        assert!(chunk.input_ids.len() <= max);
        // Split at sentence ends only: every piece ends a sentence.
        assert!(chunk.text.ends_with('.') || chunk.text.ends_with('?') || chunk.text.ends_with('!'), "{:?}", chunk.text);
        let alone = translator.translate(&chunk.text, &options, None).unwrap();
        assert_eq!(alone.input_ids, chunk.input_ids);
        assert_eq!(alone.generated_ids, chunk.generated_ids);
        assert_eq!(alone.translation_text, chunk.translation_text);
    }
    // Nothing is cut off: the pieces hold every word, in order.
    let words: Vec<&str> = result.chunks.iter().flat_map(|c| c.text.split_whitespace()).collect();
    assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
    let joined: Vec<&str> = result.chunks.iter().map(|c| c.translation_text.as_str()).collect();
    assert_eq!(result.translation_text, joined.join(" "));
    let input_ids: Vec<u32> = result.chunks.iter().flat_map(|c| c.input_ids.clone()).collect();
    assert_eq!(result.input_ids, input_ids);
    // Streaming covers all pieces and ends on the full text.
    assert_eq!(streamed.last().unwrap(), &result.translation_text);
    assert!(streamed.iter().skip(3).all(|t| t.starts_with(&result.chunks[0].translation_text)));

    // One "word" longer than the input limit is split too, without losing characters.
    let word = "abcdefghij".repeat(30);
    let result = translator.translate(&word, &options, None).unwrap();
    assert!(result.chunks.len() >= 2);
    assert!(result.chunks.iter().all(|c| c.input_ids.len() <= max));
    assert_eq!(result.chunks.iter().map(|c| c.text.as_str()).collect::<String>(), word);
}

#[test]
fn streaming_sees_the_text_grow_token_by_token() {
    let server = mirror();
    let translator = marian_translator(&server);
    let case = &reference(MARIAN).cases[2];
    let mut seen = Vec::new();
    let mut on_text = |t: &str| seen.push(t.to_string());
    let result = translator.translate(&case.text, &reference_options(), Some(&mut on_text)).unwrap();
    assert_eq!(result.translation_text, case.translation);
    assert_eq!(seen.len(), case.generated_ids.len() - 1, "one call per generated token");
    assert_eq!(seen.last().unwrap(), &case.translation);
    assert!(seen.windows(2).all(|w| w[1].starts_with(&w[0])), "{seen:?}");
    assert_eq!(seen[0], translator.decode(&case.generated_ids[..2]).unwrap());
}

#[test]
fn one_beam_is_greedy_and_beams_decode_what_they_generate() {
    let server = mirror();
    for model in [MARIAN, T5] {
        let translator = load(&Repo::remote(model, Some(&server.hub_endpoint()), None).unwrap()).unwrap();
        for case in &reference(model).cases {
            let greedy = translator.translate(&case.text, &reference_options(), None).unwrap();
            let one = translator
                .translate(&case.text, &TranslateOptions { num_beams: Some(1), max_new_tokens: Some(16), ..Default::default() }, None)
                .unwrap();
            assert_eq!(one, greedy);
            let ids = translator.encode(&case.text, &reference_options()).unwrap();
            let config = GenerationConfig { max_new_tokens: 16, num_beams: 1, ..Default::default() };
            let direct = generate_seq2seq(translator.model(), &ids, &config, None).unwrap();
            assert_eq!(direct.ids, case.generated_ids);

            let mut calls = Vec::new();
            let mut on_text = |t: &str| calls.push(t.to_string());
            let options = TranslateOptions { num_beams: Some(3), max_new_tokens: Some(8), ..Default::default() };
            let beams = translator.translate(&case.text, &options, Some(&mut on_text)).unwrap();
            assert_eq!(beams.translation_text, translator.decode(&beams.generated_ids).unwrap());
            assert_eq!(calls, std::slice::from_ref(&beams.translation_text));
            assert!(beams.generated_ids.len() <= 9);
            if model == MARIAN {
                assert!(!beams.generated_ids[1..].contains(&445), "Marian never emits pad");
            }
        }
    }
}

#[test]
fn errors_are_reported() {
    let server = mirror();
    let endpoint = server.hub_endpoint();
    let repo = |name: &str| Repo::remote(name, Some(&endpoint), None).unwrap();
    match load(&repo("tiny-random/distilbert-sst2")) {
        Err(e @ Error::UnsupportedModel { .. }) => {
            let Error::UnsupportedModel { task, model_type, supported } = &e else { unreachable!() };
            assert_eq!((task.as_str(), model_type.as_str()), ("translation", "distilbert"));
            assert_eq!(supported, &["marian", "m2m_100", "t5"]);
            assert!(e.to_string().contains("supported: marian, m2m_100, t5"), "{e}");
        }
        other => panic!("expected UnsupportedModel, got {:?}", other.err()),
    }
    assert!(matches!(load(&repo("tiny-random/no-such-model")), Err(Error::NotFound { .. })));

    let t5 = load(&repo(T5)).unwrap();
    let to_french = TranslateOptions { tgt_lang: Some("fr".into()), ..reference_options() };
    match t5.translate("Hello", &to_french, None) {
        Err(Error::Input(message)) => assert!(message.contains("translation_en_to_de"), "{message}"),
        other => panic!("expected Input error, got {other:?}"),
    }
    let marian = marian_translator(&server);
    assert!(matches!(marian.translate("Hello", &to_french, None), Err(Error::Input(_))));
    let from_french = TranslateOptions { src_lang: Some("fr".into()), ..reference_options() };
    assert!(matches!(marian.translate("Hello", &from_french, None), Err(Error::Input(_))));
    let german = TranslateOptions { src_lang: Some("en".into()), tgt_lang: Some("deu".into()), ..reference_options() };
    assert!(marian.translate("Hello", &german, None).is_ok());
    let no_beams = TranslateOptions { num_beams: Some(0), ..Default::default() };
    assert!(matches!(marian.translate("Hello", &no_beams, None), Err(Error::Input(_))));
}

// ---------------------------------------------------------------------------------------------
// Beam search against brute force over a tiny random Marian model.

const VOCAB: usize = 6;
const EOS: u32 = 0;
const PAD: u32 = 5;

/// Seeded weights (the benchmarks' random-number crate).
struct Rng(fastrand::Rng);

impl Rng {
    fn tensor(&mut self, shape: &[usize], scale: f32, offset: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| offset + scale * (self.0.f32() * 2.0 - 1.0)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }
}

/// A Marian model with VOCAB tokens (eos 0, pad 5), d_model 8, one layer each way.
fn tiny_marian(seed: u64) -> Marian {
    let (d, ffn) = (8, 16);
    let config = serde_json::json!({
        "model_type": "marian", "vocab_size": VOCAB, "d_model": d, "encoder_layers": 1, "decoder_layers": 1,
        "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": ffn, "decoder_ffn_dim": ffn,
        "activation_function": "swish", "max_position_embeddings": 16, "pad_token_id": PAD, "eos_token_id": EOS,
        "decoder_start_token_id": PAD, "scale_embedding": true
    });
    let mut rng = Rng(fastrand::Rng::with_seed(seed));
    let mut tensors = HashMap::new();
    tensors.insert("model.shared.weight".to_string(), rng.tensor(&[VOCAB, d], 1.0, 0.0));
    tensors.insert("final_logits_bias".to_string(), rng.tensor(&[1, VOCAB], 1.0, 0.0));
    let mut linear = |tensors: &mut HashMap<String, Tensor>, name: String, out: usize, inp: usize| {
        tensors.insert(format!("{name}.weight"), rng.tensor(&[out, inp], 0.8, 0.0));
        tensors.insert(format!("{name}.bias"), rng.tensor(&[out], 0.3, 0.0));
    };
    for stack in ["encoder", "decoder"] {
        let p = format!("model.{stack}.layers.0");
        let mut attentions = vec!["self_attn"];
        if stack == "decoder" {
            attentions.push("encoder_attn");
        }
        for attn in attentions {
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                linear(&mut tensors, format!("{p}.{attn}.{proj}"), d, d);
            }
            linear(&mut tensors, format!("{p}.{attn}_layer_norm"), d, 1);
        }
        linear(&mut tensors, format!("{p}.fc1"), ffn, d);
        linear(&mut tensors, format!("{p}.fc2"), d, ffn);
        linear(&mut tensors, format!("{p}.final_layer_norm"), d, 1);
    }
    // Layer norms take vectors.
    for (name, t) in tensors.iter_mut() {
        if name.contains("layer_norm.weight") {
            *t = (t.flatten_all().unwrap() * 0.2).unwrap().affine(1.0, 1.0).unwrap();
        }
    }
    Marian::load(&config, hubside::weights::Weights::from_tensors(tensors)).unwrap()
}

fn own_log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
    logits.iter().map(|&x| x - max - log_sum).collect()
}

/// Every sequence the decoder can produce within `max_new` tokens (ending at eos or at the
/// limit, never pad), scored sum(log p) / len^lp, each prefix computed from a fresh cache
/// extended one token at a time (no beam bookkeeping, no cache reordering).
fn brute_force(model: &Marian, input: &[u32], max_new: usize, lp: f64) -> Vec<(Vec<u32>, f32)> {
    let encoded = model.encode(input).unwrap();
    let mut out = Vec::new();
    let mut stack = vec![(vec![PAD], 0f32, model.start(&encoded, 1).unwrap())];
    while let Some((sequence, sum, mut state)) = stack.pop() {
        let logits = model.step(&sequence[sequence.len() - 1..], &mut state).unwrap().to_vec2::<f32>().unwrap();
        let logp = own_log_softmax(&logits[0]);
        for token in 0..VOCAB as u32 {
            if token == PAD {
                continue;
            }
            let mut next = sequence.clone();
            next.push(token);
            let total = sum + logp[token as usize];
            let len = next.len() - 1;
            if token == EOS || len == max_new {
                out.push((next, total / (len as f64).powf(lp) as f32));
            } else {
                stack.push((next, total, state.clone()));
            }
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

#[test]
fn beam_search_matches_brute_force() {
    let max_new = 4;
    // Enough beams to keep every hypothesis: 4^3 live prefixes x 5 continuations at the last step.
    let all = 64 * 5;
    let mut checked = 0;
    for seed in 1..=6u64 {
        let model = tiny_marian(seed);
        let input = [1, 2, 3, 4, 2, EOS];
        for lp in [1.0, 0.0, 2.0, -0.5] {
            let everything = brute_force(&model, &input, max_new, lp);
            assert_eq!(everything.len(), 1 + 4 + 16 + 64 + 256);
            let (best_ids, best_score) = &everything[0];
            let config = GenerationConfig {
                max_new_tokens: max_new,
                num_beams: all,
                length_penalty: lp,
                early_stopping: EarlyStopping::Never,
                ..Default::default()
            };
            let beam = generate_seq2seq(&model, &input, &config, None).unwrap();
            assert_eq!(&beam.ids, best_ids, "seed {seed}, length_penalty {lp}");
            assert!((beam.score.unwrap() - best_score).abs() < 1e-5, "seed {seed}, lp {lp}: {beam:?} vs {best_score}");
            checked += 1;

            // Narrow beams find a real hypothesis, with its true score, never better than the best.
            for num_beams in [2, 3, 5] {
                for early_stopping in [EarlyStopping::Heuristic, EarlyStopping::Always, EarlyStopping::Never] {
                    let config = GenerationConfig { num_beams, early_stopping, ..config.clone() };
                    let beam = generate_seq2seq(&model, &input, &config, None).unwrap();
                    let (_, score) = everything
                        .iter()
                        .find(|(ids, _)| *ids == beam.ids)
                        .unwrap_or_else(|| panic!("{beam:?} is not a possible output"));
                    assert!((beam.score.unwrap() - score).abs() < 1e-5, "{beam:?} vs {score}");
                    assert!(*score <= best_score + 1e-6);
                }
            }
        }
        // Without a length penalty the default heuristic stop is exact too.
        let config = GenerationConfig { max_new_tokens: max_new, num_beams: all, length_penalty: 0.0, ..Default::default() };
        let beam = generate_seq2seq(&model, &input, &config, None).unwrap();
        assert_eq!(beam.ids, brute_force(&model, &input, max_new, 0.0)[0].0, "seed {seed}");
    }
    assert_eq!(checked, 24);
}
