"""Reference for Whisper's long-form rules: openai-whisper's transcribe() (PyPI openai-whisper==20250625,
torch 2.8.0 on CPU, fp32) on the real tiny.en and base weights, over long clips assembled from the test
clips. Writes tests/fixtures/whisper/longform.reference.json.

usage: make_longform_reference.py HF_TINY_EN HF_BASE
  HF_*: the CTranslate2 repos (Systran/faster-whisper-tiny.en, -base) converted to the transformers layout
  by /work/shared/tools/ct2_to_hf.py; here renamed into openai's checkpoint layout (whisper.model.Whisper).

Each clip is a list of pieces, built the same way by the Rust tests (tests/whisper_longform.rs):
  {"clip": NAME, "from": S, "to": S, "repeat": N}  samples [from, to) of tests/fixtures/audio/NAME (16 kHz
                                                   s16 read as s / 32768 in f32), N times
  {"silence": S}                                   S samples of 0.0
so no long wav is committed. Every model.decode call (one per window and temperature) is recorded: the
prompt it was conditioned on, its temperature, tokens, avg_logprob, compression_ratio and no_speech_prob.
Sampling at temperature > 0 uses torch's RNG (seeded here); hubside's seeded sampler draws other
samples, so only decodes at temperature 0 are compared token for token.
"""
import json
import os
import sys
import wave

import numpy as np
import torch
import whisper
from whisper.model import ModelDimensions, Whisper

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
AUDIO = os.path.join(ROOT, "tests", "fixtures", "audio")
OUT = os.path.join(ROOT, "tests", "fixtures", "whisper", "longform.reference.json")

SR = 16000
# "ask what you can do for your country" in jfk16.wav, in samples (openai's word timestamps on
# tiny.en: " ask" from 7.92 s, " country" to 10.44 s).
ASK_WHAT = (126400, 171200)
JFK = {"clip": "jfk16.wav", "from": 0, "to": 176000, "repeat": 1}
# The 0.125 s of room noise before "And" (peak 0.023): not digital silence, so the model judges it.
ROOM = {"clip": "jfk16.wav", "from": 0, "to": 2000, "repeat": 8 * 49}
CLIPS = {
    # 77 s: the speech three times, 19 s apart, so that no window holds it twice (which would be a
    # repetitive window): every window is kept at temperature 0 and the texts can be compared.
    "long": [JFK, {"silence": 19 * SR}, JFK, {"silence": 19 * SR}, JFK, {"silence": 6 * SR}],
    # One phrase eight times in a row: a window whose text repeats itself (compression ratio > 2.4).
    "repeat": [
        {"clip": "jfk16.wav", "from": ASK_WHAT[0], "to": ASK_WHAT[1], "repeat": 8},
        {"silence": 2 * SR},
        JFK,
        {"silence": 20 * SR},
        JFK,
    ],
    # 49 s of room noise between two speeches: the window from 30 s to 60 s holds only noise, which
    # the no-speech rule skips.
    "noise": [JFK, ROOM, JFK],
}
# (clip, model, options) — options are transcribe()'s keyword arguments.
RUNS = [
    ("long", "tiny.en", {}),
    ("long", "tiny.en", {"condition_on_previous_text": False}),
    ("long", "tiny.en", {"initial_prompt": "President Kennedy's inaugural address, 1961."}),
    ("long", "base", {"language": "en"}),
    ("long", "base", {"language": "en", "condition_on_previous_text": False}),
    ("long", "base", {"language": "en", "initial_prompt": "President Kennedy's inaugural address, 1961."}),
    ("repeat", "tiny.en", {}),
    ("repeat", "base", {"language": "en"}),
    # The log-probability rule alone: a threshold every window fails at temperature 0.
    ("long", "tiny.en", {"logprob_threshold": -0.05, "compression_ratio_threshold": 100.0}),
    ("noise", "tiny.en", {}),
    ("noise", "base", {"language": "en"}),
]
SEED = 0


def read_wav(name):
    with wave.open(os.path.join(AUDIO, name), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SR, 1, 2), name
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / np.float32(32768.0)


