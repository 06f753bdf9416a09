//! Live transcription: audio arrives as it is recorded and text comes back as
//! `{committed, tentative}`, where committed text never changes.
//!
//! The policy is LocalAgreement-2 (Macháček, Dabre, Bojar 2023, "Turning Whisper into Real-Time
//! Transcription System", as in ufal/whisper_streaming): the current buffer (the audio since the
//! last cut, at most 30 s, one Whisper window) is decoded again as audio arrives; each decode's
//! words are aligned after the words already committed from this buffer (by edit distance: a
//! decode may re-spell what was committed), and the longest prefix of the remaining words that
//! the previous decode also had is committed. The rest of the latest decode is tentative.
//!
//! When to decode: every `STEP_SECONDS` of audio while someone speaks, and at once when a pause
//! (`PAUSE_SECONDS` of silence from the voice activity detector, `audio::vad`) ends a phrase the
//! last decode did not hear the end of. A pause commits the whole decode that heard the phrase's
//! end, without waiting for a second one to agree (as whisper_streaming's voice activity
//! controller ends a stretch of speech): the delay from the end of a phrase to its text is the
//! pause plus one decode. While words are still tentative, one more decode `CONFIRM_SECONDS`
//! after the last; otherwise silence is never decoded. Nothing is committed while the buffer is
//! shorter than `MIN_CONTEXT_SECONDS` (unless the speaker stopped for `LONG_PAUSE_SECONDS`):
//! Whisper guesses worse on a few words alone, and later decodes of the longer buffer correct it.
//!
//! The buffer keeps the audio of committed words as context and is cut at a pause once it is
//! longer than `CUT_SECONDS` and all of it is committed; a buffer that grows past
//! `MAX_BUFFER_SECONDS` without pauses is cut after its last complete segment but one (decoded
//! with timestamps, `segmenter`). The text of what was cut is the prompt of later decodes
//! (openai's `condition_on_previous_text`), unless turned off.
//!
//! Each decode is the transcriber's (`SpeechRecognizer::decode_buffer`): the same window decoding,
//! logit rules and no-speech test as offline transcription.

use serde::Serialize;

use super::transcriber::{Chunk, SpeechRecognizer, SpeechTask};
use crate::audio::resample_stream::StreamResampler;
use crate::audio::vad::{Vad, FRAME};
use crate::audio::{SAMPLE_RATE, SAMPLE_RATES};
use crate::error::{Error, Result};

/// Decode again after this much new audio while someone speaks.
const STEP_SECONDS: f64 = 1.0;
/// Silence after speech that ends a phrase (after the detector's 120 ms hangover).
const PAUSE_SECONDS: f64 = 0.4;
/// A decode that heard up to this close to the end of the detected speech heard the phrase: the
/// last frames of the detector's speech are its hangover.
const HEARD_TOLERANCE_SECONDS: f64 = 0.12;
/// Decode once more this long after a decode that left words tentative, when no speech came.
const CONFIRM_SECONDS: f64 = 0.5;
/// Commit nothing from a buffer shorter than this…
const MIN_CONTEXT_SECONDS: f64 = 5.0;
/// …unless the speaker has been silent this long.
const LONG_PAUSE_SECONDS: f64 = 1.5;
/// A buffer longer than this is cut at the next pause once all of it is committed.
const CUT_SECONDS: f64 = 10.0;
/// Audio kept before the first speech of a buffer (the VAD's onset comes a little late).
const PRE_ROLL_SECONDS: f64 = 0.3;
/// Past this, a buffer without pauses is cut at a segment boundary (Whisper sees 30 s at most).
const MAX_BUFFER_SECONDS: f64 = 24.0;
/// Audio taken between two looks at the buffer: 24 + 5 < 30.
const MAX_PIECE_SECONDS: f64 = 5.0;
/// Most samples one `push` may bring (60 s at the highest supported rate): a microphone sends
/// pieces of milliseconds; this bounds what one call allocates.
const MAX_PUSH_SAMPLES: usize = 60 * 1_000_000;

/// Options of a live session (transformers' names, as `TranscribeOptions`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveOptions {
    /// Spoken language as a code or English name; `None`: detected from the first phrase
    /// (multilingual models) or English.
    pub language: Option<String>,
    pub task: SpeechTask,
    /// Prompt each decode with the text committed before it.
    pub condition_on_previous_text: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions { language: None, task: SpeechTask::Transcribe, condition_on_previous_text: true }
    }
}

