//! In headless Chromium: each weight dtype through the JS `pipeline()` against the PyTorch
//! references (the same tolerances as the native tests/dtypes.rs, the documented accuracy of
//! each dtype), and the browser's compact-model cache: a second load reads the compact entry
//! instead of downloading the original, and a damaged entry is dropped and rebuilt.
#![cfg(target_arch = "wasm32")]

use hubside::wasm::pipeline;
use js_sys::Function;
use serde::Deserialize;
use std::collections::HashMap;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

// In a dedicated worker, as the page runs hubside: a model run that takes longer than 30 s on a
// busy machine would otherwise stall the test page's main thread until ChromeDriver kills it.
wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod browser;
use browser::{call, model_cache, options, truncate_cached, ENDPOINT};

mod references;

/// (model, reference.json, config.json) of the classifiers tests/dtypes.rs measures.
const CLASSIFIERS: [(&str, &str, &str); 3] = [
    (
        "tiny-random/distilbert-sst2",
        include_str!("fixtures/hub/tiny-random/distilbert-sst2/reference.json"),
        include_str!("fixtures/hub/tiny-random/distilbert-sst2/config.json"),
    ),
    (
        "tiny-random/distilbert-sst2-legacy",
        include_str!("fixtures/hub/tiny-random/distilbert-sst2-legacy/reference.json"),
        include_str!("fixtures/hub/tiny-random/distilbert-sst2-legacy/config.json"),
    ),
    (
        "tiny-random/bert-sentiment-3class",
        include_str!("fixtures/hub/tiny-random/bert-sentiment-3class/reference.json"),
        include_str!("fixtures/hub/tiny-random/bert-sentiment-3class/config.json"),
    ),
];

#[derive(Deserialize, Debug, Clone, PartialEq)]
struct LabelScore {
    label: String,
    score: f32,
}

#[derive(Deserialize)]
struct Config {
    id2label: HashMap<String, String>,
}

async fn classifier(model: &str, dtype: &str) -> Function {
    pipeline("sentiment-analysis".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into()), ("dtype", dtype.into())]))
        .await
        .unwrap_or_else(|e| panic!("{model} {dtype}: {}", browser::message(&e)))
}

/// Every label's score for `text`, best first (`top_k: null`).
async fn scores(classify: &Function, text: &str) -> Vec<LabelScore> {
    let out = call(classify, text.into(), options(&[("top_k", JsValue::NULL)])).await.unwrap();
    serde_wasm_bindgen::from_value(out).unwrap()
}

/// Over every fixture case of every classifier in `dtype`: the largest score error, and how many
/// labels differ where the reference is decisive (top two scores more than 0.1 apart).
async fn classification_error(dtype: &str) -> (f32, usize) {
    let (mut worst, mut flipped) = (0f32, 0);
    for (model, reference, config) in CLASSIFIERS {
        let reference: references::Classification = serde_json::from_str(reference).unwrap();
        let id2label = serde_json::from_str::<Config>(config).unwrap().id2label;
        let classify = classifier(model, dtype).await;
        for case in &reference.cases {
            let got = scores(&classify, &case.text).await;
            for (id, expected) in case.scores.iter().enumerate() {
                let label = &id2label[&id.to_string()];
                let score = got.iter().find(|s| &s.label == label).unwrap_or_else(|| panic!("{model}: no {label} in {got:?}")).score;
                worst = worst.max((score - expected).abs());
            }
            let mut sorted = case.scores.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let decisive = sorted.len() < 2 || sorted[0] - sorted[1] > 0.1;
            if decisive && got[0].label != case.label {
                flipped += 1;
            }
        }
    }
    (worst, flipped)
}

#[wasm_bindgen_test]
async fn fp16_and_q8_keep_every_label_and_q4_stays_close() {
    let (worst, flipped) = classification_error("fp16").await;
    assert!(flipped == 0 && worst < 2e-3, "fp16: {flipped} labels changed, max score error {worst}");
    let (worst, flipped) = classification_error("q8").await;
    assert!(flipped == 0 && worst < 5e-2, "q8: {flipped} labels changed, max score error {worst}");
    let (worst, _) = classification_error("q4").await;
    assert!(worst < 0.3, "q4: max score error {worst}");
}

