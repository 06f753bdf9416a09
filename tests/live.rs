//! Live transcription: the voice activity detector on the labelled clip
//! tests/fixtures/audio/live16.wav (made by tests/references/make_live_clip.py), and the live session
//! (LocalAgreement-2) on the real tiny.en weights, replaying the clip in real-time-sized chunks.
//! The weights live outside the repository: run `scripts/fetch-whisper.sh` first.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use hubside::audio::{self, vad, Pcm};
use hubside::hub::Repo;
use hubside::serve::{self, ServeOptions};
use hubside::tasks::speech_recognition::{SpeechRecognizer, TranscribeOptions};
use hubside::whisper::live::{LiveOptions, LiveSession};

mod common;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

#[derive(serde::Deserialize)]
struct Labels {
    frame_seconds: f64,
    labels: String,
    english_end: f64,
}

fn labelled_clip() -> (Vec<f32>, Labels) {
    let bytes = std::fs::read(format!("{FIXTURES}/audio/live16.wav")).unwrap();
    let (samples, rate, channels) = audio::read_wav(&bytes).unwrap();
    assert_eq!((rate, channels), (16000, 1));
    let labels: Labels = serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/audio/live16.labels.json")).unwrap()).unwrap();
    assert_eq!(labels.frame_seconds, vad::FRAME as f64 / 16000.0);
    (samples, labels)
}

/// Frame-level precision and recall on the labelled clip, fed in 100 ms chunks as a microphone
/// would; the figures are in BENCHMARKS.md.
#[test]
fn vad_precision_and_recall_on_the_labelled_clip() {
    let (samples, labels) = labelled_clip();
    let truth: Vec<bool> = labels.labels.bytes().map(|b| b == b'1').collect();
    let mut detector = vad::Vad::new();
    let predicted: Vec<bool> = samples.chunks(1600).flat_map(|c| detector.push(c)).collect();
    assert_eq!(predicted.len(), truth.len());
    let (precision, recall) = vad::precision_recall(&predicted, &truth);
    let line: String = predicted.iter().map(|&p| if p { '1' } else { '0' }).collect();
    println!("truth     {}\npredicted {line}", labels.labels);
    println!("VAD on live16.wav: precision {precision:.3}, recall {recall:.3} ({} frames)", truth.len());
    assert!(precision >= 0.9 && recall >= 0.9, "precision {precision:.3}, recall {recall:.3}");
}

fn tiny_en() -> &'static SpeechRecognizer {
    static MODEL: OnceLock<SpeechRecognizer> = OnceLock::new();
    MODEL.get_or_init(|| {
        let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![common::whisper_hub()], ..Default::default() }).unwrap();
        let repo = Repo::remote("Systran/faster-whisper-tiny.en", Some(&server.hub_endpoint()), None).unwrap();
        pollster::block_on(SpeechRecognizer::load(&repo)).unwrap()
    })
}

/// Lower-case words without punctuation, as WER is usually counted.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').flat_map(char::to_lowercase).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hypothesis` against `reference` (word-level edit distance / reference words).
fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut diagonal = row[0];
        row[0] = i;
        for j in 1..=h.len() {
            let next = (row[j] + 1).min(row[j - 1] + 1).min(diagonal + usize::from(r[i - 1] != h[j - 1]));
            diagonal = row[j];
            row[j] = next;
        }
    }
    row[h.len()] as f64 / r.len().max(1) as f64
}

/// Ends (seconds) of the labelled phrases: speech runs followed by at least `pause` of non-speech.
fn phrase_ends(labels: &Labels, until: f64, pause: f64) -> Vec<f64> {
    let truth: Vec<bool> = labels.labels.bytes().map(|b| b == b'1').collect();
    let gap = (pause / labels.frame_seconds).round() as usize;
    let mut ends = Vec::new();
    for i in 1..truth.len() {
        let end = i as f64 * labels.frame_seconds;
        if truth[i - 1] && !truth[i] && end < until && truth[i..(i + gap).min(truth.len())].iter().all(|&s| !s) {
            ends.push(end);
        }
    }
    ends
}

