//! Word timestamps, following openai/whisper's
//! [timing.py](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/timing.py)
//! and the word splitting of its
//! [tokenizer.py](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/tokenizer.py):
//! the decoder reads the window's text once more in one pass, the cross-attention weights of the
//! alignment heads (`alignment`) say which audio frames each token looked at, and dynamic time
//! warping over them gives each token a time; words take the times of their first tokens.

use candle_core::Tensor;

use super::model::Whisper;
use crate::error::Result;
use crate::generation::math;
use crate::models::attention::Decoder;

/// openai's `median_filter` width in `find_alignment`.
pub const MEDFILT_WIDTH: usize = 7;
/// Decoder time steps per second: one encoder position is 2 mel frames of 10 ms.
const TOKENS_PER_SECOND: f64 = 50.0;
/// openai's `transcribe()` defaults: punctuation joined to the word after / before it.
pub const PREPEND_PUNCTUATIONS: &str = "\"'“¿([{-";
pub const APPEND_PUNCTUATIONS: &str = "\"'.。,，!！?？:：”)]}、";
/// Python's `string.punctuation`.
const ASCII_PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
/// Languages written without spaces between words: split where tokens end a Unicode character.
const NO_SPACE_LANGUAGES: [&str; 6] = ["zh", "ja", "th", "lo", "my", "yue"];

/// `WordTiming`: a word (with its leading space), its tokens, start and end in seconds from the
/// window's start.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTiming {
    pub word: String,
    pub tokens: Vec<u32>,
    pub start: f64,
    pub end: f64,
}

/// A timed word in the output, seconds from the start of the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
}

/// One segment of a window for `add_word_timestamps`: its text tokens and its start and end in
/// seconds from the start of the audio (updated from its words, as openai does).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentWords {
    pub text_tokens: Vec<u32>,
    pub start: f64,
    pub end: f64,
    pub words: Vec<Word>,
}

/// `Tokenizer.split_to_word_tokens`: words and their tokens. `decode` gives the text of tokens
/// (special ones as anything, e.g. nothing), invalid UTF-8 as U+FFFD.
pub fn split_to_word_tokens(
    tokens: &[u32],
    eot: u32,
    language: &str,
    decode: &dyn Fn(&[u32]) -> Result<String>,
) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    if NO_SPACE_LANGUAGES.contains(&language) {
        return split_tokens_on_unicode(tokens, decode);
    }
    split_tokens_on_spaces(tokens, eot, decode)
}

/// `split_tokens_on_unicode`: cut wherever the tokens so far decode to whole characters (or to a
/// U+FFFD that the whole text has too).
fn split_tokens_on_unicode(tokens: &[u32], decode: &dyn Fn(&[u32]) -> Result<String>) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    const REPLACEMENT: char = '\u{FFFD}';
    let full: Vec<char> = decode(tokens)?.chars().collect();
    let (mut words, mut word_tokens, mut current) = (Vec::new(), Vec::new(), Vec::new());
    let mut offset = 0;
    for &token in tokens {
        current.push(token);
        let decoded = decode(&current)?;
        let complete = match decoded.chars().position(|c| c == REPLACEMENT) {
            None => true,
            Some(at) => full.get(offset + at) == Some(&REPLACEMENT),
        };
        if complete {
            offset += decoded.chars().count();
            words.push(decoded);
            word_tokens.push(std::mem::take(&mut current));
        }
    }
    Ok((words, word_tokens))
}

/// `split_tokens_on_spaces`: subwords join the word before them unless they start with a space,
/// are punctuation, or are special tokens.
fn split_tokens_on_spaces(tokens: &[u32], eot: u32, decode: &dyn Fn(&[u32]) -> Result<String>) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    let (subwords, subword_tokens) = split_tokens_on_unicode(tokens, decode)?;
    let (mut words, mut word_tokens): (Vec<String>, Vec<Vec<u32>>) = (Vec::new(), Vec::new());
    for (subword, tokens) in subwords.into_iter().zip(subword_tokens) {
        let special = tokens[0] >= eot;
        let with_space = subword.starts_with(' ');
        // Python's `in` on strings: a substring test ("" is in every string).
        let punctuation = ASCII_PUNCTUATION.contains(subword.trim());
        match (words.last_mut(), word_tokens.last_mut()) {
            (Some(word), Some(last)) if !(special || with_space || punctuation) => {
                word.push_str(&subword);
                last.extend(tokens);
            }
            _ => {
                words.push(subword);
                word_tokens.push(tokens);
            }
        }
    }
    Ok((words, word_tokens))
}

