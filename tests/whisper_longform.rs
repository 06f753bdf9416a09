//! openai/whisper's long-form rules (condition_on_previous_text, initial_prompt, temperature
//! fallback, no-speech skip, prompt reset) against openai-whisper's transcribe() on the real tiny.en
//! and base weights (tests/fixtures/whisper/longform.reference.json, made by
//! tests/models/make_longform_reference.py), over long clips assembled from the fixture clips.
//! The weights come from the local Hub mirror: run `scripts/fetch-whisper.sh` first.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use hubside::audio::{self, Pcm};
use hubside::hub::Repo;
use hubside::serve::{self, ServeOptions};
use hubside::tasks::speech_recognition::{SpeechRecognizer, Temperature, TranscribeOptions, Transcription};
use hubside::whisper::fallback::Fallback;
use hubside::Error;

mod common;
#[path = "references/longform.rs"]
mod longform;
use longform::{Reference, Run};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn wav(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(format!("{FIXTURES}/audio/{name}")).unwrap();
    let (samples, rate, channels) = audio::read_wav(&bytes).unwrap();
    assert_eq!((rate, channels), (16000, 1), "{name}");
    samples
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(longform::reference)
}

fn clip(name: &str) -> Vec<f32> {
    longform::build(&reference().clips[name], wav)
}

fn model(name: &str) -> &'static SpeechRecognizer {
    static MODELS: OnceLock<(SpeechRecognizer, SpeechRecognizer)> = OnceLock::new();
    let (tiny, base) = MODELS.get_or_init(|| {
        let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![common::whisper_hub()], ..Default::default() }).unwrap();
        let load = |repo: &str| {
            let repo = Repo::remote(repo, Some(&server.hub_endpoint()), None).unwrap();
            pollster::block_on(SpeechRecognizer::load(&repo)).unwrap()
        };
        (load("Systran/faster-whisper-tiny.en"), load("Systran/faster-whisper-base"))
    });
    match name {
        "tiny.en" => tiny,
        "base" => base,
        other => panic!("no model {other}"),
    }
}

fn transcribe(model: &SpeechRecognizer, samples: &[f32], options: &TranscribeOptions) -> Result<Transcription, Error> {
    model.transcribe(Pcm { samples, sample_rate: 16000, channels: 1 }, options, &mut |_| {})
}

fn label(run: &Run) -> String {
    format!("{} {} {}", run.clip, run.model, run.options)
}

/// Run one reference case: openai's decodes and decisions, and the rules over both traces.
fn check(run: &Run) -> (Transcription, bool) {
    let options = longform::options(run);
    let result = transcribe(model(&run.model), &clip(&run.clip), &options).unwrap();
    let label = label(run);
    eprintln!("{label}: {:?}", result.text);
    for w in &result.windows {
        eprintln!("  {} s: prompt {} tokens, temperatures {:?}, skipped {}", w.start, w.prompt.len(),
            w.attempts.iter().map(|a| (a.temperature, a.compression_ratio, a.avg_logprob, a.no_speech_prob)).collect::<Vec<_>>(), w.skipped);
    }
    let whole = longform::check_run(run, &result, &label);
    let fallback = Fallback::from_options(&options).unwrap();
    let initial = run.decodes[0].prompt.len();
    longform::check_rules(&result.windows, &fallback, initial, &format!("{label} (hubside)"));
    longform::check_rules(&longform::openai_trace(run, &fallback), &fallback, initial, &format!("{label} (openai)"));
    (result, whole)
}

fn runs<'a>(clip: &'a str) -> impl Iterator<Item = &'a Run> {
    reference().runs.iter().filter(move |r| r.clip == clip)
}

#[test]
fn long_clip_matches_openai_with_and_without_conditioning_and_with_an_initial_prompt() {
    let runs: Vec<&Run> = runs("long").filter(|r| r.options.get("logprob_threshold").is_none()).collect();
    assert_eq!(runs.len(), 6, "tiny.en and base × default, condition_on_previous_text false, initial_prompt");
    for run in runs {
        let (result, whole) = check(run);
        assert!(whole, "{}: every window is decoded at temperature 0 (the text is compared)", label(run));
        assert!(result.duration > 60.0 && result.windows.len() >= 3);
        let conditioned = run.options.get("condition_on_previous_text") != Some(&false.into());
        // Conditioning: every window after the first is prompted with the text so far (and never
        // with more than n_text_ctx / 2 − 1 tokens); without it, only an initial prompt prompts.
        for (i, w) in result.windows.iter().enumerate() {
            if conditioned && i > 0 {
                assert!(!w.prompt.is_empty() && w.prompt.len() <= 223, "{}: window {i}", label(run));
            } else if !conditioned {
                assert!(w.prompt.is_empty() || i == 0);
            }
        }
    }
}

