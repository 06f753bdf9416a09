//! whisper.cpp ggml model files (ggerganov/whisper.cpp `ggml-*.bin`): written here from the real
//! tiny.en weights (Systran/faster-whisper-tiny.en, CTranslate2, which scripts/fetch-whisper.sh
//! caches) in whisper.cpp's layout, in f16, q8_0, q5_0 and q5_1, served from a temporary Hub
//! mirror and transcribed; the vocabulary's special tokens and suppress lists against the
//! tokenizer's; and the reader's refusal of every truncated or corrupt file.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use hubside::audio;
use hubside::hub::Repo;
use hubside::serve::{self, ServeOptions};
use hubside::tasks::speech_recognition::{Layout, ReturnTimestamps, SpeechRecognizer, TranscribeOptions};
use hubside::weights::ggml::{self, FileType, HParams, MelFilters, Role};
use hubside::tasks::LoadOptions;
use hubside::weights::{ctranslate2, ggml_writer, Tensors};
use hubside::whisper::vocabulary::{ggml_vocab_from_tokenizer, GgmlVocab};
use hubside::whisper::SpecialTokens;
use hubside::Error;
use tokenizers::Tokenizer;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const TINY_EN: &str = "Systran/faster-whisper-tiny.en";
const BASE: &str = "Systran/faster-whisper-base";

mod common;
mod references;

fn reference() -> references::WhisperCase {
    let path = format!("{FIXTURES}/whisper/tiny.en.reference.json");
    let all: references::Whisper = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    all.cases.into_iter().find(|c| c.audio == "jfk16.wav").unwrap()
}

fn repo_dir(repo: &str) -> PathBuf {
    common::whisper_hub().join(repo)
}

fn tokenizer(repo: &str) -> Tokenizer {
    Tokenizer::from_file(repo_dir(repo).join("tokenizer.json")).unwrap()
}

fn ct2_config(repo: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(repo_dir(repo).join("config.json")).unwrap()).unwrap()
}

fn tiny_en_ct2() -> &'static Tensors {
    static TENSORS: OnceLock<Tensors> = OnceLock::new();
    TENSORS.get_or_init(|| {
        let bytes = std::fs::read(repo_dir(TINY_EN).join("model.bin")).unwrap();
        ctranslate2::from_bytes(&bytes, "model.bin").unwrap()
    })
}

/// tiny.en as whisper.cpp would ship it in `file_type` (written once per type).
fn tiny_en_ggml(file_type: FileType) -> &'static [u8] {
    static FILES: OnceLock<std::sync::Mutex<HashMap<FileType, &'static [u8]>>> = OnceLock::new();
    let files = FILES.get_or_init(Default::default);
    let mut files = files.lock().unwrap();
    files.entry(file_type).or_insert_with(|| {
        let bytes = ggml_writer::convert_ctranslate2(tiny_en_ct2(), &tokenizer(TINY_EN), file_type).unwrap();
        Box::leak(bytes.into_boxed_slice())
    })
}

fn jfk() -> Vec<f32> {
    let bytes = std::fs::read(format!("{FIXTURES}/audio/jfk16.wav")).unwrap();
    let (samples, rate, channels) = audio::read_wav(&bytes).unwrap();
    assert_eq!((rate, channels), (16000, 1));
    samples
}

/// Word error rate of `hypothesis` against `reference` (words lower-cased, punctuation dropped).
fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut previous = row[0];
        row[0] = i;
        for j in 1..=h.len() {
            let substitution = previous + usize::from(r[i - 1] != h[j - 1]);
            previous = row[j];
            row[j] = substitution.min(row[j] + 1).min(row[j - 1] + 1);
        }
    }
    row[h.len()] as f64 / r.len().max(1) as f64
}

// ---- the real tiny.en in four storage types, end to end ---------------------------------------

