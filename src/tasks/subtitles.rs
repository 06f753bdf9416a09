//! Subtitles from a transcription's timed chunks: SubRip (`.srt`) and WebVTT (`.vtt`).
//!
//! Chunks are either segments (`return_timestamps: true`: a sentence or so each, one cue per
//! segment, as openai/whisper's `WriteSRT`/`WriteVTT` write them) or words
//! (`return_timestamps: 'word'`: a cue per word would flash by, so with `max_line_width` words
//! are gathered into cues of at most that many characters, and a pause longer than
//! [`LONG_PAUSE`] starts a new cue — openai's `max_line_width` and `long_pause` rules in
//! [`ResultWriter.iterate_result`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/utils.py)).
//!
//! Formats: SubRip as commonly read (index, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, text, blank line);
//! WebVTT per <https://www.w3.org/TR/webvtt1/>: the `WEBVTT` header, `HH:MM:SS.mmm` times, and cue
//! text with `&`, `<` and `>` escaped (so a transcript that says "-->" or "<b>" stays text). A
//! line break inside a cue's text would end the cue early in both formats, so whitespace runs
//! become one space.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::tasks::speech_recognition::Chunk;

/// A pause (seconds between one chunk's end and the next one's start) that starts a new cue when
/// words are gathered (openai's `long_pause`).
pub const LONG_PAUSE: f64 = 3.0;
/// The longest cue line people read comfortably (openai suggests 42 characters for
/// `max_line_width`; the same figure as broadcast subtitle guidelines); the CLI and the page use
/// it for word chunks.
pub const DEFAULT_LINE_WIDTH: usize = 42;
/// Caps on what a caller may ask for, so a hostile call cannot make an unbounded amount of text.
const MAX_LINE_WIDTH: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubtitleFormat {
    Srt,
    Vtt,
}

impl SubtitleFormat {
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().trim_start_matches('.').to_ascii_lowercase().as_str() {
            "srt" => Ok(SubtitleFormat::Srt),
            "vtt" | "webvtt" => Ok(SubtitleFormat::Vtt),
            other => Err(Error::Input(format!("unknown subtitle format '{other}': expected srt or vtt"))),
        }
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            SubtitleFormat::Srt => "srt",
            SubtitleFormat::Vtt => "vtt",
        }
    }

    /// The MIME type to serve or download the file as.
    pub fn mime_type(self) -> &'static str {
        match self {
            SubtitleFormat::Srt => "application/x-subrip",
            SubtitleFormat::Vtt => "text/vtt",
        }
    }
}