def build(pieces):
    out = []
    for p in pieces:
        if "silence" in p:
            out.append(np.zeros(p["silence"], dtype=np.float32))
        else:
            out.extend([read_wav(p["clip"])[p["from"]:p["to"]]] * p["repeat"])
    return np.concatenate(out)


def openai_model(hf_dir):
    """transformers' WhisperForConditionalGeneration weights renamed into openai's checkpoint layout."""
    from safetensors.torch import load_file
    config = json.load(open(os.path.join(hf_dir, "config.json")))
    hf = load_file(os.path.join(hf_dir, "model.safetensors"))
    dims = ModelDimensions(
        n_mels=config["num_mel_bins"], n_audio_ctx=config["max_source_positions"], n_audio_state=config["d_model"],
        n_audio_head=config["encoder_attention_heads"], n_audio_layer=config["encoder_layers"],
        n_vocab=config["vocab_size"], n_text_ctx=config["max_target_positions"], n_text_state=config["d_model"],
        n_text_head=config["decoder_attention_heads"], n_text_layer=config["decoder_layers"])
    parts = [("self_attn.q_proj", "attn.query"), ("self_attn.k_proj", "attn.key"), ("self_attn.v_proj", "attn.value"),
             ("self_attn.out_proj", "attn.out"), ("self_attn_layer_norm", "attn_ln"),
             ("encoder_attn.q_proj", "cross_attn.query"), ("encoder_attn.k_proj", "cross_attn.key"),
             ("encoder_attn.v_proj", "cross_attn.value"), ("encoder_attn.out_proj", "cross_attn.out"),
             ("encoder_attn_layer_norm", "cross_attn_ln"), ("fc1", "mlp.0"), ("fc2", "mlp.2"), ("final_layer_norm", "mlp_ln")]
    state = {}
    for name, tensor in hf.items():
        n = name.removeprefix("model.")
        if n.startswith("proj_out"):
            continue  # tied to the token embedding
        n = n.replace("encoder.embed_positions.weight", "encoder.positional_embedding")
        n = n.replace("decoder.embed_positions.weight", "decoder.positional_embedding")
        n = n.replace("decoder.embed_tokens", "decoder.token_embedding")
        n = n.replace("encoder.layer_norm", "encoder.ln_post").replace("decoder.layer_norm", "decoder.ln")
        n = n.replace(".layers.", ".blocks.")
        for a, b in parts:
            n = n.replace("." + a + ".", "." + b + ".")
        state[n] = tensor.float()
    model = Whisper(dims)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("alignment_heads" in m for m in missing), (missing, unexpected)
    return model.eval()


def traced(model):
    """Record every model.decode call transcribe() makes (one per window and temperature)."""
    calls = []
    original = model.decode

    def decode(mel, options):
        result = original(mel, options)
        calls.append({
            "prompt": list(options.prompt or []),
            "temperature": options.temperature,
            "tokens": list(result.tokens),
            "avg_logprob": result.avg_logprob,
            "compression_ratio": result.compression_ratio,
            "no_speech_prob": result.no_speech_prob,
        })
        return result

    model.decode = decode
    return calls


def main():
    hf = {"tiny.en": sys.argv[1], "base": sys.argv[2]}
    models = {name: openai_model(path) for name, path in hf.items()}
    runs = []
    for clip, name, options in RUNS:
        torch.manual_seed(SEED)
        model = models[name]
        calls = traced(model)
        result = whisper.transcribe(model, build(CLIPS[clip]), fp16=False, **options)
        del model.decode
        segments = [{k: s[k] for k in ("seek", "start", "end", "text", "tokens", "temperature")} for s in result["segments"]]
        runs.append({"clip": clip, "model": name, "options": options, "text": result["text"],
                     "segments": segments, "decodes": calls})
        temps = [c["temperature"] for c in calls]
        print(clip, name, options, "decodes at", temps, "->", result["text"][:100], file=sys.stderr)
    versions = {"openai-whisper": "20250625", "torch": torch.__version__, "numpy": np.__version__}
    json.dump({"versions": versions, "seed": SEED, "clips": CLIPS, "runs": runs}, open(OUT, "w"), indent=1)
    open(OUT, "a").write("\n")


if __name__ == "__main__":
    main()
