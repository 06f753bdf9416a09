//! Native audio file decoding (WAV, FLAC, MP3, OGG/Vorbis) with symphonia, to interleaved f32.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::{Error, Result};

/// Decoded audio: interleaved samples in [-1, 1].
#[derive(Debug, Clone)]
pub struct Decoded {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    pub channels: usize,
}

/// Decode a whole audio file held in memory. `name` (a file name, for its extension hint and for
/// errors) may be empty. The rate must be in `SAMPLE_RATES`, the channels at most `MAX_CHANNELS`
/// and the decoded length at most `MAX_DECODED_SAMPLES`.
pub fn decode(bytes: &[u8], name: &str) -> Result<Decoded> {
    let what = if name.is_empty() { "input".to_string() } else { name.to_string() };
    if bytes.is_empty() {
        return Err(Error::Input(format!("{what} is empty")));
    }
    // symphonia panics on some hostile headers (a sample rate of 0: "TimeBase cannot have 0
    // numerator") and overflows in some FLAC frames; decoding is native-only, where a panic
    // unwinds, so it is caught here and reported as the bad file it is.
    std::panic::catch_unwind(|| decode_checked(bytes, name, &what)).unwrap_or_else(|_| {
        Err(Error::Input(format!("{what} is not a valid audio file: its decoder failed on it")))
    })
}

fn decode_checked(bytes: &[u8], name: &str, what: &str) -> Result<Decoded> {
    use super::{MAX_CHANNELS, MAX_DECODED_SAMPLES, SAMPLE_RATES};
    let not_audio = |e: &dyn std::fmt::Display| {
        Error::Input(format!("{what} is not a supported audio file (WAV, FLAC, MP3, OGG/Vorbis): {e}"))
    };
    let mut hint = Hint::new();
    if let Some(ext) = std::path::Path::new(name).extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| not_audio(&e))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| not_audio(&"no audio track"))?;
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| not_audio(&e))?;
    let mut sample_rate = track.codec_params.sample_rate;
    let mut channels = track.codec_params.channels.map(|c| c.count());
    let check_format = |rate: Option<u32>, channels: Option<usize>| -> Result<()> {
        if let Some(rate) = rate.filter(|r| !SAMPLE_RATES.contains(r)) {
            return Err(not_audio(&format!("sample rate {rate} Hz is outside {}..={} Hz", SAMPLE_RATES.start(), SAMPLE_RATES.end())));
        }
        if let Some(channels) = channels.filter(|&c| c == 0 || c > MAX_CHANNELS) {
            return Err(not_audio(&format!("{channels} channels (at most {MAX_CHANNELS})")));
        }
        Ok(())
    };
    check_format(sample_rate, channels)?;

    let mut samples = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(not_audio(&e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A corrupt packet: skip it, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(not_audio(&e)),
        };
        let spec = *decoded.spec();
        check_format(Some(spec.rate), Some(spec.channels.count()))?;
        sample_rate.get_or_insert(spec.rate);
        channels.get_or_insert(spec.channels.count());
        let frames = decoded.frames();
        if samples.len().saturating_add(frames.saturating_mul(spec.channels.count())) > MAX_DECODED_SAMPLES {
            return Err(Error::Input(format!(
                "{what} decodes to more than {MAX_DECODED_SAMPLES} samples (the longest audio hubside reads)"
            )));
        }
        let capacity = decoded.capacity() as u64;
        let buf = match &mut buffer {
            Some(buf) if buf.capacity() >= decoded.capacity() * spec.channels.count() => buf,
            _ => buffer.insert(SampleBuffer::new(capacity, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        samples.extend_from_slice(buf.samples());
    }
    let sample_rate = sample_rate.ok_or_else(|| not_audio(&"unknown sample rate"))?;
    let channels = channels.filter(|&c| c > 0).ok_or_else(|| not_audio(&"unknown channel count"))?;
    if samples.is_empty() {
        return Err(Error::Input(format!("{what} contains no audio samples")));
    }
    samples.truncate(samples.len() / channels * channels);
    Ok(Decoded { samples, sample_rate, channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_empty_are_clear_errors() {
        let e = decode(b"", "x.wav").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = decode(b"this is a text file, not audio", "notes.txt").unwrap_err().to_string();
        assert!(e.contains("not a supported audio file"), "{e}");
        let e = decode(&[0u8; 4096], "").unwrap_err().to_string();
        assert!(e.contains("not a supported audio file") || e.contains("no audio samples"), "{e}");
    }

    #[test]
    fn decodes_the_wav_fixture() {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audio/jfk16.wav")).unwrap();
        let d = decode(&bytes, "jfk16.wav").unwrap();
        assert_eq!((d.sample_rate, d.channels), (16000, 1));
        let (plain, rate, channels) = crate::audio::read_wav(&bytes).unwrap();
        assert_eq!((rate, channels), (16000, 1));
        assert_eq!(d.samples.len(), plain.len());
        assert!(d.samples.iter().zip(&plain).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