/// What a `push` returns: text that will not change, and the latest guess at what follows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveUpdate {
    pub committed: String,
    pub tentative: String,
    /// Seconds of audio received so far.
    pub received: f64,
    /// Whether this push decoded the buffer (else the text is as before).
    pub decoded: bool,
}

/// The result of `finish`: the committed text and one chunk per phrase, as offline transcription.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveResult {
    pub text: String,
    pub chunks: Vec<Chunk>,
    pub language: Option<String>,
}

/// A word of a decode, and the end (seconds from the buffer's start) of its segment.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    text: String,
    segment_end: f64,
}

pub struct LiveSession {
    options: LiveOptions,
    /// Resolved language (`None` until detected).
    language: Option<String>,
    resampler: Option<StreamResampler>,
    vad: Vad,
    /// 16 kHz audio from sample `buffer_start` on.
    buffer: Vec<f32>,
    buffer_start: usize,
    /// 16 kHz samples received (the VAD has decided all whole frames of them).
    received: usize,
    /// End (sample) of the last speech frame, if any speech was heard in the buffer.
    speech_end: Option<usize>,
    /// Where the last decode's audio ended (sample), and whether it heard no new speech (a
    /// confirmation).
    decoded_until: usize,
    confirmed: bool,
    /// Words of the buffer committed so far.
    buffer_words: Vec<String>,
    /// The last decode's words after those: the tentative text.
    hypothesis: Vec<Word>,
    committed: Vec<String>,
    /// Committed words of the current phrase start at this index of `committed`.
    phrase_start: usize,
    chunks: Vec<Chunk>,
    /// Text tokens of the phrases cut so far (the last `MAX_PREVIOUS`): the prompt.
    previous: Vec<u32>,
    /// The last decode's segments: their end (seconds from the buffer's start) and text tokens.
    segments: Vec<(f64, Vec<u32>)>,
}

/// Prompt tokens kept (the transcriber uses at most a quarter of the text context of them).
const MAX_PREVIOUS: usize = 224;

fn seconds(samples: usize) -> f64 {
    samples as f64 / SAMPLE_RATE as f64
}

fn samples(seconds: f64) -> usize {
    (seconds * SAMPLE_RATE as f64) as usize
}

/// Words compare without case and punctuation: a decode that only adds a comma agrees.
fn same_word(a: &str, b: &str) -> bool {
    let key = |w: &str| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').flat_map(char::to_lowercase).collect::<String>();
    key(a) == key(b)
}

impl LiveSession {
    /// A session for `recognizer`; the options are checked against it now.
    pub fn new(recognizer: &SpeechRecognizer, options: LiveOptions) -> Result<Self> {
        let check = super::transcriber::TranscribeOptions { language: options.language.clone(), task: options.task, ..Default::default() };
        let language = recognizer.resolve_language(&check)?;
        Ok(LiveSession {
            options,
            language,
            resampler: None,
            vad: Vad::new(),
            buffer: Vec::new(),
            buffer_start: 0,
            received: 0,
            speech_end: None,
            decoded_until: 0,
            confirmed: false,
            buffer_words: Vec::new(),
            hypothesis: Vec::new(),
            committed: Vec::new(),
            phrase_start: 0,
            chunks: Vec::new(),
            previous: Vec::new(),
            segments: Vec::new(),
        })
    }

