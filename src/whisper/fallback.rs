//! Long-form quality rules of openai/whisper's
//! [`transcribe()`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/transcribe.py):
//! its `decode_with_fallback` (decode a window at temperature 0; when the text is too repetitive —
//! zlib compression ratio above `compression_ratio_threshold` — or too improbable — average
//! log-probability below `logprob_threshold` — decode it again at the next temperature, unless
//! the window is judged silence), the no-speech skip (`no_speech_prob` above
//! `no_speech_threshold` and a log-probability that is not above `logprob_threshold`), and when
//! the previous text stops being a prompt (`condition_on_previous_text` off, or a window decoded
//! above temperature 0.5). The ratio is [`compression_ratio`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/utils.py).

use serde::Serialize;

use super::transcriber::TranscribeOptions;
use crate::error::{Error, Result};
use crate::generation::sampling::{Sampling, SplitMix64};

/// openai's default temperatures: 0, then five fallbacks.
pub const TEMPERATURES: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
pub const COMPRESSION_RATIO_THRESHOLD: f64 = 2.4;
pub const LOGPROB_THRESHOLD: f64 = -1.0;
pub const NO_SPEECH_THRESHOLD: f64 = 0.6;
/// The seed when none is given: results are reproducible by default.
pub const DEFAULT_SEED: u64 = 0;
/// Above this temperature a window's text is not used as the next window's prompt.
const PROMPT_RESET_TEMPERATURE: f64 = 0.5;
/// Most temperatures one window may be decoded at (each is a full decode).
pub const MAX_TEMPERATURES: usize = 16;
/// Highest temperature accepted; softmax(logits / T) is all but uniform long before.
pub const MAX_TEMPERATURE: f64 = 10.0;
/// zlib's default level (`zlib.compress` in Python).
const ZLIB_LEVEL: u8 = 6;

/// openai's `temperature`: one number or a list tried in turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Temperature {
    One(f64),
    Many(Vec<f64>),
}