#[test]
fn a_window_that_repeats_itself_falls_back_to_a_higher_temperature() {
    for run in runs("repeat") {
        let (result, _) = check(run);
        let first = &result.windows[0];
        assert!(first.attempts[0].compression_ratio > 2.4, "{}: {:?}", label(run), first.attempts[0]);
        assert!(first.attempts.len() > 1 && first.attempts.last().unwrap().temperature > 0.0);
        // openai too: its first window was decoded again.
        assert!(run.decodes[1].temperature > 0.0);
        // Kept above 0.5 (nothing below passed): the next window has no previous text.
        if first.attempts.last().unwrap().temperature > 0.5 {
            assert!(result.windows[1].prompt.is_empty(), "{}: prompt not reset", label(run));
        }
    }
}

#[test]
fn a_low_logprob_window_falls_back() {
    let run = runs("long").find(|r| r.options.get("logprob_threshold").is_some()).unwrap();
    let (result, _) = check(run);
    let first = &result.windows[0];
    assert!(first.attempts[0].avg_logprob < -0.05 && first.attempts[0].compression_ratio < 100.0);
    assert!(first.attempts.len() > 1, "{:?}", first.attempts);
    // No temperature passes -0.05: the last (1.0) is kept, so the next window has no prompt, as
    // in openai's trace (every decode there has an empty prompt).
    assert_eq!(first.attempts.last().unwrap().temperature, 1.0);
    assert!(result.windows[1].prompt.is_empty());
    assert!(run.decodes.iter().all(|d| d.prompt.is_empty()));
}

#[test]
fn a_window_of_room_noise_is_skipped_as_silence() {
    for run in runs("noise") {
        let (result, _) = check(run);
        let skipped: Vec<_> = result.windows.iter().filter(|w| w.skipped).collect();
        assert!(!skipped.is_empty(), "{}: no window skipped", label(run));
        for w in skipped {
            let kept = w.attempts.last().unwrap();
            assert!(kept.no_speech_prob > 0.6 && kept.avg_logprob <= -1.0, "{kept:?}");
        }
    }
}

#[test]
fn sampling_is_reproducible_and_follows_the_seed() {
    let run = runs("repeat").find(|r| r.model == "tiny.en").unwrap();
    let samples = clip(&run.clip);
    let options = longform::options(run);
    let model = model("tiny.en");
    let first = transcribe(model, &samples, &options).unwrap();
    let again = transcribe(model, &samples, &options).unwrap();
    assert_eq!(first, again, "same seed, same transcript");
    let sampled = |t: &Transcription| t.windows[0].attempts[1..].iter().map(|a| a.tokens.clone()).collect::<Vec<_>>();
    let other = transcribe(model, &samples, &TranscribeOptions { seed: Some(12345), ..options.clone() }).unwrap();
    assert_eq!(first.windows[0].attempts[0], other.windows[0].attempts[0], "temperature 0 does not depend on the seed");
    assert_ne!(sampled(&first), sampled(&other), "another seed, other draws");
    // A single temperature 0 never samples: greedy, as before these options existed.
    let greedy = transcribe(model, &samples, &TranscribeOptions { temperature: Some(Temperature::One(0.0)), ..options }).unwrap();
    assert!(greedy.windows.iter().all(|w| w.attempts.len() == 1 && w.attempts[0].temperature == 0.0));
    assert_eq!(greedy.windows[0].attempts[0], first.windows[0].attempts[0]);
}

#[test]
fn out_of_range_options_are_input_errors() {
    let samples = wav("jfk16.wav");
    let bad: [(&str, serde_json::Value); 9] = [
        ("temperature", serde_json::json!(-0.5)),
        ("temperature", serde_json::json!([])),
        ("temperature", serde_json::json!([0.0, 11.0])),
        ("temperature", serde_json::json!(vec![0.1; 40])),
        ("compression_ratio_threshold", serde_json::json!(-1.0)),
        ("logprob_threshold", serde_json::json!(1.0)),
        ("no_speech_threshold", serde_json::json!(2.0)),
        ("initial_prompt", serde_json::json!("hello <|endoftext|>")),
        ("seed", serde_json::json!(-1)),
    ];
    for (name, value) in bad {
        let options: TranscribeOptions = match serde_json::from_value(serde_json::json!({ name: value })) {
            Ok(options) => options,
            // Refused while reading: a negative seed, more temperatures than allowed.
            Err(e) => {
                assert!(name == "seed" || e.to_string().contains("temperatures"), "{name}: {e}");
                continue;
            }
        };
        let err = transcribe(model("tiny.en"), &samples, &options).unwrap_err();
        assert!(matches!(err, Error::Input(_)), "{name}: {err}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}