/// What word timing needs besides the audio: the model and its alignment heads, the window's
/// decoding prompt without timestamps (openai's `sot_sequence` + `<|notimestamps|>`), the
/// language (how words are split) and the vocabulary.
pub struct Aligner<'a> {
    pub model: &'a Whisper,
    pub heads: &'a [(usize, usize)],
    pub prompt: &'a [u32],
    pub eot: u32,
    pub language: &'a str,
    /// Text of token ids (special ones give nothing), invalid UTF-8 as U+FFFD.
    pub decode: &'a dyn Fn(&[u32]) -> Result<String>,
}

impl Aligner<'_> {
    /// `add_word_timestamps` for one window: the words of `segments` (times from the start of
    /// the audio; the window starts at `time_offset` and holds `num_frames` mel frames of audio).
    /// Returns the new `last_speech_timestamp`.
    pub fn add_word_timestamps(
        &self,
        features: &Tensor,
        segments: &mut [SegmentWords],
        num_frames: usize,
        time_offset: f64,
        last_speech_timestamp: f64,
    ) -> Result<f64> {
        let text_tokens: Vec<u32> = segments.iter().flat_map(|s| s.text_tokens.iter().copied()).collect();
        let alignment = self.find_alignment(features, &text_tokens, num_frames)?;
        Ok(add_word_timestamps(segments, alignment, time_offset, last_speech_timestamp))
    }

    /// `find_alignment`: one decoder pass over the prompt, `text_tokens` and end-of-text on the
    /// encoded window `features`; the alignment heads' cross-attention over the window's first
    /// `num_frames / 2` positions (its `num_frames` mel frames of audio), softmax, standardised per
    /// frame, median-filtered along time, averaged over the heads; DTW through it; each word
    /// starts when its first token is reached and ends when the next word's is.
    pub fn find_alignment(&self, features: &Tensor, text_tokens: &[u32], num_frames: usize) -> Result<Vec<WordTiming>> {
        let (model, heads, prompt, eot) = (self.model, self.heads, self.prompt, self.eot);
        let frames = (num_frames / 2).min(model.config().n_audio_ctx);
        if text_tokens.is_empty() || frames == 0 || prompt.is_empty() {
            return Ok(Vec::new());
        }
        let tokens: Vec<u32> = prompt.iter().chain(text_tokens).chain([&eot]).copied().collect();
        let mut state = model.start(features, 1)?;
        let (_, scores) = model.decode_with_cross_scores(&mut state, &tokens, heads)?;
        let rows = tokens.len();
        // The heads' (tokens × frames) weights, each softmaxed, standardised and filtered, summed.
        let mut matrix = vec![0f32; rows * frames];
        for qk in &scores {
            let mut weights: Vec<f32> = qk.narrow(1, 0, frames)?.flatten_all()?.to_vec1()?;
            for row in weights.chunks_exact_mut(frames) {
                math::softmax(row);
            }
            standardise_columns(&mut weights, rows, frames);
            let filtered = median_filter(&weights, frames, MEDFILT_WIDTH);
            for (m, w) in matrix.iter_mut().zip(filtered) {
                *m += w;
            }
        }
        let n_heads = heads.len() as f32;
        // The rows from <|notimestamps|> (which predicts the first text token) to the last text token.
        let first = prompt.len() - 1;
        let n = rows - 1 - first;
        let cost: Vec<f64> = matrix[first * frames..(first + n) * frames].iter().map(|&m| -((m / n_heads) as f64)).collect();
        let (text_indices, time_indices) = dtw(&cost, n, frames);

        let with_eot: Vec<u32> = text_tokens.iter().copied().chain([eot]).collect();
        let (words, word_tokens) = split_to_word_tokens(&with_eot, eot, self.language, self.decode)?;
        if word_tokens.len() <= 1 {
            return Ok(Vec::new());
        }
        // The time of each text index's first step on the path.
        let jump_times: Vec<f64> = (0..text_indices.len())
            .filter(|&k| k == 0 || text_indices[k] != text_indices[k - 1])
            .map(|k| time_indices[k] as f64 / TOKENS_PER_SECOND)
            .collect();
        let mut boundaries = vec![0usize];
        for t in &word_tokens[..word_tokens.len() - 1] {
            boundaries.push(boundaries.last().copied().unwrap_or(0) + t.len());
        }
        let time = |i: usize| jump_times.get(i).copied().unwrap_or_else(|| jump_times.last().copied().unwrap_or(0.0));
        Ok(words
            .iter()
            .zip(word_tokens)
            .zip(boundaries.windows(2))
            .map(|((word, tokens), b)| WordTiming { word: word.clone(), tokens, start: time(b[0]), end: time(b[1]) })
            .collect())
    }
}