impl<'de> serde::Deserialize<'de> for Temperature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Temperature;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a list of numbers")
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Temperature, E> {
                Ok(Temperature::One(v))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Temperature, E> {
                Ok(Temperature::One(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Temperature, E> {
                Ok(Temperature::One(v as f64))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Temperature, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<f64>()? {
                    // Bounded while reading; `Fallback::from_options` checks the values.
                    if values.len() > MAX_TEMPERATURES {
                        return Err(serde::de::Error::custom(format!("at most {} temperatures", MAX_TEMPERATURES)));
                    }
                    values.push(v);
                }
                Ok(Temperature::Many(values))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One decode of a window: openai's `DecodingResult` fields the rules read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub temperature: f64,
    /// Generated tokens, end-of-text excluded.
    pub tokens: Vec<u32>,
    pub avg_logprob: f64,
    pub compression_ratio: f64,
    pub no_speech_prob: f64,
}

/// What happened to one decoded window: where it starts, the previous-text tokens it was prompted
/// with, every decode in order (the last one is kept), and whether it was skipped as silence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowTrace {
    pub start: f64,
    pub prompt: Vec<u32>,
    pub attempts: Vec<Attempt>,
    pub skipped: bool,
}

/// The long-form settings of one transcription, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    pub temperatures: Vec<f64>,
    pub compression_ratio_threshold: f64,
    pub logprob_threshold: f64,
    pub no_speech_threshold: f64,
    pub condition_on_previous_text: bool,
    pub seed: u64,
}

impl Default for Fallback {
    fn default() -> Self {
        Fallback {
            temperatures: TEMPERATURES.to_vec(),
            compression_ratio_threshold: COMPRESSION_RATIO_THRESHOLD,
            logprob_threshold: LOGPROB_THRESHOLD,
            no_speech_threshold: NO_SPEECH_THRESHOLD,
            condition_on_previous_text: true,
            seed: DEFAULT_SEED,
        }
    }
}

fn check(name: &str, value: f64, ok: bool, allowed: &str) -> Result<f64> {
    if ok && value.is_finite() {
        Ok(value)
    } else {
        Err(Error::Input(format!("{name} {value} is out of range: {allowed}")))
    }
}

impl Fallback {
    /// openai's defaults where `options` name nothing; out-of-range values are input errors.
    pub fn from_options(options: &TranscribeOptions) -> Result<Self> {
        let defaults = Fallback::default();
        let temperatures = match &options.temperature {
            None => defaults.temperatures,
            Some(Temperature::One(t)) => vec![*t],
            Some(Temperature::Many(ts)) => ts.clone(),
        };
        if temperatures.is_empty() || temperatures.len() > MAX_TEMPERATURES {
            return Err(Error::Input(format!(
                "temperature lists {} values: give 1 to {MAX_TEMPERATURES}",
                temperatures.len()
            )));
        }
        for &t in &temperatures {
            check("temperature", t, (0.0..=MAX_TEMPERATURE).contains(&t), &format!("use 0 (greedy) to {MAX_TEMPERATURE}"))?;
        }
        let compression_ratio_threshold = match options.compression_ratio_threshold {
            None => defaults.compression_ratio_threshold,
            Some(v) => check("compression_ratio_threshold", v, v > 0.0, "use a number above 0 (openai: 2.4)")?,
        };
        let logprob_threshold = match options.logprob_threshold {
            None => defaults.logprob_threshold,
            Some(v) => check("logprob_threshold", v, v <= 0.0, "use a log-probability, at most 0 (openai: -1.0)")?,
        };
        let no_speech_threshold = match options.no_speech_threshold {
            None => defaults.no_speech_threshold,
            Some(v) => check("no_speech_threshold", v, (0.0..=1.0).contains(&v), "use a probability from 0 to 1 (openai: 0.6)")?,
        };
        Ok(Fallback {
            temperatures,
            compression_ratio_threshold,
            logprob_threshold,
            no_speech_threshold,
            condition_on_previous_text: options.condition_on_previous_text.unwrap_or(defaults.condition_on_previous_text),
            seed: options.seed.unwrap_or(defaults.seed),
        })
    }

    /// `decode_with_fallback`'s test: decode again when too repetitive or too improbable, but not
    /// when the window is silence (no-speech probability high and log-probability low).
    pub fn needs_fallback(&self, attempt: &Attempt) -> bool {
        let too_repetitive = attempt.compression_ratio > self.compression_ratio_threshold;
        let too_improbable = attempt.avg_logprob < self.logprob_threshold;
        let silence = attempt.no_speech_prob > self.no_speech_threshold && too_improbable;
        (too_repetitive || too_improbable) && !silence
    }

    /// `transcribe()`'s no-voice-activity check on the kept decode: skip the window when the
    /// no-speech probability is high, unless the log-probability is high enough.
    pub fn is_silence(&self, attempt: &Attempt) -> bool {
        attempt.no_speech_prob > self.no_speech_threshold && !(attempt.avg_logprob > self.logprob_threshold)
    }

    /// Whether the text so far stops being the prompt after a window kept at `temperature`.
    pub fn resets_prompt(&self, temperature: f64) -> bool {
        !self.condition_on_previous_text || temperature > PROMPT_RESET_TEMPERATURE
    }

    /// `decode_with_fallback`: `decode` the window at each temperature in turn (`None` = greedy,
    /// otherwise seeded sampling) until one passes; every attempt in order, the kept one last,
    /// with what the kept `decode` returned.
    pub fn decode<T>(&self, window: usize, mut decode: impl FnMut(Option<Sampling>) -> Result<(T, Attempt)>) -> Result<(T, Vec<Attempt>)> {
        let mut attempts = Vec::new();
        for (i, &temperature) in self.temperatures.iter().enumerate() {
            let sampling = (temperature > 0.0).then(|| Sampling { temperature, seed: self.attempt_seed(window, i) });
            let (kept, attempt) = decode(sampling)?;
            let retry = self.needs_fallback(&attempt) && i + 1 < self.temperatures.len();
            attempts.push(attempt);
            if !retry {
                return Ok((kept, attempts));
            }
        }
        // The loop returns at the last temperature; only an empty list gets here.
        Err(Error::Input("temperature lists no value: give 1 to 16".into()))
    }

    /// A seed of its own for each window and temperature, derived from the transcription's seed,
    /// so a window's draws do not depend on how many draws earlier windows made.
    fn attempt_seed(&self, window: usize, attempt: usize) -> u64 {
        SplitMix64::new(self.seed ^ ((window as u64) << 16 | attempt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
    }
}

/// openai's `compression_ratio`: UTF-8 bytes of `text` over their zlib-compressed size.
///
/// zlib (level 6) writes each block the smallest way of stored, fixed-Huffman and dynamic-Huffman;
/// miniz_oxide's default keeps to dynamic blocks, so the smaller of its default and its
/// fixed-Huffman output stands for zlib's. On window texts this gives zlib's size to the byte
/// (tests/whisper_longform.rs compares the ratios with openai's), except under ~40 bytes, where
/// zlib's fixed block beats miniz's stored one by 3 bytes and the ratio is below 1 either way.
pub fn compression_ratio(text: &str) -> f64 {
    let bytes = text.as_bytes();
    let dynamic = miniz_oxide::deflate::compress_to_vec_zlib(bytes, ZLIB_LEVEL).len();
    let compressed = dynamic.min(fixed_huffman_len(bytes).unwrap_or(dynamic));
    bytes.len() as f64 / compressed as f64
}

/// The zlib stream's length with fixed-Huffman blocks only (`None` if miniz_oxide failed).
fn fixed_huffman_len(bytes: &[u8]) -> Option<usize> {
    use miniz_oxide::deflate::core::{compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus};
    use miniz_oxide::deflate::core::CompressionStrategy;
    // zlib header (window bits > 0) and a fixed-Huffman strategy.
    let flags = create_comp_flags_from_zip_params(ZLIB_LEVEL as i32, 15, CompressionStrategy::Fixed as i32);
    let mut compressor = CompressorOxide::new(flags);
    // A fixed-Huffman code is at most 9 bits a byte; headers, adler-32 and block ends fit in 64.
    let mut out = vec![0u8; bytes.len() + bytes.len() / 8 + 64];
    let (status, _, written) = compress(&mut compressor, bytes, &mut out, TDEFLFlush::Finish);
    (status == TDEFLStatus::Done).then_some(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(temperature: f64, avg_logprob: f64, compression_ratio: f64, no_speech_prob: f64) -> Attempt {
        Attempt { temperature, tokens: Vec::new(), avg_logprob, compression_ratio, no_speech_prob }
    }

    #[test]
    fn compression_ratio_is_zlibs() {
        // Python: len(t) / len(zlib.compress(t)) with zlib 1.2.13.
        let phrase = " ask what you can do for your country.";
        // Too short to compress: zlib 38 → 43 bytes (fixed Huffman), miniz 38 → 49 (stored).
        assert!(compression_ratio(phrase) < 1.0, "{}", compression_ratio(phrase));
        // zlib: 304 bytes → 49; a repeating window is far above 2.4.
        assert_eq!(compression_ratio(&phrase.repeat(8)), 304.0 / 49.0);
        // Window texts of the long-form reference (zlib sizes from Python's zlib.compress).
        let text = "And so my fellow Americans ask not what your country can do for you ask what you can do for your country.";
        assert_eq!(compression_ratio(text), 105.0 / 77.0);
        let tail = "Ask what you can do for your country. ".repeat(6) + "Ask what you can do for your country.";
        assert_eq!(compression_ratio(&tail), 265.0 / 47.0);
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn repetitive_or_improbable_windows_fall_back_unless_silent() {
        let f = Fallback::default();
        assert!(!f.needs_fallback(&attempt(0.0, -0.3, 1.6, 0.01)), "a good window is kept");
        assert!(f.needs_fallback(&attempt(0.0, -0.3, 2.5, 0.01)), "too repetitive");
        assert!(f.needs_fallback(&attempt(0.0, -1.2, 1.6, 0.01)), "too improbable");
        assert!(!f.needs_fallback(&attempt(0.0, -1.2, 1.6, 0.9)), "silence: no fallback");
        // Repetition wins over a high no-speech probability when the text is probable.
        assert!(f.needs_fallback(&attempt(0.0, -0.3, 2.5, 0.9)));
        // Thresholds are strict, as openai compares them.
        assert!(!f.needs_fallback(&attempt(0.0, -1.0, 2.4, 0.6)));
    }

    #[test]
    fn silence_is_skipped_unless_the_text_is_probable() {
        let f = Fallback::default();
        assert!(f.is_silence(&attempt(0.0, -1.5, 1.0, 0.7)));
        assert!(f.is_silence(&attempt(0.0, -1.0, 1.0, 0.7)), "not above the threshold: skipped");
        assert!(!f.is_silence(&attempt(0.0, -0.5, 1.0, 0.7)), "probable text is kept");
        assert!(!f.is_silence(&attempt(0.0, -1.5, 1.0, 0.6)));
    }

    #[test]
    fn the_prompt_resets_above_temperature_half_or_without_conditioning() {
        let f = Fallback::default();
        assert!(!f.resets_prompt(0.0) && !f.resets_prompt(0.4) && !f.resets_prompt(0.5));
        assert!(f.resets_prompt(0.6) && f.resets_prompt(1.0));
        let unconditioned = Fallback { condition_on_previous_text: false, ..Fallback::default() };
        assert!(unconditioned.resets_prompt(0.0));
    }

    #[test]
    fn decode_walks_the_temperatures_until_a_window_passes() {
        let f = Fallback::default();
        // Repetitive at 0 and 0.2, fine at 0.4: three decodes, the third kept.
        let mut seen = Vec::new();
        let (kept, attempts) = f
            .decode(3, |sampling| {
                let t = sampling.map_or(0.0, |s| s.temperature);
                seen.push(sampling);
                let ratio = if t < 0.3 { 3.0 } else { 1.5 };
                Ok((t, attempt(t, -0.2, ratio, 0.0)))
            })
            .unwrap();
        assert_eq!(kept, 0.4);
        assert_eq!(attempts.iter().map(|a| a.temperature).collect::<Vec<_>>(), [0.0, 0.2, 0.4]);
        assert_eq!(seen[0], None, "temperature 0 is greedy");
        assert!(seen[1].unwrap().seed != seen[2].unwrap().seed, "each attempt draws its own numbers");
        // Nothing passes: every temperature is tried and the last decode is kept.
        let (kept, attempts) = f.decode(0, |s| Ok((s.map_or(0.0, |s| s.temperature), attempt(0.0, -2.0, 1.0, 0.0)))).unwrap();
        assert_eq!((kept, attempts.len()), (1.0, 6));
        // Seeds depend on the seed, the window and the attempt only.
        let seeds = |f: &Fallback, w| f.decode(w, |s| Ok((s.map(|s| s.seed), attempt(0.0, -0.1, 3.0, 0.0)))).unwrap().1.len();
        assert_eq!(seeds(&f, 0), 6);
        assert_eq!(f.attempt_seed(1, 2), Fallback::default().attempt_seed(1, 2));
        let none = Fallback { temperatures: Vec::new(), ..Fallback::default() };
        assert!(none.decode(0, |_| Ok(((), attempt(0.0, 0.0, 0.0, 0.0)))).is_err());
        assert_ne!(f.attempt_seed(1, 2), f.attempt_seed(2, 1));
        assert_ne!(f.attempt_seed(1, 2), Fallback { seed: 5, ..Fallback::default() }.attempt_seed(1, 2));
    }

    #[test]
    fn options_are_checked() {
        let bad = [
            TranscribeOptions { temperature: Some(Temperature::One(-0.1)), ..Default::default() },
            TranscribeOptions { temperature: Some(Temperature::One(f64::NAN)), ..Default::default() },
            TranscribeOptions { temperature: Some(Temperature::Many(vec![])), ..Default::default() },
            TranscribeOptions { temperature: Some(Temperature::Many(vec![0.0; 17])), ..Default::default() },
            TranscribeOptions { temperature: Some(Temperature::One(11.0)), ..Default::default() },
            TranscribeOptions { compression_ratio_threshold: Some(0.0), ..Default::default() },
            TranscribeOptions { logprob_threshold: Some(0.5), ..Default::default() },
            TranscribeOptions { logprob_threshold: Some(f64::NEG_INFINITY), ..Default::default() },
            TranscribeOptions { no_speech_threshold: Some(1.5), ..Default::default() },
        ];
        for options in bad {
            let err = Fallback::from_options(&options).unwrap_err();
            assert!(matches!(err, Error::Input(_)), "{options:?}: {err}");
        }
        let f = Fallback::from_options(&TranscribeOptions {
            temperature: Some(Temperature::Many(vec![0.0, 0.5])),
            condition_on_previous_text: Some(false),
            seed: Some(9),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((f.temperatures, f.condition_on_previous_text, f.seed), (vec![0.0, 0.5], false, 9));
        assert_eq!(Fallback::from_options(&TranscribeOptions::default()).unwrap(), Fallback::default());
    }
}