#[wasm_bindgen_test]
async fn fp16_keeps_the_marian_translations() {
    let reference: references::Translation =
        serde_json::from_str(include_str!("fixtures/hub/tiny-random/marian-en-de/reference.json")).unwrap();
    let translate = pipeline(
        "translation".into(),
        Some("tiny-random/marian-en-de".into()),
        options(&[("endpoint", ENDPOINT.into()), ("dtype", "fp16".into())]),
    )
    .await
    .unwrap();
    #[derive(Deserialize)]
    struct Text {
        translation_text: String,
    }
    for case in &reference.cases {
        let opts = options(&[("max_new_tokens", 16.into()), ("num_beams", 1.into())]);
        let out: Vec<Text> = serde_wasm_bindgen::from_value(call(&translate, case.text.clone().into(), opts).await.unwrap()).unwrap();
        assert_eq!(out[0].translation_text, case.translation, "{:?}", case.text);
    }
}

#[derive(Deserialize, Debug)]
struct CachedFile {
    url: String,
    bytes: u64,
    kind: String,
    dtype: Option<String>,
}

#[derive(Deserialize, Debug)]
struct CachedModel {
    model: String,
    files: Vec<CachedFile>,
}

async fn cached_files(model: &str) -> Vec<CachedFile> {
    let cached: Vec<CachedModel> = serde_wasm_bindgen::from_value(hubside::wasm::cached_models().await.unwrap()).unwrap();
    cached.into_iter().find(|m| m.model == model).map(|m| m.files).unwrap_or_default()
}

#[wasm_bindgen_test]
async fn compact_cache_replaces_the_original_download_and_a_damaged_entry_is_rebuilt() {
    let model = "tiny-random/distilbert-sst2";
    let text = "I love this movie, it was wonderful!";
    let weights = format!("{ENDPOINT}/{model}/resolve/main/model.safetensors");
    hubside::wasm::clear_cache(Some(model.into())).await;

    let built = scores(&classifier(model, "q8").await, text).await;
    let files = cached_files(model).await;
    let compact: Vec<&CachedFile> = files.iter().filter(|f| f.kind == "compact").collect();
    assert_eq!(compact.len(), 1, "one compact entry: {files:?}");
    assert_eq!(compact[0].dtype.as_deref(), Some("q8"));
    let (compact_url, compact_bytes) = (compact[0].url.clone(), compact[0].bytes);
    assert!(files.iter().any(|f| f.url == weights && f.kind == "original"), "{files:?}");

    // Without the original weights in the cache, the next q8 load must not fetch them (a fetch
    // would put them back): the compact entry is all it reads, and gives the same scores.
    assert!(JsFuture::from(model_cache().await.delete_with_str(&weights)).await.unwrap().as_bool().unwrap());
    assert_eq!(scores(&classifier(model, "q8").await, text).await, built);
    let files = cached_files(model).await;
    assert!(!files.iter().any(|f| f.url == weights), "the original was downloaded again: {files:?}");

    // A damaged compact entry is dropped, rebuilt from the original, and whole again.
    truncate_cached(&compact_url).await;
    assert_eq!(scores(&classifier(model, "q8").await, text).await, built);
    let files = cached_files(model).await;
    let rebuilt = files.iter().find(|f| f.url == compact_url).expect("the compact entry is back");
    assert_eq!(rebuilt.bytes, compact_bytes);
    assert!(files.iter().any(|f| f.url == weights), "rebuilt from the original: {files:?}");

    assert!(hubside::wasm::clear_cache(Some(model.into())).await >= 2);
    assert!(cached_files(model).await.is_empty(), "clearCache removes both kinds");
}

/// Values in [-1, 1) from a seeded xorshift generator, `len` at a time.
fn xorshift_values(mut seed: u32) -> impl FnMut(usize) -> Vec<f32> {
    move |len| {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }
}

/// Every output of `got` (m×n) is within `tolerance`·Σ|x·w| of the exact product of x (m×k) with
/// the `weights` (n×k).
fn assert_near_exact(what: &str, got: &[f32], x: &[f32], weights: &[f32], (m, k, n): (usize, usize, usize), tolerance: f64) {
    for i in 0..m {
        for j in 0..n {
            let pairs = (0..k).map(|t| x[i * k + t] as f64 * weights[j * k + t] as f64);
            let exact: f64 = pairs.clone().sum();
            let scale: f64 = pairs.map(f64::abs).sum();
            let error = (got[i * n + j] as f64 - exact).abs();
            assert!(error <= tolerance * scale, "{what} ({i},{j}): {} vs {exact}", got[i * n + j]);
        }
    }
}