/// `(weights - mean) / std` with mean and (population) standard deviation over the tokens of
/// each frame (`torch.std_mean(dim=-2, unbiased=False)`).
fn standardise_columns(weights: &mut [f32], rows: usize, frames: usize) {
    for j in 0..frames {
        let column = (0..rows).map(|i| weights[i * frames + j]);
        let mean = column.clone().sum::<f32>() / rows as f32;
        let var = column.map(|w| (w - mean) * (w - mean)).sum::<f32>() / rows as f32;
        let std = var.sqrt();
        for i in 0..rows {
            weights[i * frames + j] = (weights[i * frames + j] - mean) / std;
        }
    }
}

/// `median_filter`: the median of `width` (odd) values around each one along rows of `frames`
/// values, the rows reflected at their ends; rows not longer than width / 2 stay as they are.
fn median_filter(x: &[f32], frames: usize, width: usize) -> Vec<f32> {
    let pad = width / 2;
    if frames <= pad {
        return x.to_vec();
    }
    let mut out = Vec::with_capacity(x.len());
    let mut window = vec![0f32; width];
    for row in x.chunks_exact(frames) {
        // Reflect padding (no edge repeat): index −k → k, frames−1+k → frames−1−k.
        let at = |i: isize| -> f32 {
            let n = frames as isize;
            let i = if i < 0 { -i } else if i >= n { 2 * (n - 1) - i } else { i };
            row[i.clamp(0, n - 1) as usize]
        };
        for j in 0..frames as isize {
            for (k, w) in window.iter_mut().enumerate() {
                *w = at(j + k as isize - pad as isize);
            }
            window.sort_unstable_by(f32::total_cmp);
            out.push(window[pad]);
        }
    }
    out
}

