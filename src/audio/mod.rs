//! Audio for speech models, in plain Rust (runs natively and in wasm): downmix interleaved PCM to
//! mono, resample to 16 kHz with a windowed-sinc (Kaiser) low-pass, and Whisper's log-mel
//! spectrogram (n_fft 400, hop 160, periodic Hann window, Slaney-scale/Slaney-normalised mel
//! filterbank built here, log10, clamp to max − 8, (x + 4) / 4), as transformers'
//! WhisperFeatureExtractor and openai/whisper compute it. Native builds also decode audio files
//! (`decode`: WAV, FLAC, MP3, OGG/Vorbis via symphonia).

#[cfg(not(target_arch = "wasm32"))]
pub mod decode;
pub mod resample;
pub mod resample_stream;
pub mod vad;

use std::sync::Arc;

use rustfft::num_complex::Complex;

use crate::error::{Error, Result};

pub use resample::resample;

/// Whisper's input rate.
pub const SAMPLE_RATE: u32 = 16_000;
pub const N_FFT: usize = 400;
pub const HOP_LENGTH: usize = 160;
/// 30 s windows.
pub const CHUNK_SECONDS: usize = 30;
pub const N_SAMPLES: usize = CHUNK_SECONDS * SAMPLE_RATE as usize;
/// Mel frames per 30 s window.
pub const N_FRAMES: usize = N_SAMPLES / HOP_LENGTH;

/// Sample rates accepted, in Hz.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=1_000_000;
/// Most channels a decoded file may have.
pub const MAX_CHANNELS: usize = 32;
/// Most interleaved samples one file may decode to: 2^29, 2 GiB as f32 (9.3 h of 16 kHz mono,
/// 1.5 h of 48 kHz stereo). A compressed file can claim any length; decoding stops with an error
/// here instead of growing until memory runs out.
pub const MAX_DECODED_SAMPLES: usize = 1 << 29;

/// Interleaved PCM as a caller hands it over: any rate, any channel count.
#[derive(Debug, Clone, Copy)]
pub struct Pcm<'a> {
    pub samples: &'a [f32],
    pub sample_rate: u32,
    pub channels: usize,
}

/// Check `pcm`, downmix it and resample it to 16 kHz mono.
pub fn to_mono_16k(pcm: Pcm) -> Result<Vec<f32>> {
    if pcm.channels == 0 {
        return Err(Error::Input("audio must have at least one channel".into()));
    }
    if pcm.sample_rate == 0 {
        return Err(Error::Input("sample rate must be positive".into()));
    }
    if !SAMPLE_RATES.contains(&pcm.sample_rate) {
        return Err(Error::Input(format!(
            "sample rate {} Hz is outside the supported 1 kHz..1 MHz",
            pcm.sample_rate
        )));
    }
    if pcm.samples.is_empty() {
        return Err(Error::Input("the audio is empty (no samples)".into()));
    }
    if !pcm.samples.len().is_multiple_of(pcm.channels) {
        return Err(Error::Input(format!(
            "{} samples is not a whole number of {}-channel frames",
            pcm.samples.len(),
            pcm.channels
        )));
    }
    if let Some(i) = pcm.samples.iter().position(|x| !x.is_finite()) {
        return Err(Error::Input(format!("sample {i} is not a finite number")));
    }
    let mono = downmix(pcm.samples, pcm.channels);
    Ok(resample(&mono, pcm.sample_rate, SAMPLE_RATE))
}

/// Average interleaved channels into one.
pub fn downmix(samples: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return samples.to_vec();
    }
    let scale = 1.0 / channels as f32;
    samples.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() * scale).collect()
}

/// A log-mel spectrogram, row-major (n_mels, n_frames).
#[derive(Debug, Clone)]
pub struct LogMel {
    pub n_mels: usize,
    pub n_frames: usize,
    pub data: Vec<f32>,
}

impl LogMel {
    pub fn get(&self, mel: usize, frame: usize) -> f32 {
        self.data[mel * self.n_frames + frame]
    }

