//! `hubside transcribe --format srt|vtt` on the real tiny.en weights: the files parse back (with
//! a parser written here from the formats' rules, not the crate's writer) into cues that are the
//! transcription's own segments, times and text.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::{Path, PathBuf};

use hubside::serve::{self, ServeOptions};

const MODEL: &str = "Systran/faster-whisper-tiny.en";

fn audio(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio").join(name)
}

/// The real Whisper weights served over HTTP, and their Hub endpoint.
fn mirror() -> (serve::Running, String) {
    let server = serve::start("127.0.0.1:0", ServeOptions { hub: vec![common::whisper_hub()], ..Default::default() }).unwrap();
    let endpoint = server.hub_endpoint();
    (server, endpoint)
}

fn hubside(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hubside")).arg("transcribe").args(args).output().unwrap()
}

fn stdout(args: &[&str]) -> String {
    let output = hubside(args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[derive(Debug, PartialEq)]
struct Cue {
    start: f64,
    end: f64,
    text: String,
}

/// `HH:MM:SS` + `sep` + `mmm` → seconds; anything else fails the test.
fn parse_time(text: &str, sep: char) -> f64 {
    let (hms, ms) = text.split_once(sep).unwrap_or_else(|| panic!("no '{sep}' in time {text:?}"));
    let parts: Vec<u64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    assert_eq!((parts.len(), ms.len()), (3, 3), "time {text:?}");
    assert!(parts[1] < 60 && parts[2] < 60, "time {text:?}");
    (parts[0] * 3600 + parts[1] * 60 + parts[2]) as f64 + ms.parse::<u64>().unwrap() as f64 / 1000.0
}

fn parse_timing(line: &str, sep: char) -> (f64, f64) {
    let (start, end) = line.split_once(" --> ").unwrap_or_else(|| panic!("not a timing line: {line:?}"));
    (parse_time(start, sep), parse_time(end, sep))
}

/// SubRip: blocks separated by one blank line, each `index` (1, 2, ...), timing, one or more
/// text lines.
fn parse_srt(text: &str) -> Vec<Cue> {
    assert!(text.ends_with("\n\n"), "the last cue ends with a blank line");
    text.trim_end().split("\n\n").enumerate().map(|(i, block)| {
        let mut lines = block.lines();
        assert_eq!(lines.next().unwrap(), (i + 1).to_string());
        let (start, end) = parse_timing(lines.next().unwrap(), ',');
        let text: Vec<&str> = lines.collect();
        assert!(!text.is_empty() && text.iter().all(|l| !l.trim().is_empty()), "cue {i} has no text: {block:?}");
        Cue { start, end, text: text.join(" ") }
    }).collect()
}

/// WebVTT: the `WEBVTT` line, a blank line, then cues (timing, text lines) separated by blank
/// lines; cue text has no raw `<`, `&` or `-->`.
fn parse_vtt(text: &str) -> Vec<Cue> {
    let body = text.strip_prefix("WEBVTT\n\n").expect("WEBVTT header then a blank line");
    body.trim_end().split("\n\n").map(|block| {
        let mut lines = block.lines();
        let (start, end) = parse_timing(lines.next().unwrap(), '.');
        let text: Vec<&str> = lines.collect();
        assert!(!text.is_empty());
        for line in &text {
            assert!(!line.contains("-->") && !line.contains('<'), "{line:?}");
        }
        let text = text.join(" ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
        Cue { start, end, text }
    }).collect()
}

#[test]
fn srt_and_vtt_hold_the_transcriptions_segments() {
    let (_server, endpoint) = mirror();
    let jfk = audio("jfk16.wav");
    let jfk = jfk.to_str().unwrap();
    let model = ["--model", MODEL, "--endpoint", &endpoint];

    let json: serde_json::Value = serde_json::from_str(&stdout(&[&model[..], &["--timestamps", "--format", "json", jfk]].concat())).unwrap();
    let chunks = json["chunks"].as_array().unwrap();
    assert!(chunks.len() >= 2, "{json}");
    let expected: Vec<Cue> = chunks.iter().map(|c| Cue {
        start: c["timestamp"][0].as_f64().unwrap(),
        end: c["timestamp"][1].as_f64().unwrap(),
        text: c["text"].as_str().unwrap().trim().to_string(),
    }).collect();
    assert!(json["text"].as_str().unwrap().contains("ask not what your country can do for you"));

    let srt = parse_srt(&stdout(&[&model[..], &["--format", "srt", jfk]].concat()));
    let vtt = parse_vtt(&stdout(&[&model[..], &["--format", "vtt", jfk]].concat()));
    for cues in [&srt, &vtt] {
        assert_eq!(cues.len(), expected.len());
        for (cue, want) in cues.iter().zip(&expected) {
            assert_eq!(cue.text, want.text);
            // Chunk times are rounded to 0.01 s; cue times to 0.001 s.
            assert!((cue.start - want.start).abs() < 1e-9 && (cue.end - want.end).abs() < 1e-9, "{cue:?} vs {want:?}");
            assert!(cue.start <= cue.end);
        }
    }

    // Gathering into lines of at most 30 characters never splits a segment: each cue is whole
    // segments, in order, and the text is unchanged.
    let gathered = parse_srt(&stdout(&[&model[..], &["--format", "srt", "--max-line-width", "30", jfk]].concat()));
    let joined = |cues: &[Cue]| cues.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(" ");
    assert_eq!(joined(&gathered), joined(&expected));
    assert!(gathered.len() <= expected.len());
}

#[test]
fn several_files_write_one_subtitle_file_each() {
    let (_server, endpoint) = mirror();
    let (jfk, flac, de) = (audio("jfk16.wav"), audio("jfk16.flac"), audio("de16.wav"));
    let (jfk, flac, de) = (jfk.to_str().unwrap(), flac.to_str().unwrap(), de.to_str().unwrap());
    let model = ["--model", MODEL, "--endpoint", &endpoint];

    // Two subtitle files cannot share stdout: the error says what to do.
    let output = hubside(&[&model[..], &["--format", "vtt", jfk, de]].concat());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--output-dir"));

    let dir = std::env::temp_dir().join(format!("hubside-subtitles-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    // Two inputs with one stem would overwrite each other's file: refused before any work.
    let output = hubside(&[&model[..], &["--format", "vtt", "--output-dir", out, jfk, flac]].concat());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("would both be written as jfk16"));

    stdout(&[&model[..], &["--format", "srt", "--output-dir", out, jfk, de]].concat());
    let jfk_cues = parse_srt(&std::fs::read_to_string(dir.join("jfk16.srt")).unwrap());
    assert!(jfk_cues.iter().map(|c| c.text.as_str()).collect::<String>().contains("fellow Americans"));
    // German speech through an English-only model: still a valid file of increasing cues.
    let de_cues = parse_srt(&std::fs::read_to_string(dir.join("de16.srt")).unwrap());
    assert!(!de_cues.is_empty());
    assert!(de_cues.windows(2).all(|w| w[0].end <= w[1].start + 1e-9));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn word_timestamps_become_cues_of_at_most_42_characters() {
    let (_server, endpoint) = mirror();
    let jfk = audio("jfk16.wav");
    let jfk = jfk.to_str().unwrap();
    let model = ["--model", MODEL, "--endpoint", &endpoint];

    let json: serde_json::Value = serde_json::from_str(&stdout(&[&model[..], &["--word-timestamps", "--format", "json", jfk]].concat())).unwrap();
    let words: Vec<(f64, f64, String)> = json["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["timestamp"][0].as_f64().unwrap(), c["timestamp"][1].as_f64().unwrap(), c["text"].as_str().unwrap().trim().to_string()))
        .collect();
    assert!(words.len() > 10, "{json}");

    let cues = parse_vtt(&stdout(&[&model[..], &["--word-timestamps", "--format", "vtt", jfk]].concat()));
    assert!(cues.len() > 1 && cues.len() < words.len(), "{cues:?}");
    // Each cue is a run of whole words, in order, from its first word's start to its last word's end.
    let mut next = 0;
    for cue in &cues {
        assert!(cue.text.chars().count() <= 42, "{cue:?}");
        let count = cue.text.split(' ').count();
        let run = &words[next..next + count];
        assert_eq!(cue.text, run.iter().map(|w| w.2.as_str()).collect::<Vec<_>>().join(" "));
        assert!((cue.start - run[0].0).abs() < 1e-9 && (cue.end - run[count - 1].1).abs() < 1e-9, "{cue:?} {run:?}");
        next += count;
    }
    assert_eq!(next, words.len());
}