/// ggerganov/whisper.cpp's file names, served from a temporary mirror, loaded with the `file`
/// option and run on jfk16.wav: f16 (lossless from the f16 CTranslate2 weights) and q8_0 give the
/// reference tokens exactly; q5_0 and q5_1 give the reference transcript up to a measured WER.
#[test]
fn written_files_load_and_transcribe() {
    let case = reference();
    let dir = std::env::temp_dir().join(format!("hubside-ggml-{}", std::process::id()));
    let repo_dir = dir.join("ggerganov/whisper.cpp");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let types = [
        (FileType::F16, "ggml-tiny.en.bin"),
        (FileType::Q8_0, "ggml-tiny.en-q8_0.bin"),
        (FileType::Q5_0, "ggml-tiny.en-q5_0.bin"),
        (FileType::Q5_1, "ggml-tiny.en-q5_1.bin"),
    ];
    for (file_type, name) in types {
        std::fs::write(repo_dir.join(name), tiny_en_ggml(file_type)).unwrap();
    }
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![dir.clone()], ..Default::default() }).unwrap();
    let repo = Repo::remote("ggerganov/whisper.cpp", Some(&server.hub_endpoint()), None).unwrap();
    let samples = jfk();
    let mut report = Vec::new();
    for (file_type, name) in types {
        let model = pollster::block_on(SpeechRecognizer::load_with(&repo, &LoadOptions { file: Some(name.to_string()), ..Default::default() })).unwrap();
        assert_eq!(model.layout(), Layout::Ggml);
        assert!(!model.is_multilingual());
        let pcm = audio::Pcm { samples: &samples, sample_rate: 16000, channels: 1 };
        let result = model.transcribe(pcm, &TranscribeOptions::default(), &mut |_| {}).unwrap();
        let wer = word_error_rate(&case.text, &result.text);
        let size = tiny_en_ggml(file_type).len();
        report.push(format!("{name}: {size} bytes ({:.1} MiB), WER {wer:.3}, {:?}", size as f64 / (1 << 20) as f64, result.text));
        match file_type {
            FileType::F16 | FileType::Q8_0 => {
                assert_eq!(result.tokens, case.generated_ids, "{name}");
                assert_eq!(result.text, case.text, "{name}");
            }
            // Measured with these weights: both give the reference words (WER 0).
            _ => assert!(wer <= 0.05, "{name}: WER {wer} for {:?}", result.text),
        }
    }
    eprintln!("{}", report.join("\n"));
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A ggml file names no alignment heads: openai's for tiny.en come from its dimensions, and its
/// word timestamps are openai-whisper's (tests/fixtures/whisper/words.reference.json, the same
/// words each within 0.1 s; f16 decodes the reference tokens exactly).
#[test]
fn written_file_gives_openais_word_timestamps() {
    let path = format!("{FIXTURES}/whisper/words.reference.json");
    let all: references::WhisperWords = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let case = references::WhisperWordsCase::find(&all, "tiny.en", "jfk16.wav", "transcribe", 1);
    let dir = std::env::temp_dir().join(format!("hubside-ggml-words-{}", std::process::id()));
    let repo_dir = dir.join("ggerganov/whisper.cpp");
    std::fs::create_dir_all(&repo_dir).unwrap();
    std::fs::write(repo_dir.join("ggml-tiny.en.bin"), tiny_en_ggml(FileType::F16)).unwrap();
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![dir.clone()], ..Default::default() }).unwrap();
    let repo = Repo::remote("ggerganov/whisper.cpp", Some(&server.hub_endpoint()), None).unwrap();
    let load = LoadOptions { file: Some("ggml-tiny.en.bin".into()), ..Default::default() };
    let model = pollster::block_on(SpeechRecognizer::load_with(&repo, &load)).unwrap();
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
    let (name, heads) = hubside::whisper::alignment::openai_default(model.model().config()).unwrap();
    assert_eq!((name, model.alignment_heads()), ("tiny.en", heads.as_slice()));
    let samples = jfk();
    let options = TranscribeOptions { return_timestamps: ReturnTimestamps::Words, ..Default::default() };
    let result = model.transcribe(audio::Pcm { samples: &samples, sample_rate: 16000, channels: 1 }, &options, &mut |_| {}).unwrap();
    assert_eq!(result.tokens, case.tokens());
    let got: Vec<(String, f64, f64)> = result.chunks.iter().map(|c| (c.text.clone(), c.timestamp[0], c.timestamp[1])).collect();
    case.check_words("ggml-tiny.en.bin", &got);
}

