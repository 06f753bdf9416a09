//! Long audio: how one 30 s window's tokens (decoded with timestamps) become timed segments, and
//! how far the window then moves. Follows the segment slicing inside openai/whisper's
//! [`transcribe()`](https://github.com/openai/whisper/blob/fdf63e51dc3089e10d72fd25ac04ffe22f86543e/whisper/transcribe.py): segments lie between consecutive timestamp tokens; the window moves to
//! the end of the last complete segment, so words cut by the window's edge are decoded again in
//! the next window, once — or by the whole window when its last segment ends with a single
//! timestamp (nothing was cut).

use std::ops::Range;

use crate::audio::{HOP_LENGTH, SAMPLE_RATE};

/// Seconds per timestamp step (two mel frames per encoder position).
pub const TIME_PRECISION: f64 = 0.02;

/// One timed segment of a window: its tokens (timestamps included) and its start and end in
/// seconds from the window's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub tokens: Range<usize>,
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WindowSegments {
    pub segments: Vec<Segment>,
    /// Mel frames to move the window by.
    pub advance: usize,
}

/// Whether a window's tokens end with a lone timestamp after text (nothing was cut by the edge).
pub fn single_timestamp_ending(tokens: &[u32], timestamp_begin: u32) -> bool {
    matches!(tokens, [.., text, ts] if *text < timestamp_begin && *ts >= timestamp_begin)
}

/// Split a window's generated `tokens` (eot excluded) at consecutive timestamps. `segment_size`:
/// the window's content frames; `input_stride`: mel frames per timestamp step.
pub fn split_window(tokens: &[u32], timestamp_begin: u32, eot: u32, segment_size: usize, input_stride: usize) -> WindowSegments {
    let seconds = |t: u32| t.saturating_sub(timestamp_begin) as f64 * TIME_PRECISION;
    let is_ts: Vec<bool> = tokens.iter().map(|&t| t >= timestamp_begin).collect();
    let single_timestamp_ending = single_timestamp_ending(tokens, timestamp_begin);
    let mut cuts: Vec<usize> = (1..is_ts.len()).filter(|&i| is_ts[i - 1] && is_ts[i]).collect();
    if cuts.is_empty() {
        // No complete pair: one segment for the whole window, ending at its last timestamp if any.
        let frame_seconds = HOP_LENGTH as f64 / SAMPLE_RATE as f64;
        let mut end = segment_size as f64 * frame_seconds;
        if let Some(&last_ts) = tokens.iter().rev().find(|&&t| t >= timestamp_begin) {
            if last_ts != timestamp_begin {
                end = seconds(last_ts);
            }
        }
        let segments = if tokens.iter().any(|&t| t < eot) {
            vec![Segment { tokens: 0..tokens.len(), start: 0.0, end }]
        } else {
            Vec::new()
        };
        return WindowSegments { segments, advance: segment_size };
    }
    if single_timestamp_ending {
        cuts.push(tokens.len());
    }
    let mut segments = Vec::with_capacity(cuts.len());
    let mut last = 0;
    for &cut in &cuts {
        // The timestamp rules make every piece start and end with a timestamp.
        segments.push(Segment { tokens: last..cut, start: seconds(tokens[last]), end: seconds(tokens[cut - 1]) });
        last = cut;
    }
    let advance = if single_timestamp_ending {
        segment_size
    } else {
        tokens[last - 1].saturating_sub(timestamp_begin) as usize * input_stride
    };
    WindowSegments { segments, advance }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u32 = 100; // <|0.00|>
    const EOT: u32 = 50;

    #[test]
    fn pairs_of_timestamps_cut_segments_and_the_window_moves_to_the_last_complete_one() {
        // <|0.00|> a b <|1.00|><|1.00|> c <|2.00|><|2.00|> d   (d is cut by the window edge)
        let tokens = [TS, 1, 2, TS + 50, TS + 50, 3, TS + 100, TS + 100, 4];
        let w = split_window(&tokens, TS, EOT, 3000, 2);
        assert_eq!(w.segments, vec![
            Segment { tokens: 0..4, start: 0.0, end: 1.0 },
            Segment { tokens: 4..7, start: 1.0, end: 2.0 },
        ]);
        assert_eq!(w.advance, 200); // 100 steps × 2 frames: d is decoded again next window
    }

    #[test]
    fn a_single_timestamp_ending_consumes_the_whole_window() {
        let tokens = [TS, 1, TS + 50, TS + 50, 2, TS + 75];
        let w = split_window(&tokens, TS, EOT, 2500, 2);
        assert_eq!(w.segments.len(), 2);
        assert_eq!(w.segments[1], Segment { tokens: 3..6, start: 1.0, end: 1.5 });
        assert_eq!(w.advance, 2500);
    }

    #[test]
    fn no_pair_gives_one_segment_or_none() {
        let w = split_window(&[TS, 1, 2, TS + 40], TS, EOT, 1000, 2);
        assert_eq!(w.segments, vec![Segment { tokens: 0..4, start: 0.0, end: 0.8 }]);
        assert_eq!(w.advance, 1000);
        // Only timestamps: nothing to say.
        assert!(split_window(&[TS], TS, EOT, 1000, 2).segments.is_empty());
        // No timestamp after the text: the segment lasts the window.
        assert_eq!(split_window(&[TS, 1], TS, EOT, 1000, 2).segments[0].end, 10.0);
    }
}