/// Seconds each decode takes on the simulated clock: about a tiny.en window in Chromium on this
/// machine (2.2–3.1 s) and natively under load (1.1–2.3 s). A fixed cost, not the measured one,
/// so that which audio each decode hears, and so the result, is the same on any machine.
/// `LIVE_DECODE_SECONDS` sets another (for BENCHMARKS.md: what a faster decode would give).
fn decode_seconds() -> f64 {
    std::env::var("LIVE_DECODE_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2.0)
}

/// Replays `audio` through a live session in 100 ms pieces, as a microphone would deliver it,
/// checking that committed text only ever grows. Returns the final result, the offline transcript
/// of the same audio, and after each push the simulated real-time clock (audio arrives at its own
/// pace, each decode takes `decode_seconds()`), the seconds of audio the latest decode heard and
/// whether all of it is committed (no tentative text).
fn replay(audio: &[f32]) -> (hubside::whisper::live::LiveResult, String, Vec<(f64, f64, bool)>) {
    let model = tiny_en();
    let offline = model.transcribe(Pcm { samples: audio, sample_rate: 16000, channels: 1 }, &TranscribeOptions::default(), &mut |_| {}).unwrap();
    let mut session = LiveSession::new(model, LiveOptions::default()).unwrap();
    // Audio comes in 100 ms pieces; what arrived while a push was busy goes in the next push
    // together (as the browser's worker does), so a slow decode delays text but never backs up.
    let piece = 1600;
    let (mut clock, mut committed, mut position) = (0f64, String::new(), 0usize);
    let mut history = Vec::new();
    let (mut decodes, mut heard) = (0, 0.0);
    while position < audio.len() {
        let next = (position + piece).min(audio.len());
        clock = clock.max(next as f64 / 16000.0);
        let arrived = (((clock * 16000.0) as usize / piece) * piece).clamp(next, audio.len());
        let update = session.push(model, &audio[position..arrived], 16000).unwrap();
        clock += if update.decoded { decode_seconds() } else { 0.0 };
        position = arrived;
        if update.decoded {
            decodes += 1;
            heard = update.received;
        }
        assert!(update.committed.starts_with(&committed), "committed text changed: {committed:?} → {:?}", update.committed);
        committed = update.committed;
        history.push((clock, heard, update.tentative.is_empty()));
        if update.decoded && std::env::var("LIVE_TRACE").is_ok() {
            println!("{:6.2} {:6.2} [{}] [{}]", update.received, clock, committed, update.tentative);
        }
    }
    let result = session.finish(model).unwrap();
    assert!(result.text.starts_with(&committed), "finish changed committed text");
    println!("offline: {}\nlive:    {}\n{decodes} decodes; phrases: {:?}", offline.text, result.text, result.chunks);
    (result, offline.text, history)
}

/// jfk16.wav between 1 s of silence: the committed transcript has the offline transcript's words.
#[test]
fn live_jfk_commits_the_offline_words() {
    let mut audio = vec![0f32; 16000];
    audio.extend(clip_16k("jfk16.wav"));
    audio.extend(vec![0f32; 16000]);
    let (result, offline, _) = replay(&audio);
    let error = wer(&offline, &result.text);
    println!("WER {error:.3}");
    assert!(error <= 0.05, "WER {error:.3}");
}

/// The English part of the labelled clip (jfk16, a hum, jfk16 at −6 dB, under noise). Prints the
/// delay from the end of each labelled phrase to its committed text, for BENCHMARKS.md. Measured:
/// WER 0.09 against the offline transcript, which itself hears "American asked not" where live
/// decodes hear "America ask not"; the target of 0.05 is missed on this clip (see BENCHMARKS.md).
#[test]
fn live_noisy_clip_commits_nearly_the_offline_words() {
    let (samples, labels) = labelled_clip();
    let english = &samples[..(labels.english_end * 16000.0) as usize];
    let (result, offline, history) = replay(english);
    let mut delays = Vec::new();
    // Phrases followed by at least 1 s of silence: after shorter pauses speech resumes before a
    // phrase's last words can be confirmed, and the text is measured at the next long pause.
    for end in phrase_ends(&labels, labels.english_end, 1.0) {
        // The phrase is committed once a decode that heard its end leaves nothing tentative.
        if let Some((at, _, _)) = history.iter().find(|(_, heard, all)| *heard >= end && *all) {
            delays.push(at - end);
        }
    }
    delays.sort_by(f64::total_cmp);
    let error = wer(&offline, &result.text);
    println!("phrase ends {:?}", phrase_ends(&labels, labels.english_end, 0.5));
    println!("WER {error:.3}; delays (s) from phrase end to committed text: {delays:.2?}; median {:.2}", delays.get(delays.len() / 2).copied().unwrap_or(f64::NAN));
    assert!(error <= 0.1, "WER {error:.3}");
}

/// `hubside transcribe --live --live-speed 0` replays a file through the same session: the words
/// of the offline transcript, and a bad speed is an input error.
#[test]
fn cli_live_replays_a_file() {
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![common::whisper_hub()], ..Default::default() }).unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hubside"))
            .args(["transcribe", "--model", "Systran/faster-whisper-tiny.en", "--endpoint", &server.hub_endpoint(), "--live"])
            .args(extra)
            .arg(format!("{FIXTURES}/audio/jfk16.wav"))
            .output()
            .unwrap()
    };
    let output = run(&["--live-speed", "0"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let offline = tiny_en().transcribe(Pcm { samples: &clip_16k("jfk16.wav"), sample_rate: 16000, channels: 1 }, &TranscribeOptions::default(), &mut |_| {}).unwrap();
    assert!(wer(&offline.text, &text) <= 0.05, "{text}");
    assert!(String::from_utf8_lossy(&output.stderr).contains(" | "), "committed | tentative updates on stderr");
    let output = run(&["--live-speed=-1"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--live-speed -1"), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Bad input is a typed input error naming it; the session stays usable after one.
#[test]
fn live_session_input_errors() {
    let model = tiny_en();
    let message = |e: hubside::Error| match e {
        hubside::Error::Input(m) => m,
        other => panic!("not an input error: {other:?}"),
    };
    let options = LiveOptions { language: Some("de".into()), ..Default::default() };
    assert!(message(LiveSession::new(model, options).err().unwrap()).contains("English-only"));
    let mut session = LiveSession::new(model, LiveOptions::default()).unwrap();
    assert!(message(session.push(model, &[0.0; 10], 500).unwrap_err()).contains("500 Hz"));
    assert!(message(session.push(model, &[0.0, f32::NAN], 16000).unwrap_err()).contains("sample 1"));
    let update = session.push(model, &[0.0; 4800], 48000).unwrap();
    assert_eq!((update.committed.as_str(), update.tentative.as_str(), update.decoded), ("", "", false));
    assert!(message(session.push(model, &[0.0; 1600], 16000).unwrap_err()).contains("takes 48000 Hz"));
    // Silence is never decoded.
    let update = session.push(model, &vec![0.0; 48000 * 3], 48000).unwrap();
    assert!(!update.decoded && update.committed.is_empty());
    assert_eq!(session.finish(model).unwrap().text, "");
}

fn clip_16k(name: &str) -> Vec<f32> {
    let (samples, rate, channels) = audio::read_wav(&std::fs::read(format!("{FIXTURES}/audio/{name}")).unwrap()).unwrap();
    assert_eq!((rate, channels), (16000, 1));
    samples
}

#[test]
#[ignore]
fn vad_features_dump() {
    let (samples, labels) = labelled_clip();
    let mut detector = vad::Vad::new();
    for (i, frame) in samples.chunks_exact(vad::FRAME).enumerate() {
        let (s, f) = detector.frame(frame);
        println!("{i} {} {} {:.1} {:.1} {:.2}", &labels.labels[i..i + 1], s as u8, f.level_db, f.floor_db, f.flatness);
    }
}
