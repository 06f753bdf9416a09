//! Voice activity detection for live transcription: which 20 ms frames of 16 kHz audio hold speech.
//!
//! A spectral detector, streaming and model-free (Silero VAD would need an ONNX runtime): per frame
//! the energy in the speech band (150–4000 Hz, where voiced speech carries its power) relative to
//! an adaptive noise floor, and the band's spectral flatness (white noise and broadband hiss are
//! flat, voiced speech has harmonics). A frame is speech-like when it stands `SNR_DB` above the
//! floor, is above an absolute level, and is not flat; speech starts after `ONSET` speech-like
//! frames in a row and ends `HANGOVER` frames after the last one, so the pauses between syllables
//! and the soft ends of words stay inside the segment.
//!
//! The noise floor is a low percentile (`FLOOR_RANK` of `FLOOR_FRAMES`) of the recent frames' levels
//! (minimum statistics): speech pauses between words often enough that the quiet end of a few
//! seconds is the background, so the floor follows a background that changes within that time and
//! speech does not lift it; a percentile rather than the minimum, so that a few frames of digital
//! silence (a clip's start, a dropout) do not pull the floor below the real background.
//! Precision and recall on tests/fixtures/audio/live16.wav are in BENCHMARKS.md.

use std::sync::Arc;

use rustfft::num_complex::Complex;

use super::SAMPLE_RATE;

/// Samples per frame: 20 ms at 16 kHz.
pub const FRAME: usize = 320;
/// FFT size: the frame, zero-padded.
const N_FFT: usize = 512;
/// The band searched for speech, in Hz.
const BAND: (f64, f64) = (150.0, 4000.0);
/// Speech-like: band energy this far above the noise floor…
const SNR_DB: f64 = 9.0;
/// …and above this absolute level (dB re full scale, band energy per sample).
const MIN_LEVEL_DB: f64 = -62.0;
/// …and less flat than this (geometric / arithmetic mean of the band's power; white noise ≈ 0.56).
const MAX_FLATNESS: f64 = 0.35;
/// Speech-like frames in a row that start speech (40 ms: a click is not speech).
const ONSET: usize = 2;
/// Frames speech lasts after the last speech-like one (120 ms).
const HANGOVER: usize = 6;
/// The noise floor is the `FLOOR_RANK`-th quietest of the last `FLOOR_FRAMES` frames (3 s; the
/// 5th percentile).
const FLOOR_FRAMES: usize = 150;
const FLOOR_RANK: usize = 8;

/// The state of a streaming detector: feed samples with `push`, get one decision per whole frame.
pub struct Vad {
    fft: Arc<dyn rustfft::Fft<f64>>,
    window: Vec<f64>,
    band: std::ops::Range<usize>,
    /// Samples not yet making a whole frame.
    pending: Vec<f32>,
    /// Band levels of the last `FLOOR_FRAMES` frames.
    recent: std::collections::VecDeque<f64>,
    run: usize,
    since_speech: usize,
    in_speech: bool,
}

impl Default for Vad {
    fn default() -> Self {
        Self::new()
    }
}

/// What one frame looked like, for tests and tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameFeatures {
    pub level_db: f64,
    pub floor_db: f64,
    pub flatness: f64,
}