    /// Frames `start..start + N_FRAMES` as (n_mels, N_FRAMES), zero-padded past the end
    /// (openai/whisper's `pad_or_trim` of a mel segment).
    pub fn window(&self, start: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.n_mels * N_FRAMES];
        let start = start.min(self.n_frames);
        let len = (self.n_frames - start).min(N_FRAMES);
        for m in 0..self.n_mels {
            let row = &self.data[m * self.n_frames + start..m * self.n_frames + start + len];
            out[m * N_FRAMES..m * N_FRAMES + len].copy_from_slice(row);
        }
        out
    }

    pub fn mean_std(&self) -> (f64, f64) {
        let n = self.data.len().max(1) as f64;
        let mean = self.data.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = self.data.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }
}

/// Slaney mel scale (librosa's default, `mel_scale="slaney"` in transformers).
fn hz_to_mel(hz: f64) -> f64 {
    let (min_log_hz, min_log_mel, logstep) = (1000.0, 15.0, 27.0 / 6.4f64.ln());
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() * logstep
    } else {
        3.0 * hz / 200.0
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let (min_log_hz, min_log_mel, logstep) = (1000.0, 15.0, 6.4f64.ln() / 27.0);
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        200.0 * mel / 3.0
    }
}

/// Triangular mel filters with Slaney area normalisation, as (n_mels, n_fft/2 + 1) row-major:
/// transformers' `mel_filter_bank(1 + n_fft//2, n_mels, 0, sr/2, sr, norm="slaney",
/// mel_scale="slaney")` transposed, = librosa.filters.mel(sr, n_fft, n_mels).
pub fn mel_filters(n_mels: usize, n_fft: usize, sample_rate: u32) -> Vec<f32> {
    let n_freqs = n_fft / 2 + 1;
    let max_hz = (sample_rate / 2) as f64;
    let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(max_hz));
    let filter_hz: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let fft_hz: Vec<f64> = (0..n_freqs).map(|k| max_hz * k as f64 / (n_freqs - 1) as f64).collect();
    let mut out = vec![0f32; n_mels * n_freqs];
    for m in 0..n_mels {
        let (lo, center, hi) = (filter_hz[m], filter_hz[m + 1], filter_hz[m + 2]);
        let enorm = 2.0 / (hi - lo);
        for (k, &f) in fft_hz.iter().enumerate() {
            let down = (f - lo) / (center - lo);
            let up = (hi - f) / (hi - center);
            out[m * n_freqs + k] = (down.min(up).max(0.0) * enorm) as f32;
        }
    }
    out
}

/// Index into a signal of length `n` with reflect padding (numpy/torch `reflect`, no edge repeat).
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let mut j = i.rem_euclid(period);
    if j >= n as isize {
        j = period - j;
    }
    j as usize
}

/// Precomputed pieces of the spectrogram for one mel size.
pub struct MelExtractor {
    n_mels: usize,
    filters: Vec<f32>,
    /// For each mel filter, the range of FFT bins where it is non-zero.
    spans: Vec<(usize, usize)>,
    window: Vec<f32>,
    fft: Arc<dyn rustfft::Fft<f32>>,
}

impl MelExtractor {
    pub fn new(n_mels: usize) -> Self {
        let filters = mel_filters(n_mels, N_FFT, SAMPLE_RATE);
        let n_freqs = N_FFT / 2 + 1;
        let spans = (0..n_mels)
            .map(|m| {
                let row = &filters[m * n_freqs..(m + 1) * n_freqs];
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(0, |i| i + 1);
                (first, last.max(first))
            })
            .collect();
        // Periodic Hann window (torch.hann_window(400), numpy hanning(401)[:-1]).
        let window = (0..N_FFT)
            .map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        let fft = rustfft::FftPlanner::new().plan_fft_forward(N_FFT);
        MelExtractor { n_mels, filters, spans, window, fft }
    }

    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Whisper's log-mel spectrogram of 16 kHz mono `samples` exactly as given (callers pad):
    /// centred STFT with reflect padding, the last frame dropped, so `len / 160` frames.
    pub fn log_mel(&self, samples: &[f32]) -> LogMel {
        self.log_mel_with_silence(samples, 0)
    }

    /// The spectrogram of `samples` followed by 30 s of silence, as openai/whisper's transcribe
    /// computes it: its first `N_FRAMES` frames equal WhisperFeatureExtractor's features for audio
    /// up to 30 s, and every window `seek..seek + N_FRAMES` with `seek < samples.len() / 160` is
    /// covered. Returns the spectrogram and the number of content frames.
    pub fn log_mel_padded(&self, samples: &[f32]) -> (LogMel, usize) {
        let mel = self.log_mel_with_silence(samples, N_SAMPLES);
        let content = mel.n_frames - N_FRAMES;
        (mel, content)
    }

