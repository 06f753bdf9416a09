//! `hubside transcribe --live FILE`: a file replayed through a live transcription session
//! (`hubside::whisper::live`) as a microphone would deliver it, in 100 ms pieces at `speed` × real
//! time (0: as fast as decoding goes). Audio that "arrived" while a push was decoding goes into the
//! next push together, as in the browser's worker. Each decode's `committed | tentative` text goes
//! to stderr with the audio time; the final result is returned.

use std::time::{Duration, Instant};

use hubside::audio::decode::Decoded;
use hubside::tasks::speech_recognition::SpeechRecognizer;
use hubside::whisper::live::{LiveOptions, LiveResult, LiveSession};
use hubside::{Error, Result};

/// `--live` over each file: the final text (or chunks with --timestamps, or one JSON object per
/// file with --json) on stdout, as without --live.
pub fn replay_files(
    recognizer: &SpeechRecognizer,
    files: &[std::path::PathBuf],
    options: LiveOptions,
    speed: f64,
    json: bool,
    timestamps: bool,
) -> Result<()> {
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        let audio = hubside::audio::decode::decode(&bytes, &path.display().to_string())?;
        let result = replay(recognizer, &audio, options.clone(), speed)?;
        if json {
            let mut value = serde_json::to_value(&result).map_err(|e| Error::Io(e.to_string()))?;
            value["file"] = path.display().to_string().into();
            println!("{value}");
        } else if timestamps {
            for chunk in &result.chunks {
                println!("[{:>7.2} -> {:>7.2}] {}", chunk.timestamp[0], chunk.timestamp[1], chunk.text.trim());
            }
        } else {
            println!("{}", result.text);
        }
    }
    Ok(())
}

pub fn replay(recognizer: &SpeechRecognizer, audio: &Decoded, options: LiveOptions, speed: f64) -> Result<LiveResult> {
    if !(speed.is_finite() && speed >= 0.0) {
        return Err(Error::Input(format!("--live-speed {speed}: expected a number ≥ 0 (1: real time, 0: as fast as possible)")));
    }
    let mono = hubside::audio::downmix(&audio.samples, audio.channels);
    let rate = audio.sample_rate as f64;
    let piece = (audio.sample_rate as usize / 10).max(1);
    let mut session = LiveSession::new(recognizer, options)?;
    let started = Instant::now();
    let mut position = 0;
    while position < mono.len() {
        let mut next = (position + piece).min(mono.len());
        if speed > 0.0 {
            let due = Duration::from_secs_f64(next as f64 / rate / speed);
            let elapsed = started.elapsed();
            if elapsed < due {
                std::thread::sleep(due - elapsed);
            } else {
                let arrived = (elapsed.as_secs_f64() * speed * rate) as usize / piece * piece;
                next = arrived.clamp(next, mono.len());
            }
        }
        let update = session.push(recognizer, &mono[position..next], audio.sample_rate)?;
        position = next;
        if update.decoded {
            eprintln!("[{:7.2} s] {} | {}", update.received, update.committed, update.tentative);
        }
    }
    session.finish(recognizer)
}