/// The written files have, to the byte, the sizes of the ones ggerganov/whisper.cpp publishes
/// (ggml-tiny.en.bin 77704715, -q8_0 43550795, -q5_1 32166155; ggml-base.bin 147951465, -q5_1
/// 59707625): same header, filterbank shape, vocabulary, tensor set, order and storage types.
#[test]
fn written_sizes_are_whisper_cpps() {
    let size = |t| tiny_en_ggml(t).len();
    assert_eq!(size(FileType::F16), 77_704_715);
    assert_eq!(size(FileType::Q8_0), 43_550_795);
    assert_eq!(size(FileType::Q5_1), 32_166_155);
    assert!(size(FileType::Q5_0) < size(FileType::Q5_1));
    let bytes = std::fs::read(repo_dir(BASE).join("model.bin")).unwrap();
    let base = ctranslate2::from_bytes(&bytes, "model.bin").unwrap();
    drop(bytes);
    let tokenizer = tokenizer(BASE);
    for (file_type, published) in [(FileType::F16, 147_951_465), (FileType::Q5_1, 59_707_625)] {
        let written = ggml_writer::convert_ctranslate2(&base, &tokenizer, file_type).unwrap();
        assert_eq!(written.len(), published, "base {file_type:?}");
    }
}

/// What the reader returns for the written f16 and q5_1 files: the header, whisper.cpp's
/// filterbank (ours), the vocabulary, and every tensor under its transformers name in the type
/// whisper.cpp stores it in; f16 values are the CTranslate2 weights exactly.
#[test]
fn reader_returns_what_was_written() {
    let f16 = ggml::parse(tiny_en_ggml(FileType::F16), "ggml-tiny.en.bin").unwrap();
    let h = &f16.hparams;
    assert_eq!(
        (h.n_vocab, h.n_audio_ctx, h.n_audio_state, h.n_audio_head, h.n_audio_layer, h.n_mels),
        (51864, 1500, 384, 6, 4, 80)
    );
    assert_eq!((h.n_text_ctx, h.n_text_state, h.n_text_head, h.n_text_layer), (448, 384, 6, 4));
    assert_eq!((h.file_type, h.quantization_version, h.ftype_field()), (FileType::F16, 0, 1));
    assert_eq!((f16.mel_filters.n_mel, f16.mel_filters.n_fft), (80, 201));
    assert_eq!(f16.mel_filters.data, audio::mel_filters(80, 400, 16000));
    assert_eq!(f16.vocab.len(), 50257);
    assert_eq!(f16.vocab[220], b" ");
    assert_eq!(f16.vocab[50256], b"<|endoftext|>");
    let vocab = GgmlVocab::new(f16.vocab.clone(), h.n_vocab);
    let case = reference();
    assert_eq!(vocab.decode(&case.generated_ids), case.text);

    let specs = ggml::layout(h);
    assert_eq!(f16.tensors.len(), specs.len());
    let ct2 = tiny_en_ct2();
    let q_proj = f16.tensors["model.encoder.layers.0.self_attn.q_proj.weight"].to_f32().unwrap();
    let fused = &ct2["encoder/layer_0/self_attention/linear_0/weight"];
    assert_eq!(max_difference(&q_proj, &fused.narrow(0, 0, 384).unwrap()), 0.0);
    let embeddings = f16.tensors["model.decoder.embed_tokens.weight"].to_f32().unwrap();
    assert_eq!(max_difference(&embeddings, &ct2["decoder/embeddings/weight"]), 0.0);
    let conv_bias = &f16.tensors["model.encoder.conv1.bias"];
    assert_eq!(conv_bias.dims(), &[384]);
    assert_eq!(max_difference(&conv_bias.to_f32().unwrap(), &ct2["encoder/conv1/bias"]), 0.0);

    let q5_1 = ggml::parse(tiny_en_ggml(FileType::Q5_1), "ggml-tiny.en-q5_1.bin").unwrap();
    assert_eq!((q5_1.hparams.file_type, q5_1.hparams.ftype_field()), (FileType::Q5_1, 2009));
    for spec in &specs {
        let (stored_f16, stored_q) = (&f16.tensors[&spec.hf_name], &q5_1.tensors[&spec.hf_name]);
        assert_eq!(stored_f16.dims(), spec.hf_shape().as_slice(), "{}", spec.name);
        assert_eq!(stored_f16.dtype(), spec.role.dtype(FileType::F16), "{}", spec.name);
        assert_eq!(stored_q.dtype(), spec.role.dtype(FileType::Q5_1), "{}", spec.name);
        let expected = match spec.role {
            Role::Matrix => GgmlDType::Q5_1,
            Role::ConvWeight => GgmlDType::F16,
            Role::ConvBias | Role::Float => GgmlDType::F32,
        };
        assert_eq!(stored_q.dtype(), expected, "{}", spec.name);
    }
    // Every quantised matrix is its own weights up to a small error (q5_1: scale/31 per block).
    for spec in specs.iter().filter(|s| s.role == Role::Matrix) {
        let q = q5_1.tensors[&spec.hf_name].to_f32().unwrap();
        let exact = f16.tensors[&spec.hf_name].to_f32().unwrap();
        let scale = exact.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        let error = max_difference(&q, &exact);
        assert!(error < scale / 31.0, "{}: {error} vs {scale}", spec.name);
    }
}

fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    // CTranslate2 tensors keep their f16; compared in f32.
    let (a, b) = (a.to_dtype(DType::F32).unwrap(), b.to_dtype(DType::F32).unwrap());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

// ---- the vocabulary --------------------------------------------------------------------------

/// Without tokenizer.json: the special tokens derived from n_vocab are the tokenizer's, and the
/// suppress lists computed from the token bytes are the ones CTranslate2's config.json holds.
#[test]
fn ggml_vocabulary_matches_the_tokenizer() {
    for (repo, n_vocab) in [(TINY_EN, 51864), (BASE, 51865)] {
        let tokenizer = tokenizer(repo);
        let vocab = GgmlVocab::new(ggml_vocab_from_tokenizer(&tokenizer).unwrap(), n_vocab);
        let specials = vocab.special_tokens().unwrap();
        // Hebrew: whisper.cpp (and openai's table) say "he" where these tokenizers have <|iw|>.
        let mut from_tokenizer = SpecialTokens::from_tokenizer(&tokenizer).unwrap();
        for (code, _) in &mut from_tokenizer.languages {
            if code == "iw" {
                *code = "he".into();
            }
        }
        assert_eq!(specials, from_tokenizer, "{repo}");
        let config = ct2_config(repo);
        let ids = |key: &str| -> Vec<u32> {
            config[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
        };
        let ordinary: Vec<u32> = ids("suppress_ids").into_iter().filter(|&id| id < specials.eot).collect();
        assert_eq!(vocab.non_speech_tokens(), ordinary, "{repo}");
        assert_eq!(vocab.begin_suppress_tokens(specials.eot), ids("suppress_ids_begin"), "{repo}");
        // Decoding the bytes is the tokenizer's decoding, multi-byte characters included.
        let text = "Grüße, 東京 — ♪ ok ♪";
        let encoding = tokenizer.encode(text, false).unwrap();
        assert_eq!(vocab.decode(encoding.get_ids()), tokenizer.decode(encoding.get_ids(), true).unwrap());
    }
}

// ---- a bounded reader ------------------------------------------------------------------------

/// A small random Whisper in whisper.cpp's layout (shapes divisible by every block size).
fn small_file(file_type: FileType) -> Vec<u8> {
    let hparams = HParams {
        n_vocab: 40,
        n_audio_ctx: 3,
        n_audio_state: 32,
        n_audio_head: 2,
        n_audio_layer: 1,
        n_text_ctx: 5,
        n_text_state: 32,
        n_text_head: 2,
        n_text_layer: 1,
        n_mels: 4,
        file_type,
        quantization_version: if file_type.is_quantized() { 2 } else { 0 },
    };
    let mut seed = 7u32;
    let tensors: Tensors = ggml::layout(&hparams)
        .into_iter()
        .map(|spec| {
            let n: usize = spec.shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
                })
                .collect();
            (spec.name, Tensor::from_vec(values, spec.shape, &Device::Cpu).unwrap())
        })
        .collect();
    let filters = MelFilters { n_mel: 4, n_fft: 3, data: vec![0.5; 12] };
    let vocab = vec![b"a".to_vec(), Vec::new(), " \u{e9}".as_bytes().to_vec()];
    ggml_writer::write(&hparams, &filters, &vocab, &tensors).unwrap()
}