    /// `log_mel` of `samples` followed by `silence` zeros, without copying the samples.
    fn log_mel_with_silence(&self, samples: &[f32], silence: usize) -> LogMel {
        let n_frames = (samples.len() + silence) / HOP_LENGTH;
        let mut data = vec![0f32; self.n_mels * n_frames];
        self.log_frames(samples, silence, 0..n_frames, n_frames, &mut data);
        let max = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        normalize(&mut data, max);
        LogMel { n_mels: self.n_mels, n_frames, data }
    }

    /// log10 mel power of frames `frames` of `samples` + `silence` zeros, written column-wise into
    /// `out` (n_mels rows of `stride` values, frame `t` at column `t - frames.start`).
    fn log_frames(&self, samples: &[f32], silence: usize, frames: std::ops::Range<usize>, stride: usize, out: &mut [f32]) {
        let len = samples.len();
        let n = len + silence;
        let n_freqs = N_FFT / 2 + 1;
        let half = (N_FFT / 2) as isize;
        let at = |i: usize| if i < len { samples[i] } else { 0.0 };
        let mut buf = vec![Complex::new(0f32, 0f32); N_FFT];
        let mut scratch = vec![Complex::new(0f32, 0f32); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0f32; n_freqs];
        let first = frames.start;
        for t in frames {
            let start = (t * HOP_LENGTH) as isize - half;
            for (i, c) in buf.iter_mut().enumerate() {
                let idx = start + i as isize;
                let x = if idx >= 0 && (idx as usize) < n { at(idx as usize) } else { at(reflect(idx, n)) };
                *c = Complex::new(x * self.window[i], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.norm_sqr();
            }
            for (m, &(lo, hi)) in self.spans.iter().enumerate() {
                let row = &self.filters[m * n_freqs..];
                let mut acc = 0f32;
                for k in lo..hi {
                    acc += row[k] * power[k];
                }
                out[m * stride + t - first] = acc.max(1e-10).log10();
            }
        }
    }

    /// Streaming form of `log_mel_padded` for long inputs, which never holds the whole
    /// spectrogram: `prepare` makes one pass for the global maximum (Whisper normalises by it),
    /// then `window` computes each 30 s window on demand, equal to `log_mel_padded(..).0.window(..)`.
    pub fn prepare<'a>(&'a self, samples: &'a [f32]) -> MelWindows<'a> {
        let n_frames = (samples.len() + N_SAMPLES) / HOP_LENGTH;
        // Frames past the audio are silence; a 30 s block of them is never louder than the first.
        let content_end = (samples.len() / HOP_LENGTH + N_FFT / HOP_LENGTH + 1).min(n_frames);
        let mut max = f32::NEG_INFINITY;
        let block = N_FRAMES;
        let mut buf = vec![0f32; self.n_mels * block];
        let mut t = 0;
        while t < content_end {
            let end = (t + block).min(content_end);
            self.log_frames(samples, N_SAMPLES, t..end, block, &mut buf);
            for m in 0..self.n_mels {
                for &x in &buf[m * block..m * block + (end - t)] {
                    max = max.max(x);
                }
            }
            t = end;
        }
        // The silent frames' value, as log_frames computes it.
        if content_end < n_frames {
            max = max.max(1e-10f32.log10());
        }
        MelWindows { extractor: self, samples, n_frames, max }
    }
}

/// Whisper's normalisation: clamp to max − 8, then (x + 4) / 4.
fn normalize(data: &mut [f32], max: f32) {
    let floor = max - 8.0;
    for x in data.iter_mut() {
        *x = (x.max(floor) + 4.0) / 4.0;
    }
}

/// 30 s windows of the spectrogram of some audio followed by 30 s of silence (see
/// `MelExtractor::prepare`).
pub struct MelWindows<'a> {
    extractor: &'a MelExtractor,
    samples: &'a [f32],
    n_frames: usize,
    max: f32,
}