/// One subtitle: shown from `start` to `end` (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// The cues for `chunks`: one per chunk, or with `max_line_width` consecutive chunks gathered
/// while the cue stays within that many characters and no long pause separates them. Chunks
/// without text are left out. Times must be finite and not negative; an end before its start is
/// an error (a chunk list that is not a transcription's).
pub fn cues(chunks: &[Chunk], max_line_width: Option<usize>) -> Result<Vec<Cue>> {
    if let Some(width) = max_line_width {
        if width == 0 || width > MAX_LINE_WIDTH {
            return Err(Error::Input(format!("max_line_width must be between 1 and {MAX_LINE_WIDTH}, got {width}")));
        }
    }
    let mut cues: Vec<Cue> = Vec::new();
    // The end of the chunk before, to measure pauses between words.
    let mut previous_end: Option<f64> = None;
    for (i, chunk) in chunks.iter().enumerate() {
        let [start, end] = chunk.timestamp;
        if !start.is_finite() || !end.is_finite() || start < 0.0 || end < start {
            return Err(Error::Input(format!(
                "chunk {i} has timestamp [{start}, {end}]: subtitles need finite times with 0 <= start <= end"
            )));
        }
        let text = one_line(&chunk.text);
        if text.is_empty() {
            continue;
        }
        let gathered = match (max_line_width, cues.last_mut(), previous_end) {
            (Some(width), Some(cue), Some(before)) if start - before <= LONG_PAUSE => {
                // Word chunks carry their leading space (" ask"); a chunk without one is glued on
                // (a word piece, or punctuation merged into its own chunk).
                let joined = if chunk.text.starts_with(char::is_whitespace) {
                    format!("{} {text}", cue.text)
                } else {
                    format!("{}{text}", cue.text)
                };
                if joined.chars().count() <= width {
                    cue.text = joined;
                    cue.end = cue.end.max(end);
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        if !gathered {
            cues.push(Cue { start, end, text });
        }
        previous_end = Some(end);
    }
    Ok(cues)
}

/// `chunks` as a subtitle file in `format` (see [`cues`] for `max_line_width`). A transcription
/// without chunks (timestamps were not asked for) cannot be timed: that is an input error saying so.
pub fn write(chunks: &[Chunk], format: SubtitleFormat, max_line_width: Option<usize>) -> Result<String> {
    if chunks.is_empty() {
        return Err(Error::Input(
            "subtitles need timed chunks: transcribe with return_timestamps: true (segments) or 'word'".into(),
        ));
    }
    let cues = cues(chunks, max_line_width)?;
    let mut out = String::new();
    match format {
        SubtitleFormat::Srt => {
            for (i, cue) in cues.iter().enumerate() {
                out.push_str(&format!("{}\n{} --> {}\n{}\n\n", i + 1, time(cue.start, ','), time(cue.end, ','), cue.text));
            }
        }
        SubtitleFormat::Vtt => {
            out.push_str("WEBVTT\n\n");
            for cue in &cues {
                out.push_str(&format!("{} --> {}\n{}\n\n", time(cue.start, '.'), time(cue.end, '.'), escape_vtt(&cue.text)));
            }
        }
    }
    Ok(out)
}

/// `HH:MM:SS` then `separator` and milliseconds (`,` for SubRip, `.` for WebVTT).
fn time(seconds: f64, separator: char) -> String {
    let millis = (seconds * 1000.0).round() as u64;
    let (h, m, s, ms) = (millis / 3_600_000, millis / 60_000 % 60, millis / 1000 % 60, millis % 1000);
    format!("{h:02}:{m:02}:{s:02}{separator}{ms:03}")
}

/// The text on one line, whitespace runs as one space, trimmed.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// WebVTT cue text is markup: `&` and `<` start entities and tags, and `-->` may not appear.
fn escape_vtt(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(start: f64, end: f64, text: &str) -> Chunk {
        Chunk { timestamp: [start, end], text: text.into() }
    }

    #[test]
    fn segments_become_one_cue_each() {
        let chunks = [chunk(0.0, 2.5, " And so my fellow Americans,"), chunk(2.5, 3661.0426, " ask not\nwhat  your country")];
        let srt = write(&chunks, SubtitleFormat::Srt, None).unwrap();
        assert_eq!(
            srt,
            "1\n00:00:00,000 --> 00:00:02,500\nAnd so my fellow Americans,\n\n2\n00:00:02,500 --> 01:01:01,043\nask not what your country\n\n"
        );
        let vtt = write(&chunks, SubtitleFormat::Vtt, None).unwrap();
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nAnd so my fellow Americans,\n\n"));
    }

    #[test]
    fn words_are_gathered_up_to_the_line_width_and_split_at_long_pauses() {
        let words = [
            chunk(0.0, 0.3, " And"),
            chunk(0.3, 0.5, " so"),
            chunk(0.5, 0.9, " my"),
            chunk(0.9, 1.4, " fellow"),
            chunk(1.4, 2.0, " Americans,"),
            chunk(6.0, 6.4, " ask"),
        ];
        let cues = cues(&words, Some(16)).unwrap();
        let texts: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["And so my fellow", "Americans,", "ask"]);
        assert_eq!((cues[0].start, cues[0].end), (0.0, 1.4));
        // Without a width, one cue per chunk.
        assert_eq!(super::cues(&words, None).unwrap().len(), 6);
    }

    #[test]
    fn vtt_text_is_escaped_and_bad_input_is_refused() {
        let vtt = write(&[chunk(0.0, 1.0, "a --> b & <c>")], SubtitleFormat::Vtt, None).unwrap();
        assert!(vtt.contains("\na --&gt; b &amp; &lt;c&gt;\n"));
        assert!(matches!(write(&[], SubtitleFormat::Srt, None), Err(Error::Input(_))));
        assert!(matches!(write(&[chunk(2.0, 1.0, "x")], SubtitleFormat::Srt, None), Err(Error::Input(_))));
        assert!(matches!(write(&[chunk(f64::NAN, 1.0, "x")], SubtitleFormat::Srt, None), Err(Error::Input(_))));
        assert!(matches!(write(&[chunk(0.0, 1.0, "x")], SubtitleFormat::Srt, Some(0)), Err(Error::Input(_))));
        assert_eq!(SubtitleFormat::parse(".VTT").unwrap(), SubtitleFormat::Vtt);
        assert!(SubtitleFormat::parse("ass").is_err());
    }
}