/// `dtw_cpu` + `backtrace`: the cheapest monotonic path through `cost` (n × m, row-major) from
/// (0, 0) to (n−1, m−1), as (row indices, column indices). Costs accumulate in f32, as openai's.
pub fn dtw(cost: &[f64], n: usize, m: usize) -> (Vec<usize>, Vec<usize>) {
    let w = m + 1;
    let mut acc = vec![f32::INFINITY; (n + 1) * w];
    let mut trace = vec![-1i8; (n + 1) * w];
    acc[0] = 0.0;
    for j in 1..=m {
        for i in 1..=n {
            let (c0, c1, c2) = (acc[(i - 1) * w + j - 1], acc[(i - 1) * w + j], acc[i * w + j - 1]);
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            acc[i * w + j] = (cost[(i - 1) * m + j - 1] + c as f64) as f32;
            trace[i * w + j] = t;
        }
    }
    (0..w).for_each(|j| trace[j] = 2);
    (0..=n).for_each(|i| trace[i * w] = 1);
    let (mut i, mut j) = (n, m);
    let mut path = Vec::with_capacity(n + m);
    while i > 0 || j > 0 {
        path.push((i.wrapping_sub(1), j.wrapping_sub(1)));
        match trace[i * w + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    // The infinite border makes every path end through (1, 1) → (0, 0), so no index is −1;
    // filtered all the same so that nothing can index out of range.
    path.into_iter().filter(|&(i, j)| i < n && j < m).unzip()
}

/// `merge_punctuations`: opening punctuation joins the word after it, closing punctuation the
/// word before it (the emptied entries stay, with no word and no tokens).
pub fn merge_punctuations(alignment: &mut [WordTiming], prepended: &str, appended: &str) {
    if alignment.len() >= 2 {
        let (mut i, mut j) = (alignment.len() as isize - 2, alignment.len() - 1);
        while i >= 0 {
            let iu = i as usize;
            let previous = &alignment[iu];
            // Python's `in`: a substring test.
            if previous.word.starts_with(' ') && prepended.contains(previous.word.trim()) {
                let (word, tokens) = (std::mem::take(&mut alignment[iu].word), std::mem::take(&mut alignment[iu].tokens));
                let following = &mut alignment[j];
                following.word = word + &following.word;
                following.tokens = tokens.into_iter().chain(following.tokens.drain(..)).collect();
            } else {
                j = iu;
            }
            i -= 1;
        }
    }
    let (mut i, mut j) = (0, 1);
    while j < alignment.len() {
        if !alignment[i].word.ends_with(' ') && appended.contains(alignment[j].word.as_str()) {
            let (word, tokens) = (std::mem::take(&mut alignment[j].word), std::mem::take(&mut alignment[j].tokens));
            alignment[i].word.push_str(&word);
            alignment[i].tokens.extend(tokens);
        } else {
            i = j;
        }
        j += 1;
    }
}

/// numpy's median (the mean of the middle two of an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `add_word_timestamps` after `find_alignment`: words at sentence ends and after pauses are kept
/// below twice the median word duration, punctuation is merged, each segment gets the words of
/// its tokens (at `time_offset`, the window's start, rounded to 10 ms), and segment bounds and
/// the first/last word's bounds are reconciled. Returns the new `last_speech_timestamp`.
pub fn add_word_timestamps(
    segments: &mut [SegmentWords],
    mut alignment: Vec<WordTiming>,
    time_offset: f64,
    mut last_speech_timestamp: f64,
) -> f64 {
    if segments.is_empty() {
        return last_speech_timestamp;
    }
    let mut durations: Vec<f64> = alignment.iter().map(|t| t.end - t.start).filter(|&d| d != 0.0).collect();
    let any_duration = !durations.is_empty();
    let median_duration = median(&mut durations).min(0.7);
    let max_duration = median_duration * 2.0;

    // Long words at sentence boundaries are truncated (openai's "hack" until a VAD does it).
    if any_duration {
        const SENTENCE_END_MARKS: &str = ".。!！?？";
        for i in 1..alignment.len() {
            if alignment[i].end - alignment[i].start > max_duration {
                if SENTENCE_END_MARKS.contains(alignment[i].word.as_str()) {
                    alignment[i].end = alignment[i].start + max_duration;
                } else if SENTENCE_END_MARKS.contains(alignment[i - 1].word.as_str()) {
                    alignment[i].start = alignment[i].end - max_duration;
                }
            }
        }
    }
    merge_punctuations(&mut alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);

    let mut word_index = 0;
    for segment in segments.iter_mut() {
        let mut saved_tokens = 0;
        let mut words: Vec<Word> = Vec::new();
        while word_index < alignment.len() && saved_tokens < segment.text_tokens.len() {
            let timing = &alignment[word_index];
            if !timing.word.is_empty() {
                words.push(Word {
                    word: timing.word.clone(),
                    start: round2(time_offset + timing.start),
                    end: round2(time_offset + timing.end),
                });
            }
            saved_tokens += timing.tokens.len();
            word_index += 1;
        }
        if let (Some(_), n) = (words.first(), words.len()) {
            // The first and second word after a pause are not longer than twice the median.
            let first_long = words[0].end - words[0].start > max_duration;
            let pair_long = n > 1 && words[1].end - words[0].start > max_duration * 2.0;
            if words[0].end - last_speech_timestamp > median_duration * 4.0 && (first_long || pair_long) {
                if n > 1 && words[1].end - words[1].start > max_duration {
                    let boundary = (words[1].end / 2.0).max(words[1].end - max_duration);
                    words[0].end = boundary;
                    words[1].start = boundary;
                }
                words[0].start = (words[0].end - max_duration).max(0.0);
            }
            // The segment's own start wins when the first word is too long; otherwise the word's.
            if segment.start < words[0].end && segment.start - 0.5 > words[0].start {
                words[0].start = (words[0].end - median_duration).min(segment.start).max(0.0);
            } else {
                segment.start = words[0].start;
            }
            let last = n - 1;
            if segment.end > words[last].start && segment.end + 0.5 < words[last].end {
                words[last].end = (words[last].start + median_duration).max(segment.end);
            } else {
                segment.end = words[last].end;
            }
            last_speech_timestamp = segment.end;
        }
        segment.words = words;
    }
    last_speech_timestamp
}

/// openai's `get_end`: the end of the last word, else of the last segment.
pub fn get_end(segments: &[SegmentWords]) -> Option<f64> {
    segments
        .iter()
        .rev()
        .flat_map(|s| s.words.iter().rev())
        .map(|w| w.end)
        .next()
        .or_else(|| segments.last().map(|s| s.end))
}

/// What the `return_timestamps` option asks for: nothing, timed segments (`true`), or timed words
/// (`"word"`), transformers.js's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnTimestamps {
    #[default]
    No,
    Segments,
    Words,
}

impl ReturnTimestamps {
    /// Whether the windows are decoded with timestamps (segments or words).
    pub fn any(self) -> bool {
        self != ReturnTimestamps::No
    }
}

impl From<bool> for ReturnTimestamps {
    fn from(segments: bool) -> Self {
        if segments {
            ReturnTimestamps::Segments
        } else {
            ReturnTimestamps::No
        }
    }
}

impl<'de> serde::Deserialize<'de> for ReturnTimestamps {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Value {
            Bool(bool),
            Name(String),
        }
        let invalid = |shown: &str| serde::de::Error::custom(format!("return_timestamps must be true, false or 'word', got {shown}"));
        match Value::deserialize(deserializer).map_err(|_| invalid("another type"))? {
            Value::Bool(b) => Ok(b.into()),
            Value::Name(name) if name == "word" => Ok(ReturnTimestamps::Words),
            Value::Name(name) => Err(invalid(&format!("'{}'", name.chars().take(40).collect::<String>()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(word: &str, tokens: &[u32], start: f64, end: f64) -> WordTiming {
        WordTiming { word: word.into(), tokens: tokens.to_vec(), start, end }
    }

    #[test]
    fn return_timestamps_takes_a_bool_or_word() {
        let parse = |s: &str| serde_json::from_str::<ReturnTimestamps>(s);
        assert_eq!(parse("true").unwrap(), ReturnTimestamps::Segments);
        assert_eq!(parse("false").unwrap(), ReturnTimestamps::No);
        assert_eq!(parse("\"word\"").unwrap(), ReturnTimestamps::Words);
        for bad in ["\"words\"", "\"yes\"", "1", "null"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("return_timestamps must be true, false or 'word'"), "{bad}: {e}");
        }
    }

    #[test]
    fn dtw_follows_the_cheap_diagonal() {
        // 2 tokens × 4 frames: token 0 is cheap on frames 0–1, token 1 on frames 2–3.
        let cost = [-1.0, -1.0, 1.0, 0.0, 0.0, 1.0, -1.0, -1.0];
        let (rows, cols) = dtw(&cost, 2, 4);
        assert_eq!(rows, vec![0, 0, 1, 1]);
        assert_eq!(cols, vec![0, 1, 2, 3]);
        // Ties go sideways (openai's `else` branch): the path may stay on a token.
        let (rows, cols) = dtw(&[-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0], 2, 4);
        assert_eq!((rows, cols), (vec![0, 0, 1, 1, 1], vec![0, 1, 1, 2, 3]));
    }

    #[test]
    fn median_filter_reflects_at_the_edges() {
        let x = [5.0, 1.0, 4.0, 2.0, 3.0];
        // Width 3 over the reflected row [1 5 1 4 2 3 2].
        assert_eq!(median_filter(&x, 5, 3), vec![1.0, 4.0, 2.0, 3.0, 2.0]);
        // Rows of at most width / 2 values are left alone.
        assert_eq!(median_filter(&[1.0, 9.0, 1.0], 3, 7), vec![1.0, 9.0, 1.0]);
    }

    #[test]
    fn punctuation_joins_its_word() {
        let mut a = vec![
            timing(" \"", &[1], 0.0, 0.1),
            timing(" Hello", &[2], 0.1, 0.5),
            timing(",", &[3], 0.5, 0.6),
            timing(" world", &[4], 0.6, 1.0),
            timing("!\"", &[5], 1.0, 1.1),
        ];
        merge_punctuations(&mut a, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);
        let words: Vec<(&str, &[u32])> = a.iter().map(|t| (t.word.as_str(), t.tokens.as_slice())).collect();
        // "!\"" is not a substring of the appended set, so it stays a word of its own.
        assert_eq!(words, vec![("", &[][..]), (" \" Hello,", &[1, 2, 3][..]), ("", &[][..]), (" world", &[4][..]), ("!\"", &[5][..])]);
    }

    #[test]
    fn words_split_on_spaces_and_punctuation_but_not_inside_words() {
        let pieces = ["", " Guten", " Mor", "gen", "!", " Das"];
        let decode = |ids: &[u32]| -> Result<String> { Ok(ids.iter().map(|&i| *pieces.get(i as usize).unwrap_or(&"")).collect()) };
        let (words, tokens) = split_to_word_tokens(&[1, 2, 3, 4, 5, 50], 50, "de", &decode).unwrap();
        assert_eq!(words, vec![" Guten", " Morgen", "!", " Das", ""]);
        assert_eq!(tokens, vec![vec![1], vec![2, 3], vec![4], vec![5], vec![50]]);
        // Chinese: every token that completes characters is a word.
        let (words, _) = split_to_word_tokens(&[2, 3], 50, "zh", &decode).unwrap();
        assert_eq!(words, vec![" Mor", "gen"]);
    }

    #[test]
    fn characters_split_over_tokens_stay_together() {
        // "你" is E4 BD A0: token 1 holds E4 BD, token 2 holds A0.
        let bytes: [&[u8]; 3] = [b"", &[0xE4, 0xBD], &[0xA0]];
        let decode = |ids: &[u32]| -> Result<String> {
            Ok(String::from_utf8_lossy(&ids.iter().flat_map(|&i| bytes[i as usize].iter().copied()).collect::<Vec<u8>>()).into_owned())
        };
        let (words, tokens) = split_to_word_tokens(&[1, 2], 50, "zh", &decode).unwrap();
        assert_eq!((words, tokens), (vec!["你".to_string()], vec![vec![1, 2]]));
    }

    #[test]
    fn segments_take_their_words_and_bounds() {
        let mut segments = vec![
            SegmentWords { text_tokens: vec![1, 2], start: 10.0, end: 11.0, words: vec![] },
            SegmentWords { text_tokens: vec![3], start: 11.0, end: 12.0, words: vec![] },
        ];
        let alignment = vec![timing(" a", &[1], 0.0, 0.4), timing(".", &[2], 0.4, 0.5), timing(" b", &[3], 1.0, 1.3)];
        let last = add_word_timestamps(&mut segments, alignment, 10.0, 10.0);
        let words: Vec<_> = segments.iter().map(|s| s.words.iter().map(|w| (w.word.as_str(), w.start, w.end)).collect::<Vec<_>>()).collect();
        assert_eq!(words, vec![vec![(" a.", 10.0, 10.4)], vec![(" b", 11.0, 11.3)]]);
        assert_eq!((segments[0].start, segments[0].end, segments[1].end), (10.0, 10.4, 11.3));
        assert_eq!(last, 11.3);
        assert_eq!(get_end(&segments), Some(11.3));
    }
}