impl Vad {
    pub fn new() -> Self {
        let fft = rustfft::FftPlanner::new().plan_fft_forward(N_FFT);
        // Periodic Hann over the frame.
        let window = (0..FRAME).map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / FRAME as f64).cos()).collect();
        let bin = |hz: f64| (hz * N_FFT as f64 / SAMPLE_RATE as f64).round() as usize;
        Vad {
            fft,
            window,
            band: bin(BAND.0)..bin(BAND.1) + 1,
            pending: Vec::with_capacity(FRAME),
            recent: std::collections::VecDeque::with_capacity(FLOOR_FRAMES),
            run: 0,
            since_speech: usize::MAX,
            in_speech: false,
        }
    }

    /// Decisions for the whole frames completed by `samples` (16 kHz mono), in order.
    pub fn push(&mut self, samples: &[f32]) -> Vec<bool> {
        let mut out = Vec::with_capacity((self.pending.len() + samples.len()) / FRAME);
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == FRAME {
                let frame = std::mem::take(&mut self.pending);
                out.push(self.frame(&frame).0);
                self.pending = frame;
                self.pending.clear();
            }
        }
        out
    }

    /// Decide one whole frame.
    pub fn frame(&mut self, frame: &[f32]) -> (bool, FrameFeatures) {
        let features = self.features(frame);
        if self.recent.len() == FLOOR_FRAMES {
            self.recent.pop_front();
        }
        self.recent.push_back(features.level_db.max(MIN_LEVEL_DB - SNR_DB));
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        let rank = (FLOOR_RANK * sorted.len()).div_ceil(FLOOR_FRAMES).clamp(1, sorted.len()) - 1;
        let floor = *sorted.select_nth_unstable_by(rank, f64::total_cmp).1;
        let speech_like = features.level_db > floor + SNR_DB
            && features.level_db > MIN_LEVEL_DB
            && features.flatness < MAX_FLATNESS;
        self.run = if speech_like { self.run + 1 } else { 0 };
        if self.run >= ONSET {
            self.in_speech = true;
        }
        self.since_speech = if speech_like { 0 } else { self.since_speech.saturating_add(1) };
        if self.in_speech && self.since_speech > HANGOVER {
            self.in_speech = false;
        }
        (self.in_speech, FrameFeatures { floor_db: floor, ..features })
    }

    fn features(&self, frame: &[f32]) -> FrameFeatures {
        let mut buffer: Vec<Complex<f64>> =
            frame.iter().zip(&self.window).map(|(&x, &w)| Complex::new(x as f64 * w, 0.0)).collect();
        buffer.resize(N_FFT, Complex::new(0.0, 0.0));
        self.fft.process(&mut buffer);
        let power: Vec<f64> = buffer[self.band.clone()].iter().map(|c| c.norm_sqr() + 1e-20).collect();
        let n = power.len() as f64;
        let mean = power.iter().sum::<f64>() / n;
        let log_mean = power.iter().map(|p| p.ln()).sum::<f64>() / n;
        // Band power per sample (Hann's mean square is 3/8), in dB re a full-scale sine's 0.5.
        let per_sample = 2.0 * power.iter().sum::<f64>() / (FRAME as f64 * FRAME as f64 * 0.375);
        FrameFeatures {
            level_db: 10.0 * (per_sample / 0.5 + 1e-20).log10(),
            floor_db: 0.0,
            flatness: log_mean.exp() / mean,
        }
    }
}

/// Frame-level precision and recall of `predicted` against `labels` (speech = true).
pub fn precision_recall(predicted: &[bool], labels: &[bool]) -> (f64, f64) {
    let pairs = predicted.iter().zip(labels);
    let tp = pairs.clone().filter(|(p, l)| **p && **l).count() as f64;
    let predicted_speech = predicted.iter().filter(|&&p| p).count() as f64;
    let labelled_speech = labels.iter().take(predicted.len()).filter(|&&l| l).count() as f64;
    (tp / predicted_speech.max(1.0), tp / labelled_speech.max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, seconds: f64, amplitude: f64) -> Vec<f32> {
        (0..(seconds * SAMPLE_RATE as f64) as usize)
            .map(|i| (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / SAMPLE_RATE as f64).sin()) as f32)
            .collect()
    }

    /// A deterministic noise (xorshift), uniform in ±amplitude.
    fn noise(seconds: f64, amplitude: f32, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..(seconds * SAMPLE_RATE as f64) as usize)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * amplitude
            })
            .collect()
    }

    #[test]
    fn silence_and_steady_noise_are_not_speech_a_harmonic_burst_is() {
        let mut vad = Vad::new();
        assert!(vad.push(&vec![0.0; 16000]).iter().all(|&s| !s));
        let mut vad = Vad::new();
        assert!(vad.push(&noise(2.0, 0.05, 7)).iter().all(|&s| !s), "white noise");
        // A voiced-like burst: harmonics of 150 Hz over the noise, then noise again.
        let mut burst: Vec<f32> = noise(0.5, 0.05, 9);
        for h in 1..12 {
            for (b, t) in burst.iter_mut().zip(tone(150.0 * h as f64, 0.5, 0.3 / h as f64)) {
                *b += t;
            }
        }
        let decisions = vad.push(&burst);
        assert!(decisions.iter().filter(|&&s| s).count() >= decisions.len() - ONSET);
        let after = vad.push(&noise(1.0, 0.05, 11));
        assert!(after[..HANGOVER].iter().all(|&s| s), "hangover");
        assert!(after[HANGOVER + 1..].iter().all(|&s| !s), "ends after the hangover");
    }

    #[test]
    fn frames_are_decided_as_they_complete_whatever_the_chunking() {
        let audio: Vec<f32> = noise(1.0, 0.3, 3);
        let whole = Vad::new().push(&audio);
        let mut vad = Vad::new();
        let pieces: Vec<bool> = audio.chunks(77).flat_map(|c| vad.push(c)).collect();
        assert_eq!(whole, pieces);
        assert_eq!(whole.len(), 16000 / FRAME);
    }

    #[test]
    fn precision_and_recall_count_frames() {
        let (p, r) = precision_recall(&[true, true, false, false], &[true, false, true, false]);
        assert_eq!((p, r), (0.5, 0.5));
    }
}