/// Every ggml block type the int8 tiles read (q8/q4 dtypes, and whisper.cpp files' Q4_0, Q5_0 and
/// Q5_1) is unpacked by the browser's SIMD: products of many rows against each type's dequantised
/// weights, with a W row count that leaves a panel ragged.
#[wasm_bindgen_test]
fn int8_tiles_read_every_block_type() {
    use candle_core::quantized::k_quants::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, GgmlType};
    use hubside::models::kernels;
    fn check<T: GgmlType>(name: &str) {
        let mut random = xorshift_values(0x2545_f491);
        let (k, n) = (96, 37);
        let blocks = kernels::quantize_rows::<T>(&random(n * k), n, k).unwrap();
        let mut w = vec![0.0; n * k];
        T::to_float(&blocks, &mut w);
        for m in [kernels::QUANT_DOT_MAX_ROWS + 1, 33] {
            let x = random(m * k);
            let mut out = vec![f32::NAN; m * n];
            kernels::matmul_quant(&x, m, k, &blocks, n, &mut out).unwrap();
            // x is quantised per block: 8 bits, or 7 around a zero point in the relaxed build.
            let x_step = if cfg!(target_feature = "relaxed-simd") { 2.0 / 127.0 } else { 1.0 / 127.0 };
            assert_near_exact(&format!("{name} m={m}"), &out, &x, &w, (m, k, n), x_step);
        }
    }
    check::<BlockQ8_0>("q8_0");
    check::<BlockQ4_0>("q4_0");
    check::<BlockQ4_1>("q4_1");
    check::<BlockQ5_0>("q5_0");
    check::<BlockQ5_1>("q5_1");
}

/// Decoder steps (1–4 rows) with Q4_1, Q5_0 and Q5_1 weights (the q4 dtype, whisper.cpp files) run
/// the browser's SIMD dots, which give candle's `vec_dot` bit for bit.
#[wasm_bindgen_test]
fn one_row_nibble_dots_equal_candles() {
    use candle_core::quantized::k_quants::{BlockQ4_1, BlockQ5_0, BlockQ5_1, GgmlType};
    use hubside::models::kernels;
    fn check<T: GgmlType>(name: &str) {
        let mut random = xorshift_values(0x1b87_3593);
        let (k, n) = (96, 37);
        let blocks = kernels::quantize_rows::<T>(&random(n * k), n, k).unwrap();
        let per_row = k / 32;
        for m in 1..=kernels::QUANT_DOT_MAX_ROWS {
            let x = random(m * k);
            let mut out = vec![f32::NAN; m * n];
            kernels::matmul_quant(&x, m, k, &blocks, n, &mut out).unwrap();
            for i in 0..m {
                let mut x_blocks = vec![T::VecDotType::zeros(); per_row];
                kernels::quantize_blocks(&x[i * k..(i + 1) * k], &mut x_blocks);
                for j in 0..n {
                    let expected = T::vec_dot(k, &blocks[j * per_row..(j + 1) * per_row], &x_blocks);
                    assert_eq!(out[i * n + j].to_bits(), expected.to_bits(), "{name} m={m} ({i},{j}): {} vs {expected}", out[i * n + j]);
                }
            }
        }
    }
    check::<BlockQ4_1>("q4_1");
    check::<BlockQ5_0>("q5_0");
    check::<BlockQ5_1>("q5_1");
}

