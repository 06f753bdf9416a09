//! In headless Chromium: M2M100 and NLLB-200 translation (tiny random fixtures) through the
//! JS-facing `pipeline('translation', …)` with `src_lang` / `tgt_lang`, loading from the local Hub
//! mirror over HTTP, against the PyTorch + transformers references; the error for an unknown
//! language code; T5 from spiece.model alone. Started by scripts/test.sh.
#![cfg(target_arch = "wasm32")]

use hubside::wasm::pipeline;
use js_sys::{Array, Reflect};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod browser;
use browser::{call, message, options, ENDPOINT};

mod references;
use references::{MultilingualTranslation, Translation};

#[derive(Deserialize, Debug)]
struct TranslationText {
    translation_text: String,
}

const MODELS: [(&str, &str); 2] = [
    ("tiny-random/m2m100", include_str!("fixtures/hub/tiny-random/m2m100/reference.json")),
    ("tiny-random/nllb", include_str!("fixtures/hub/tiny-random/nllb/reference.json")),
];

async fn translator(model: &str) -> js_sys::Function {
    pipeline("translation".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap()
}

async fn translate(tr: &js_sys::Function, text: &str, opts: &[(&str, JsValue)]) -> Result<String, JsValue> {
    let out: Vec<TranslationText> = serde_wasm_bindgen::from_value(call(tr, text.into(), options(opts)).await?).unwrap();
    Ok(out.into_iter().next().unwrap().translation_text)
}

#[wasm_bindgen_test]
async fn greedy_translations_match_reference() {
    for (model, json) in MODELS {
        let reference: MultilingualTranslation = serde_json::from_str(json).unwrap();
        let tr = translator(model).await;
        for case in &reference.cases {
            let opts = [
                ("max_new_tokens", 16.into()),
                ("num_beams", 1.into()),
                ("src_lang", case.src_lang.as_str().into()),
                ("tgt_lang", case.tgt_lang.as_str().into()),
            ];
            assert_eq!(translate(&tr, &case.text, &opts).await.unwrap(), case.translation, "{model}: {:?}", case.text);
        }
    }
}

#[wasm_bindgen_test]
async fn beam_search_matches_reference() {
    for (model, json) in MODELS {
        let reference: MultilingualTranslation = serde_json::from_str(json).unwrap();
        let tr = translator(model).await;
        for case in &reference.beam_cases {
            let opts = [
                ("max_new_tokens", case.max_new_tokens.into()),
                ("num_beams", case.num_beams.into()),
                ("length_penalty", case.length_penalty.into()),
                ("early_stopping", case.early_stopping.into()),
                ("src_lang", case.src_lang.as_str().into()),
                ("tgt_lang", case.tgt_lang.as_str().into()),
            ];
            assert_eq!(translate(&tr, &case.text, &opts).await.unwrap(), case.translation, "{model}: {:?}", case.text);
        }
    }
}

#[wasm_bindgen_test]
async fn unknown_or_missing_languages_are_input_errors_listing_the_codes() {
    for ((model, _), (known, listed)) in MODELS.into_iter().zip([("en", "ceb"), ("eng_Latn", "zul_Latn")]) {
        let tr = translator(model).await;
        for (opts, option) in [
            (vec![("src_lang", known.into()), ("tgt_lang", "xx_Nope".into())], "tgt_lang"),
            (vec![("src_lang", known.into())], "tgt_lang"),
            (vec![("tgt_lang", known.into())], "src_lang"),
        ] {
            let error = translate(&tr, "Hello", &opts).await.unwrap_err();
            let text = message(&error);
            assert_eq!(Reflect::get(&error, &"kind".into()).unwrap().as_string().unwrap(), "input", "{text}");
            assert!(text.contains(option) && text.contains(listed), "{model}: {text}");
        }
    }
}

#[wasm_bindgen_test]
async fn translation_task_names_give_the_languages() {
    // transformers' `translation_xx_to_yy` names set src_lang and tgt_lang, here M2M100's codes.
    let (model, json) = MODELS[0];
    let reference: MultilingualTranslation = serde_json::from_str(json).unwrap();
    let case = reference.cases.iter().find(|c| c.src_lang == "en" && c.tgt_lang == "de").unwrap();
    let tr = pipeline("translation_en_to_de".into(), Some(model.into()), options(&[("endpoint", ENDPOINT.into())])).await.unwrap();
    let opts = [("max_new_tokens", 16.into()), ("num_beams", 1.into())];
    assert_eq!(translate(&tr, &case.text, &opts).await.unwrap(), case.translation);
}

#[wasm_bindgen_test]
async fn t5_from_spiece_model_alone_matches_t5_reference() {
    let reference: Translation = serde_json::from_str(include_str!("fixtures/hub/tiny-random/t5/reference.json")).unwrap();
    let tr = translator("tiny-random/t5-spiece-only").await;
    let texts = Array::new();
    for case in &reference.cases {
        texts.push(&case.text.clone().into());
    }
    let opts = options(&[("max_new_tokens", 16.into()), ("num_beams", 1.into())]);
    let out: Vec<TranslationText> = serde_wasm_bindgen::from_value(call(&tr, texts.into(), opts).await.unwrap()).unwrap();
    for (got, case) in out.iter().zip(&reference.cases) {
        assert_eq!(got.translation_text, case.translation, "{:?}", case.text);
    }
}
