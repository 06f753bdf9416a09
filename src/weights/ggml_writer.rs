//! Writes whisper.cpp ggml model files (layout in `weights::ggml`) from Whisper weights: what
//! `convert-pt-to-ggml.py` followed by `whisper_model_quantize` produce, for tests, benchmarks and
//! `hubside convert`. Which tensors are quantised, and into what, is `ggml::Role::dtype` (the
//! quantiser's rule: 2-D tensors except the positional embeddings and convolution biases); blocks
//! come from candle's ports of ggml's reference quantisers.

use candle_core::quantized::QTensor;
use candle_core::{DType, Tensor};
use tokenizers::Tokenizer;

use super::ctranslate2;
use super::ggml::{layout, tensor_type_code, FileType, HParams, MelFilters, MAGIC, QUANTIZATION_VERSION};
use super::Tensors;
use crate::error::{Error, Result};

const FILE: &str = "ggml model";

/// A whole model file: `tensors` keyed by openai/whisper state-dict name (any float dtype; a
/// convolution bias may be (n) or (n, 1)).
pub fn write(hparams: &HParams, filters: &MelFilters, vocab: &[Vec<u8>], tensors: &Tensors) -> Result<Vec<u8>> {
    fn i32s(out: &mut Vec<u8>, values: &[usize]) -> Result<()> {
        for &v in values {
            let v = i32::try_from(v).map_err(|_| Error::weights(FILE, format!("{v} does not fit an i32")))?;
            out.extend_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    i32s(&mut out, &hparams.dims_in_header_order())?;
    out.extend_from_slice(&hparams.ftype_field().to_le_bytes());
    if filters.data.len() != filters.n_mel * filters.n_fft {
        return Err(Error::weights(FILE, "mel filters do not match their dimensions"));
    }
    i32s(&mut out, &[filters.n_mel, filters.n_fft])?;
    out.extend(filters.data.iter().flat_map(|x| x.to_le_bytes()));
    i32s(&mut out, &[vocab.len()])?;
    for token in vocab {
        i32s(&mut out, &[token.len()])?;
        out.extend_from_slice(token);
    }
    for spec in layout(hparams) {
        let tensor = tensors.get(&spec.name).ok_or_else(|| Error::weights(FILE, format!("missing tensor '{}'", spec.name)))?;
        if tensor.elem_count() != spec.shape.iter().product::<usize>() {
            return Err(Error::weights(FILE, format!("tensor '{}' has shape {:?}, expected {:?}", spec.name, tensor.dims(), spec.shape)));
        }
        let tensor = tensor.to_dtype(DType::F32)?.reshape(spec.shape.as_slice())?;
        let dtype = spec.role.dtype(hparams.file_type);
        let code = tensor_type_code(dtype).ok_or_else(|| Error::weights(FILE, format!("{dtype:?} has no ggml type code")))?;
        let ne: Vec<usize> = spec.shape.iter().rev().copied().collect();
        i32s(&mut out, &[ne.len(), spec.name.len()])?;
        out.extend_from_slice(&code.to_le_bytes());
        i32s(&mut out, &ne)?;
        out.extend_from_slice(spec.name.as_bytes());
        let values = || tensor.flatten_all().and_then(|t| t.to_vec1::<f32>());
        match dtype {
            candle_core::quantized::GgmlDType::F32 => out.extend(values()?.iter().flat_map(|x| x.to_le_bytes())),
            candle_core::quantized::GgmlDType::F16 => {
                out.extend(values()?.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()))
            }
            _ => {
                if !ne[0].is_multiple_of(dtype.block_size()) {
                    return Err(Error::Input(format!(
                        "{}: rows of {} values do not split into {} blocks of {}",
                        spec.name,
                        ne[0],
                        hparams.file_type.name(),
                        dtype.block_size()
                    )));
                }
                // From a fresh contiguous copy: `QTensor::quantize` reads the storage from its
                // start, ignoring a view's offset (the split q/k/v projections are views).
                let contiguous = Tensor::from_vec(values()?, spec.shape.as_slice(), &candle_core::Device::Cpu)?;
                out.extend_from_slice(&QTensor::quantize(&contiguous, dtype)?.data()?);
            }
        }
    }
    Ok(out)
}

/// A CTranslate2 `WhisperSpec` model (Systran/faster-whisper-*) as openai/whisper-named tensors
/// and the header for a file of `file_type`. Fused q/k/v (and cross k/v) are split; the key
/// projections have no bias in openai/whisper (CTranslate2 stores zeros), so theirs is dropped.
pub fn from_ctranslate2(ct2: &Tensors, file_type: FileType) -> Result<(HParams, Tensors)> {
    let get = |name: &str| {
        ct2.get(name).cloned().ok_or_else(|| Error::weights("model.bin", format!("missing variable '{name}'")))
    };
    let dim = |t: &Tensor, i: usize, name: &str| {
        t.dims().get(i).copied().ok_or_else(|| Error::weights("model.bin", format!("'{name}' has shape {:?}", t.dims())))
    };
    let mut out = Tensors::new();
    let conv1 = get("encoder/conv1/weight")?;
    let (d, n_mels) = (dim(&conv1, 0, "encoder/conv1/weight")?, dim(&conv1, 1, "encoder/conv1/weight")?);
    let embeddings = get("decoder/embeddings/weight")?;
    let n_vocab = dim(&embeddings, 0, "decoder/embeddings/weight")?;
    let layers = |side: &str| (0..).take_while(|i| ct2.contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))).count();
    let heads = |name: &str| ctranslate2::scalar_i64(ct2, name).filter(|&h| h > 0).map_or(d / 64, |h| h as usize);
    let encoder_positions = get("encoder/position_encodings/encodings")?;
    let decoder_positions = get("decoder/position_encodings/encodings")?;
    let hparams = HParams {
        n_vocab,
        n_audio_ctx: dim(&encoder_positions, 0, "encoder/position_encodings/encodings")?,
        n_audio_state: d,
        n_audio_head: heads("encoder/num_heads"),
        n_audio_layer: layers("encoder"),
        n_text_ctx: dim(&decoder_positions, 0, "decoder/position_encodings/encodings")?,
        n_text_state: d,
        n_text_head: heads("decoder/num_heads"),
        n_text_layer: layers("decoder"),
        n_mels,
        file_type,
        quantization_version: if file_type.is_quantized() { QUANTIZATION_VERSION } else { 0 },
    };
    out.insert("encoder.positional_embedding".into(), encoder_positions);
    out.insert("decoder.positional_embedding".into(), decoder_positions);
    out.insert("decoder.token_embedding.weight".into(), embeddings);
    for conv in ["conv1", "conv2"] {
        for part in ["weight", "bias"] {
            out.insert(format!("encoder.{conv}.{part}"), get(&format!("encoder/{conv}/{part}"))?);
        }
    }
    let mut copy = |from: &str, to: &str, with_bias: bool| -> Result<()> {
        let (weight, bias) = if from.ends_with("layer_norm") { ("gamma", "beta") } else { ("weight", "bias") };
        out.insert(format!("{to}.weight"), get(&format!("{from}/{weight}"))?);
        if with_bias {
            out.insert(format!("{to}.bias"), get(&format!("{from}/{bias}"))?);
        }
        Ok(())
    };
    copy("encoder/layer_norm", "encoder.ln_post", true)?;
    copy("decoder/layer_norm", "decoder.ln", true)?;
    for side in ["encoder", "decoder"] {
        for i in 0..layers(side) {
            let (c, o) = (format!("{side}/layer_{i}"), format!("{side}.blocks.{i}"));
            copy(&format!("{c}/self_attention/layer_norm"), &format!("{o}.attn_ln"), true)?;
            copy(&format!("{c}/self_attention/linear_1"), &format!("{o}.attn.out"), true)?;
            copy(&format!("{c}/ffn/linear_0"), &format!("{o}.mlp.0"), true)?;
            copy(&format!("{c}/ffn/linear_1"), &format!("{o}.mlp.2"), true)?;
            copy(&format!("{c}/ffn/layer_norm"), &format!("{o}.mlp_ln"), true)?;
            if side == "decoder" {
                copy(&format!("{c}/attention/layer_norm"), &format!("{o}.cross_attn_ln"), true)?;
                copy(&format!("{c}/attention/linear_0"), &format!("{o}.cross_attn.query"), true)?;
                copy(&format!("{c}/attention/linear_2"), &format!("{o}.cross_attn.out"), true)?;
            }
        }
    }
    // The fused projections, split along the output dimension.
    for side in ["encoder", "decoder"] {
        for i in 0..layers(side) {
            let (c, o) = (format!("{side}/layer_{i}"), format!("{side}.blocks.{i}"));
            let mut fused = vec![(format!("{c}/self_attention/linear_0"), format!("{o}.attn"), vec!["query", "key", "value"])];
            if side == "decoder" {
                fused.push((format!("{c}/attention/linear_1"), format!("{o}.cross_attn"), vec!["key", "value"]));
            }
            for (from, to, parts) in fused {
                let (w, b) = (get(&format!("{from}/weight"))?, get(&format!("{from}/bias"))?);
                if dim(&w, 0, &from)? != parts.len() * d {
                    return Err(Error::weights("model.bin", format!("'{from}/weight' has shape {:?}", w.dims())));
                }
                for (j, part) in parts.iter().enumerate() {
                    out.insert(format!("{to}.{part}.weight"), w.narrow(0, j * d, d)?);
                    if *part != "key" {
                        out.insert(format!("{to}.{part}.bias"), b.narrow(0, j * d, d)?);
                    }
                }
            }
        }
    }
    Ok((hparams, out))
}

/// A CTranslate2 Whisper model and its tokenizer.json as a whisper.cpp file of `file_type`, with
/// this crate's mel filterbank and the tokenizer's ordinary tokens as raw bytes.
pub fn convert_ctranslate2(ct2: &Tensors, tokenizer: &Tokenizer, file_type: FileType) -> Result<Vec<u8>> {
    let (hparams, tensors) = from_ctranslate2(ct2, file_type)?;
    let vocab = crate::whisper::vocabulary::ggml_vocab_from_tokenizer(tokenizer)?;
    let n_fft = crate::audio::N_FFT;
    let filters = MelFilters {
        n_mel: hparams.n_mels,
        n_fft: n_fft / 2 + 1,
        data: crate::audio::mel_filters(hparams.n_mels, n_fft, crate::audio::SAMPLE_RATE),
    };
    write(&hparams, &filters, &vocab, &tensors)
}