    /// Take `samples` (mono, at `sample_rate`; the rate must stay the same for a session),
    /// decode if there is new speech to decode, and return the text so far.
    pub fn push(&mut self, recognizer: &SpeechRecognizer, pcm: &[f32], sample_rate: u32) -> Result<LiveUpdate> {
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(Error::Input(format!("sample rate {sample_rate} Hz is outside the supported 1 kHz..1 MHz")));
        }
        if pcm.len() > MAX_PUSH_SAMPLES {
            return Err(Error::Input(format!(
                "{} samples in one push: at most {MAX_PUSH_SAMPLES} (push audio as it is recorded)",
                pcm.len()
            )));
        }
        if let Some(i) = pcm.iter().position(|x| !x.is_finite()) {
            return Err(Error::Input(format!("sample {i} is not a finite number")));
        }
        let resampler = self.resampler.get_or_insert_with(|| StreamResampler::new(sample_rate, SAMPLE_RATE));
        if resampler.input_rate() != sample_rate {
            return Err(Error::Input(format!(
                "sample rate {sample_rate} Hz: this live session takes {} Hz (start a new session for another rate)",
                resampler.input_rate()
            )));
        }
        let audio = resampler.push(pcm);
        // A long push is taken `MAX_PIECE_SECONDS` at a time, so that a buffer cut at
        // `MAX_BUFFER_SECONDS` stays within one 30 s window; what arrived during a slow decode
        // (shorter) is decoded at once, so a slow machine decodes less often rather than fall
        // behind.
        let mut decoded = false;
        for piece in audio.chunks(samples(MAX_PIECE_SECONDS)) {
            self.take(piece);
            decoded |= self.advance(recognizer, false)?;
        }
        Ok(self.update(decoded))
    }

    /// End the session: decode what is left and commit it all.
    pub fn finish(&mut self, recognizer: &SpeechRecognizer) -> Result<LiveResult> {
        if let Some(resampler) = &mut self.resampler {
            let rest = resampler.finish();
            self.take(&rest);
        }
        self.advance(recognizer, true)?;
        Ok(LiveResult { text: self.committed.join(" "), chunks: self.chunks.clone(), language: self.language.clone() })
    }

    fn update(&self, decoded: bool) -> LiveUpdate {
        LiveUpdate {
            committed: self.committed.join(" "),
            tentative: self.hypothesis
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            received: seconds(self.received),
            decoded,
        }
    }

    /// Append 16 kHz audio and let the VAD judge its frames.
    fn take(&mut self, audio: &[f32]) {
        let first_frame = self.received / FRAME;
        for (i, speech) in self.vad.push(audio).into_iter().enumerate() {
            if speech {
                self.speech_end = Some((first_frame + i + 1) * FRAME);
            }
        }
        self.buffer.extend_from_slice(audio);
        self.received += audio.len();
    }

    /// Decide what to do with the buffer now; returns whether it was decoded.
    fn advance(&mut self, recognizer: &SpeechRecognizer, finishing: bool) -> Result<bool> {
        let Some(speech_end) = self.speech_end.filter(|&end| end > self.buffer_start) else {
            // Nothing said since the last cut: keep only the pre-roll.
            self.cut_at(self.received.saturating_sub(samples(PRE_ROLL_SECONDS)));
            return Ok(false);
        };
        let new_speech = speech_end > self.decoded_until + samples(HEARD_TOLERANCE_SECONDS);
        let silence = self.received - speech_end;
        if finishing {
            if new_speech {
                self.decode(recognizer)?;
            }
            self.commit(self.hypothesis.len());
            self.end_phrase(None);
            return Ok(new_speech);
        }
        let since = self.received - self.decoded_until;
        let due = if new_speech {
            silence >= samples(PAUSE_SECONDS) || since >= samples(STEP_SECONDS)
        } else {
            !self.confirmed && !self.hypothesis.is_empty() && since >= samples(CONFIRM_SECONDS)
        };
        let paused = silence >= samples(PAUSE_SECONDS);
        let context = seconds(self.buffer.len()) >= MIN_CONTEXT_SECONDS || silence >= samples(LONG_PAUSE_SECONDS);
        if due {
            let previous = self.decode(recognizer)?;
            self.confirmed = !new_speech;
            if context && paused {
                // The phrase is over and this decode heard all of it: nothing will change it but
                // more context, so it is committed now (whisper_streaming's voice activity
                // controller does the same at the end of speech).
                self.commit(self.hypothesis.len());
            } else if context {
                let agreed = previous.iter().zip(&self.hypothesis).take_while(|(a, b)| same_word(&a.text, &b.text)).count();
                self.commit(agreed);
            }
        } else if context && paused && !new_speech {
            // The last decode already heard the phrase's end.
            self.commit(self.hypothesis.len());
        }
        if paused && self.hypothesis.is_empty() && seconds(self.buffer.len()) > CUT_SECONDS {
            self.end_phrase(None);
            self.cut_at(self.received.saturating_sub(samples(PRE_ROLL_SECONDS)).max(speech_end));
        } else if seconds(self.buffer.len()) > MAX_BUFFER_SECONDS {
            self.cut_long_buffer();
        }
        Ok(due)
    }

    /// Decode the buffer; its words after those committed become the hypothesis. Returns the
    /// previous hypothesis.
    fn decode(&mut self, recognizer: &SpeechRecognizer) -> Result<Vec<Word>> {
        let previous: &[u32] = if self.options.condition_on_previous_text { &self.previous } else { &[] };
        let (language, tokens, segments) =
            recognizer.decode_buffer(&self.buffer, self.language.as_deref(), self.options.task, previous)?;
        self.language = Some(language);
        let mut words = Vec::new();
        self.segments.clear();
        for segment in &segments {
            let piece = &tokens[segment.tokens.clone()];
            self.segments.push((segment.end, piece.iter().copied().filter(|&t| t < recognizer.special_tokens().eot).collect()));
            let text = recognizer.decode_text(piece)?;
            words.extend(text.split_whitespace().map(|w| Word { text: w.to_string(), segment_end: segment.end }));
        }
        let skip = aligned_prefix(&self.buffer_words, &words);
        words.drain(..skip);
        self.decoded_until = self.received;
        Ok(std::mem::replace(&mut self.hypothesis, words))
    }

    /// Commit the hypothesis' first `words` words (committed text only grows).
    fn commit(&mut self, words: usize) {
        let words = words.min(self.hypothesis.len());
        for word in self.hypothesis.drain(..words) {
            self.committed.push(word.text.clone());
            self.buffer_words.push(word.text);
        }
    }

    /// Close the phrase of the committed words so far into a chunk ending at `end` (seconds from
    /// the buffer's start; `None`: the last speech heard), and remember its text as the prompt.
    fn end_phrase(&mut self, end: Option<f64>) {
        if self.committed.len() > self.phrase_start {
            let text = self.committed[self.phrase_start..].join(" ");
            let start = seconds(self.buffer_start);
            let end = match end {
                Some(e) => start + e,
                None => seconds(self.speech_end.unwrap_or(self.received)),
            };
            self.chunks.push(Chunk { timestamp: [round2(start), round2(end.max(start))], text: format!(" {text}") });
            self.phrase_start = self.committed.len();
        }
        let limit = end.unwrap_or(f64::INFINITY);
        for (_, tokens) in self.segments.iter().filter(|(segment_end, _)| *segment_end <= limit) {
            self.previous.extend(tokens);
        }
        self.segments.clear();
        self.previous.drain(..self.previous.len().saturating_sub(MAX_PREVIOUS));
    }

    /// Drop the buffer's audio before absolute sample `at`, and the words it held.
    fn cut_at(&mut self, at: usize) {
        let drop = at.saturating_sub(self.buffer_start).min(self.buffer.len());
        self.buffer.drain(..drop);
        self.buffer_start += drop;
        self.hypothesis.clear();
        self.buffer_words.clear();
        self.decoded_until = self.decoded_until.max(self.buffer_start);
    }

    /// A buffer without pauses that grew too long: cut after the last complete segment but one
    /// (the last may be cut by the buffer's end), committing its words; with a single segment, all
    /// of it.
    fn cut_long_buffer(&mut self) {
        let ends: Vec<f64> = {
            let mut ends: Vec<f64> = self.hypothesis.iter().map(|w| w.segment_end).collect();
            ends.dedup();
            ends
        };
        let cut_end = if ends.len() >= 2 { ends[ends.len() - 2] } else { seconds(self.buffer.len()) };
        let words = self.hypothesis.iter().take_while(|w| w.segment_end <= cut_end).count();
        self.commit(words);
        self.end_phrase(Some(cut_end));
        self.cut_at(self.buffer_start + samples(cut_end));
    }
}