impl MelWindows<'_> {
    /// Frames with audio in them (windows start before this).
    pub fn content_frames(&self) -> usize {
        self.n_frames - N_FRAMES
    }

    /// Frames `start..start + N_FRAMES`, (n_mels, N_FRAMES), zero past the end.
    pub fn window(&self, start: usize) -> Vec<f32> {
        let n_mels = self.extractor.n_mels;
        let mut out = vec![0f32; n_mels * N_FRAMES];
        let start = start.min(self.n_frames);
        let end = (start + N_FRAMES).min(self.n_frames);
        self.extractor.log_frames(self.samples, N_SAMPLES, start..end, N_FRAMES, &mut out);
        let used = end - start;
        for m in 0..n_mels {
            normalize(&mut out[m * N_FRAMES..m * N_FRAMES + used], self.max);
        }
        out
    }

    /// openai/whisper `transcribe()`'s `pad_or_trim(mel[:, start:start + len], N_FRAMES)`: frames
    /// `start..start + len`, then zeros (not the spectrogram of the silence after the audio).
    pub fn segment(&self, start: usize, len: usize) -> Vec<f32> {
        let mut out = self.window(start);
        let len = len.min(N_FRAMES);
        for row in out.chunks_exact_mut(N_FRAMES) {
            row[len..].fill(0.0);
        }
        out
    }
}

/// WhisperFeatureExtractor's input features for ≤ 30 s of 16 kHz audio: padded (or trimmed) to
/// 30 s, (n_mels, 3000).
pub fn whisper_features(samples: &[f32], n_mels: usize) -> LogMel {
    let mut padded = samples[..samples.len().min(N_SAMPLES)].to_vec();
    padded.resize(N_SAMPLES, 0.0);
    MelExtractor::new(n_mels).log_mel(&padded)
}