#[test]
fn every_truncation_is_a_weights_error() {
    for file_type in [FileType::Q5_1, FileType::F16] {
        let bytes = small_file(file_type);
        let parsed = ggml::parse(&bytes, "small.bin").unwrap();
        assert_eq!(parsed.vocab.len(), 3);
        assert_eq!(parsed.tensors.len(), ggml::layout(&parsed.hparams).len());
        for len in 0..bytes.len() {
            match ggml::parse(&bytes[..len], "small.bin") {
                Err(Error::Weights { .. }) => {}
                other => panic!("{file_type:?} cut at {len} of {}: {other:?}", bytes.len()),
            }
        }
    }
}

#[test]
fn corrupt_files_are_errors_never_panics() {
    let good = small_file(FileType::Q8_0);
    for bytes in [b"not a model at all".to_vec(), vec![0u8; 64], vec![0xff; 64], b"lmgg".to_vec()] {
        assert!(matches!(ggml::parse(&bytes, "x.bin"), Err(Error::Weights { .. })));
    }
    assert!(!ggml::has_magic(b"lmg".as_slice()) && ggml::has_magic(good.as_slice()));
    // Pseudo-random corruption: parses or errors, never panics (shapes, counts, types, names).
    let mut state = 0x1234_5678u32;
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..3 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // Mostly the headers, where sizes live.
            let limit = if state & 1 == 0 { 600.min(bytes.len()) } else { bytes.len() };
            let i = (state >> 8) as usize % limit;
            bytes[i] = (state >> 3) as u8;
        }
        let _ = ggml::parse(&bytes, "x.bin");
    }
    // Specific inconsistencies name what is wrong.
    let message = |bytes: &[u8]| ggml::parse(bytes, "x.bin").unwrap_err().to_string();
    let mut junk = good.clone();
    junk.extend_from_slice(&[1, 0, 0, 0]);
    assert!(message(&junk).contains("truncated"), "{}", message(&junk));
    let mut ftype = good.clone();
    ftype[44..48].copy_from_slice(&2004i32.to_le_bytes());
    assert!(message(&ftype).contains("unknown ftype"), "{}", message(&ftype));
    let renamed = replace(&good, b"encoder.ln_post.bias", b"encoder.ln_post.bogo");
    assert!(message(&renamed).contains("unknown tensor 'encoder.ln_post.bogo'"), "{}", message(&renamed));
    // The last record (decoder.ln.bias: 3 header i32s, 1 dimension, the name, 32 f32s) again.
    let record = 12 + 4 + "decoder.ln.bias".len() + 32 * 4;
    let mut twice = good.clone();
    twice.extend_from_slice(&good[good.len() - record..]);
    assert!(message(&twice).contains("'decoder.ln.bias' appears twice"), "{}", message(&twice));
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[test]
fn the_file_option_refuses_other_files() {
    let dir = std::env::temp_dir().join(format!("hubside-ggml-option-{}", std::process::id()));
    let repo_dir = dir.join("ggerganov/whisper.cpp");
    std::fs::create_dir_all(&repo_dir).unwrap();
    std::fs::write(repo_dir.join("model.bin"), b"\x06\x00\x00\x00 CTranslate2-ish").unwrap();
    std::fs::write(repo_dir.join("small.bin"), small_file(FileType::F16)).unwrap();
    let repo = Repo::local(&repo_dir);
    let load = |file: &str| pollster::block_on(SpeechRecognizer::load_with(&repo, &LoadOptions { file: Some(file.to_string()), ..Default::default() })).err().expect("must fail");
    assert!(matches!(load("model.bin"), Error::Weights { .. }));
    assert!(matches!(load("config.json"), Error::Weights { .. }));
    assert!(matches!(load("missing.bin"), Error::NotFound { .. }));
    // A well-formed file whose vocabulary is not Whisper's.
    assert!(matches!(load("small.bin"), Error::Tokenizer(_)), "{}", load("small.bin"));
    std::fs::remove_dir_all(&dir).unwrap();
}