/// The browser's own kernels (simd128: the f16 and bf16 widening, the int8 products for many rows)
/// against exact products, for one row (decoding) and many (encoders), including odd sizes.
#[wasm_bindgen_test]
fn wasm_kernels_match_exact_products() {
    use candle_core::quantized::k_quants::{BlockQ4_1, BlockQ8_0, GgmlType};
    use hubside::models::kernels;
    let mut random = xorshift_values(0x9e37_79b9);
    let (k, n) = (96, 37);
    let w = random(n * k);
    let w_f16: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
    let widened: Vec<f32> = w_f16.iter().map(|h| h.to_f32()).collect();
    let w_bf16: Vec<half::bf16> = w.iter().map(|&v| half::bf16::from_f32(v)).collect();
    let widened_bf16: Vec<f32> = w_bf16.iter().map(|h| h.to_f32()).collect();
    let q8 = kernels::quantize_rows::<BlockQ8_0>(&w, n, k).unwrap();
    let q4 = kernels::quantize_rows::<BlockQ4_1>(&w, n, k).unwrap();
    let (mut w_q8, mut w_q4) = (vec![0.0; n * k], vec![0.0; n * k]);
    BlockQ8_0::to_float(&q8, &mut w_q8);
    BlockQ4_1::to_float(&q4, &mut w_q4);
    for m in [1, 2, 3, 4, 6, 33] {
        let x = random(m * k);
        let check = |what: &str, got: &[f32], weights: &[f32], tolerance: f64| {
            assert_near_exact(&format!("{what} m={m}"), got, &x, weights, (m, k, n), tolerance)
        };
        let mut out = vec![0.0; m * n];
        kernels::matmul_half(&x, m, k, &w_f16, n, &mut out).unwrap();
        check("f16", &out, &widened, 1e-6);
        kernels::matmul_half(&x, m, k, &w_bf16, n, &mut out).unwrap();
        check("bf16", &out, &widened_bf16, 1e-6);
        if m <= kernels::MATVEC_MAX_ROWS {
            // W rows are dotted four at a time, the last n mod 4 one by one: each output is what a
            // product with its W row alone gives, bit for bit.
            let mut f16_out = vec![0.0; m * n];
            kernels::matmul_half(&x, m, k, &w_f16, n, &mut f16_out).unwrap();
            for j in 0..n {
                let (mut bf16_one, mut f16_one) = (vec![0.0; m], vec![0.0; m]);
                kernels::matmul_half(&x, m, k, &w_bf16[j * k..(j + 1) * k], 1, &mut bf16_one).unwrap();
                kernels::matmul_half(&x, m, k, &w_f16[j * k..(j + 1) * k], 1, &mut f16_one).unwrap();
                for i in 0..m {
                    assert_eq!(out[i * n + j].to_bits(), bf16_one[i].to_bits(), "bf16 m={m} ({i},{j})");
                    assert_eq!(f16_out[i * n + j].to_bits(), f16_one[i].to_bits(), "f16 m={m} ({i},{j})");
                }
            }
        }
        // Many rows run the int8 tiles, which quantise x per block: to 8 bits, or in the
        // relaxed-SIMD build (pkg/relaxed) to 7 bits around a zero point, half as fine.
        let x_step = if cfg!(target_feature = "relaxed-simd") && m > kernels::QUANT_DOT_MAX_ROWS {
            2.0 / 127.0
        } else {
            1.0 / 127.0
        };
        kernels::matmul_quant(&x, m, k, &q8, n, &mut out).unwrap();
        check("q8_0", &out, &w_q8, x_step);
        if m <= kernels::QUANT_DOT_MAX_ROWS {
            // Decoder steps: bit for bit candle's own Q8_0 dot products, as natively.
            let blocks = k / 32;
            let mut x_blocks = vec![BlockQ8_0::zeros(); m * blocks];
            BlockQ8_0::from_float(&x, &mut x_blocks);
            for i in 0..m {
                for j in 0..n {
                    let expected = BlockQ8_0::vec_dot(k, &q8[j * blocks..(j + 1) * blocks], &x_blocks[i * blocks..(i + 1) * blocks]);
                    assert_eq!(out[i * n + j].to_bits(), expected.to_bits(), "q8_0 m={m} ({i},{j}): {} vs {expected}", out[i * n + j]);
                }
            }
        }
        kernels::matmul_quant(&x, m, k, &q4, n, &mut out).unwrap();
        check("q4_1", &out, &w_q4, x_step);
    }
    // A NaN or infinite activation makes its row's outputs NaN in the int8 tiles (as in f32
    // arithmetic), and only its row's.
    let m = 6;
    let mut x = random(m * k);
    x[5] = f32::NAN;
    x[k + 40] = f32::INFINITY;
    let mut out = vec![0.0; m * n];
    kernels::matmul_quant(&x, m, k, &q8, n, &mut out).unwrap();
    assert!(
        out[..2 * n].iter().all(|v| v.is_nan()),
        "{:?}",
        &out[..2 * n]
    );
    assert!(
        out[2 * n..].iter().all(|v| v.is_finite()),
        "{:?}",
        &out[2 * n..]
    );
    // f32 weights: matrix-vector dots up to 8 rows, then gemm, or in the relaxed-SIMD build fused
    // multiply-add tiles, whose k blocks (256), 4×4 packing and 6-row tiles this shape all cuts
    // unevenly (k = 601, n = 19, m = 13).
    let (k, n) = (601, 19);
    let w = random(n * k);
    for m in [1, 5, 9, 13] {
        let x = random(m * k);
        let mut out = vec![0.0; m * n];
        kernels::matmul_f32(&x, m, k, &w, n, &mut out).unwrap();
        for i in 0..m {
            for j in 0..n {
                let pairs = (0..k).map(|t| x[i * k + t] as f64 * w[j * k + t] as f64);
                let (exact, scale): (f64, f64) = (pairs.clone().sum(), pairs.map(f64::abs).sum());
                // f32 rounding over 601 terms: ~1e-6 of Σ|x·w| typically; a misplaced value is ~1e-2.
                assert!(
                    (out[i * n + j] as f64 - exact).abs() <= 1e-5 * scale,
                    "f32 m={m} ({i},{j}): {} vs {exact}",
                    out[i * n + j]
                );
            }
        }
    }
}