/// Parse a 16-bit PCM / 32-bit float WAV file from memory (mono or interleaved), without
/// symphonia, so tests and wasm callers can read the fixtures. Returns (samples, rate, channels).
pub fn read_wav(bytes: &[u8]) -> Result<(Vec<f32>, u32, usize)> {
    let bad = |m: &str| Error::Input(format!("not a readable WAV file: {m}"));
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("missing RIFF/WAVE header"));
    }
    let (mut pos, mut format) = (12usize, None);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..(pos + 8).saturating_add(size).min(bytes.len())];
        if id == b"fmt " {
            if body.len() < 16 {
                return Err(bad("short fmt chunk"));
            }
            let tag = u16::from_le_bytes([body[0], body[1]]);
            let channels = u16::from_le_bytes([body[2], body[3]]) as usize;
            let rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            let bits = u16::from_le_bytes([body[14], body[15]]);
            format = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or_else(|| bad("data before fmt"))?;
            if channels == 0 {
                return Err(bad("zero channels"));
            }
            let samples: Vec<f32> = match (tag, bits) {
                (1, 16) | (0xFFFE, 16) => {
                    body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect()
                }
                (3, 32) | (0xFFFE, 32) => {
                    body.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
                }
                _ => return Err(bad(&format!("unsupported encoding (format {tag}, {bits} bits)"))),
            };
            let whole = samples.len() / channels * channels;
            return Ok((samples[..whole].to_vec(), rate, channels));
        }
        pos = pos.saturating_add(8).saturating_add(size).saturating_add(size & 1);
    }
    Err(bad("no data chunk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_round_trips() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
    }

    #[test]
    fn filters_are_slaney_triangles() {
        let f = mel_filters(80, 400, 16000);
        let n_freqs = 201;
        // Slaney normalisation gives each triangle unit area in Hz (bins are 40 Hz apart); the
        // low filters are narrower than a bin, so check the wide ones.
        for m in 60..80 {
            let area: f32 = f[m * n_freqs..(m + 1) * n_freqs].iter().sum::<f32>() * 40.0;
            assert!((area - 1.0).abs() < 0.05, "filter {m}: area {area}");
        }
        // Each filter is non-negative and non-zero somewhere; 128 bins work too.
        for m in 0..80 {
            let row = &f[m * n_freqs..(m + 1) * n_freqs];
            assert!(row.iter().all(|&w| w >= 0.0) && row.iter().any(|&w| w > 0.0));
        }
        let f128 = mel_filters(128, 400, 16000);
        assert_eq!(f128.len(), 128 * 201);
    }

    #[test]
    fn a_segment_is_zero_past_its_frames() {
        // 40 s of a tone: the window at 20 s has 20 s of it, then the padding's silence frames; a
        // segment of 1000 frames keeps those and zeros the rest.
        let samples: Vec<f32> = (0..SAMPLE_RATE as usize * 40).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        let extractor = MelExtractor::new(80);
        let mel = extractor.prepare(&samples);
        let (window, segment) = (mel.window(2000), mel.segment(2000, 1000));
        for (w, s) in window.chunks(N_FRAMES).zip(segment.chunks(N_FRAMES)) {
            assert_eq!(w[..1000], s[..1000]);
            assert!(s[1000..].iter().all(|&x| x == 0.0));
            assert!(w[1000..].iter().any(|&x| x != 0.0), "the window has the spectrogram's frames there");
        }
        assert_eq!(mel.segment(0, N_FRAMES), mel.window(0));
    }

    #[test]
    fn reflect_matches_numpy() {
        // np.pad([0,1,2,3], 3, mode="reflect") = [3,2,1,0,1,2,3,2,1,0]
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }

    #[test]
    fn silence_and_short_inputs_give_defined_spectrograms() {
        let mel = whisper_features(&[], 80);
        assert_eq!((mel.n_mels, mel.n_frames), (80, 3000));
        // All-zero input: everything at the floor, (log10(1e-10) + 4) / 4 = -1.5.
        assert!(mel.data.iter().all(|&x| (x + 1.5).abs() < 1e-6));
        let mel = whisper_features(&[0.5], 128);
        assert_eq!((mel.n_mels, mel.n_frames), (128, 3000));
        assert!(mel.data.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn a_segment_is_its_frames_then_zeros() {
        let tone: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
        let extractor = MelExtractor::new(80);
        let windows = extractor.prepare(&tone);
        let (window, segment) = (windows.window(0), windows.segment(0, 100));
        for (w, s) in window.chunks_exact(N_FRAMES).zip(segment.chunks_exact(N_FRAMES)) {
            assert_eq!(&w[..100], &s[..100]);
            assert!(s[100..].iter().all(|&x| x == 0.0));
            // The window's silence after the tone is not zero (it is the spectrogram's floor).
            assert!(w[200..].iter().all(|&x| x != 0.0));
        }
        assert_eq!(windows.segment(0, 5000), window);
    }

    #[test]
    fn sine_peaks_in_the_right_mel_bin() {
        let tone: Vec<f32> =
            (0..16000).map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin()).collect();
        let mel = whisper_features(&tone, 80);
        let frame = 50;
        let best = (0..80).max_by(|&a, &b| mel.get(a, frame).total_cmp(&mel.get(b, frame))).unwrap();
        // 1 kHz is mel 15 on the Slaney scale; bin centres are spaced (mel(8000)-0)/81 apart.
        let expected = (hz_to_mel(1000.0) / (hz_to_mel(8000.0) / 81.0)).round() as usize - 1;
        assert!((best as isize - expected as isize).abs() <= 1, "peak at {best}, expected {expected}");
    }

    #[test]
    fn downmix_averages_channels() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(downmix(&[1.0, 2.0], 1), vec![1.0, 2.0]);
    }

    #[test]
    fn invalid_pcm_is_an_error() {
        let pcm = |samples: &'static [f32], sample_rate, channels| Pcm { samples, sample_rate, channels };
        for bad in [
            pcm(&[], 16000, 1),
            pcm(&[0.0; 4], 0, 1),
            pcm(&[0.0; 4], 16000, 0),
            pcm(&[0.0; 3], 16000, 2),
            pcm(&[0.0, f32::NAN], 16000, 1),
            pcm(&[0.0; 4], 5_000_000, 1),
        ] {
            assert!(matches!(to_mono_16k(bad), Err(Error::Input(_))));
        }
        assert_eq!(to_mono_16k(pcm(&[0.25; 8], 16000, 2)).unwrap(), vec![0.25; 4]);
    }

    #[test]
    fn wav_reader_rejects_garbage() {
        assert!(read_wav(b"").is_err());
        assert!(read_wav(b"RIFF\0\0\0\0WAVEjunk").is_err());
        assert!(read_wav(&[0xff; 100]).is_err());
    }
}