/// How many of `words` re-transcribe `committed` (the committed words of the same audio): the
/// prefix length with the least word edit distance to them (the longer one on ties, so a word
/// that was committed is not offered again).
fn aligned_prefix(committed: &[String], words: &[Word]) -> usize {
    if committed.is_empty() {
        return 0;
    }
    // row[j]: edit distance of committed[..i] and words[..j].
    let mut row: Vec<usize> = (0..=words.len()).collect();
    for (i, c) in committed.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for j in 1..=words.len() {
            let next = (row[j] + 1).min(row[j - 1] + 1).min(diagonal + usize::from(!same_word(c, &words[j - 1].text)));
            diagonal = row[j];
            row[j] = next;
        }
    }
    (0..=words.len()).rev().min_by_key(|&j| row[j]).unwrap_or(0)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Word> {
        text.split_whitespace().map(|w| Word { text: w.into(), segment_end: 0.0 }).collect()
    }

    fn strings(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn words_agree_without_case_and_punctuation() {
        assert!(same_word("country,", "Country."));
        assert!(!same_word("America", "Americans"));
    }

    #[test]
    fn a_decode_is_aligned_after_the_committed_words_even_when_it_respells_them() {
        let committed = strings("And so am I fellow America.");
        // The same audio decoded with more context: one word fewer, then new words.
        assert_eq!(aligned_prefix(&committed, &words("And so my fellow Americans, ask not what")), 5);
        assert_eq!(aligned_prefix(&committed, &words("And so am I fellow America. Ask")), 6);
        assert_eq!(aligned_prefix(&[], &words("ask not")), 0);
        // A decode that lost everything: nothing to skip.
        assert_eq!(aligned_prefix(&committed, &[]), 0);
    }
}
