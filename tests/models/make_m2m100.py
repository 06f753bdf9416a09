"""Tiny random M2M100 and NLLB-200 translation models in the Hub layout of facebook/m2m100_418M
and facebook/nllb-200-distilled-600M, with PyTorch + transformers references.

- tiny-random/m2m100: config.json, generation_config.json, model.safetensors,
  sentencepiece.bpe.model + vocab.json (M2M100Tokenizer: spm pieces looked up in vocab.json, whose
  order is not the spm order, as in the real repo), tokenizer_config.json, special_tokens_map.json;
  no tokenizer.json. The 100 `__xx__` language tokens follow the vocabulary, then 8 made-up words,
  as in the real vocab_size (128004 + 100 + 8).
- tiny-random/nllb: config.json, generation_config.json, pytorch_model.bin, tokenizer.json
  (NllbTokenizerFast, the 202 language codes as added tokens), sentencepiece.bpe.model,
  tokenizer_config.json, special_tokens_map.json.

reference.json per model: `cases` (text, src_lang, tgt_lang, input_ids, greedy generated_ids with
the target language forced first, translation, min_margin, and the logits of the first step after
the forced token: ids 0..16 and the top 5), `beam_cases` (beam search as
`generate(..., num_beams=N, forced_bos_token_id=...)`), `tokenizer_cases` (input_ids for Unicode,
emoji, accents, whitespace runs, the empty string and a text longer than the model's limit, untruncated
and truncated at model_max_length).
"""

import json
import os
import random
import shutil
import tempfile

import sentencepiece as spm
import torch
import transformers
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES
from transformers import (AutoTokenizer, GenerationConfig, M2M100Config, M2M100ForConditionalGeneration,
                          M2M100Tokenizer, NllbTokenizerFast)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "hub", "tiny-random")
CORPUS = os.path.join(HERE, "corpus.txt")
MAX_POSITIONS = 128
MAX_NEW = 16

TEXTS = [
    ("Hello world!", "en", "de"),
    ("The house is small.", "en", "fr"),
    ("Grant of Copyright License. Each Contributor hereby grants to You a license.", "en", "de"),
    ("Ünïcödé café naïve — résumé ✓ 😀", "fr", "en"),
    ("  Whitespace   runs\tand\nnew lines  ", "de", "fr"),
    ("", "en", "de"),
]
TOKENIZER_TEXTS = [
    "Hello world!",
    "Ünïcödé café naïve — résumé ✓",
    "emoji 😀🎉 and CJK 漢字 and Ελληνικά",
    "  leading, trailing   and\t\ttabs  ",
    "ﬁ ligature, full-width ＡＢＣ, combining e\u0301",
    "",
    "special tokens in text: a</s>b <unk> __de__ deu_Latn <pad>end",
    " ".join(["The licensor grants you a license to reproduce the Work."] * 30),
]
BEAM = {"num_beams": 4, "max_new_tokens": 10, "length_penalty": 1.0, "early_stopping": True}


def train_spm(directory):
    # Relative paths: the trainer writes them into the model file, which must not depend on where
    # the script ran.
    shutil.copy(CORPUS, os.path.join(directory, "corpus.txt"))
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        spm.SentencePieceTrainer.train(
            input="corpus.txt", model_prefix="spm", model_type="bpe", vocab_size=600, seed_sentencepiece_size=10000,
            num_threads=1, minloglevel=2,
        )
    finally:
        os.chdir(cwd)
    return os.path.join(directory, "spm.model")


def set_json(path, **values):
    with open(path) as f:
        value = json.load(f)
    value.update(values)
    with open(path, "w") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": __import__("tokenizers").__version__, "sentencepiece": spm.__version__}


def tiny_config(vocab_size, seed):
    # init_std well above the real 0.02, so that the random logits are far apart (greedy margins).
    return M2M100Config(
        vocab_size=vocab_size, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=MAX_POSITIONS,
        activation_function="relu", scale_embedding=True, init_std=0.4, dropout=0.1, attention_dropout=0.1,
        activation_dropout=0.0, encoder_layerdrop=0.05, decoder_layerdrop=0.05, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2, tie_word_embeddings=True,
    )


def reference(model, tokenizer, code_of, token_of, max_length):
    """`code_of`: the language code users and `tokenizer.src_lang` take; `token_of`: its token."""
    model.eval()
    cases, beam_cases, tokenizer_cases = [], [], []
    for text, src, tgt in TEXTS:
        src, tgt = code_of(src), code_of(tgt)
        tokenizer.src_lang = src
        ids = tokenizer(text)["input_ids"]
        forced = tokenizer.convert_tokens_to_ids(token_of(tgt))
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), forced_bos_token_id=forced, num_beams=1, do_sample=False,
                                 max_new_tokens=MAX_NEW, output_logits=True, return_dict_in_generate=True)
        generated = out.sequences[0].tolist()
        margins = []
        for step, logits in enumerate(out.logits):
            if step == 0:
                continue  # the forced language token
            top = torch.topk(logits[0], 2).values
            margins.append(float(top[0] - top[1]))
        # The first free step's logits (after the decoder start and the forced language token).
        free = out.logits[1][0] if len(out.logits) > 1 else None
        top = torch.topk(free, 5) if free is not None else None
        cases.append({
            "text": text, "src_lang": src, "tgt_lang": tgt, "input_ids": ids,
            "step1_logits_first16": [round(float(v), 6) for v in free[:16]] if free is not None else [],
            "step1_top5_ids": top.indices.tolist() if top is not None else [],
            "step1_top5_logits": [round(float(v), 6) for v in top.values] if top is not None else [],
            "generated_ids": generated, "translation": tokenizer.decode(generated, skip_special_tokens=True),
            "min_margin": round(min(margins), 6) if margins else None,
        })
        with torch.no_grad():
            beam = model.generate(torch.tensor([ids]), forced_bos_token_id=forced, do_sample=False, **BEAM)
        beam_cases.append({
            "text": text, "src_lang": src, "tgt_lang": tgt, **BEAM,
            "generated_ids": beam[0].tolist(), "translation": tokenizer.decode(beam[0], skip_special_tokens=True),
        })
    tokenizer.src_lang = code_of("en")
    for text in TOKENIZER_TEXTS:
        full = tokenizer(text)["input_ids"]
        truncated = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        tokenizer_cases.append({
            "text": text, "src_lang": code_of("en"), "input_ids": full, "truncated_input_ids": truncated,
            "decoded": tokenizer.decode(full, skip_special_tokens=True),
        })
    return cases, beam_cases, tokenizer_cases


def write_reference(directory, cases, beam_cases, tokenizer_cases, what):
    reference_json = {
        "reference": versions(),
        "task": "translation",
        "decoding": f"{what}; greedy argmax, decoder starts with </s> (2), the target language token forced "
                    f"next (forced_bos_token_id), stop after eos or {MAX_NEW} new tokens; beam_cases: "
                    "generate(num_beams, max_new_tokens, length_penalty, early_stopping, forced_bos_token_id)",
        "cases": cases,
        "beam_cases": beam_cases,
        "tokenizer_cases": tokenizer_cases,
    }
    with open(os.path.join(directory, "reference.json"), "w") as f:
        json.dump(reference_json, f, indent=1, ensure_ascii=False)
        f.write("\n")
    margins = [c["min_margin"] for c in cases if c["min_margin"] is not None]
    print(directory, "min margin", min(margins))


def generation_config(**extra):
    return GenerationConfig(bos_token_id=0, decoder_start_token_id=2, eos_token_id=2, pad_token_id=1,
                            max_length=200, **extra)


def make_m2m100(work, spm_file):
    directory = os.path.join(OUT, "m2m100")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    sp = spm.SentencePieceProcessor(model_file=spm_file)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    # fairseq's dictionary: its four specials, then the pieces in its own (frequency) order, not spm's.
    random.Random(7).shuffle(pieces)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece in pieces:
        vocab[piece] = len(vocab)
    with open(os.path.join(work, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=2)
    # As facebook/m2m100_418M: the language tokens are additional special tokens (so decoding skips
    # them), and tokenizer_config.json names no source language.
    codes = FAIRSEQ_LANGUAGE_CODES["m2m100"]
    tokenizer = M2M100Tokenizer(os.path.join(work, "vocab.json"), spm_file, model_max_length=MAX_POSITIONS,
                                additional_special_tokens=[f"__{code}__" for code in codes])
    tokenizer.save_pretrained(directory)
    set_json(os.path.join(directory, "tokenizer_config.json"), src_lang=None, tgt_lang=None)
    for extra in ["added_tokens.json"]:
        if os.path.exists(os.path.join(directory, extra)):
            os.remove(os.path.join(directory, extra))

    torch.manual_seed(1)
    config = tiny_config(len(vocab) + 100 + 8, 1)
    config.num_beams, config.early_stopping, config.max_length = 5, True, 200
    model = M2M100ForConditionalGeneration(config)
    model.generation_config = generation_config(num_beams=5, early_stopping=True)
    model.save_pretrained(directory, safe_serialization=True)

    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert type(tokenizer).__name__ == "M2M100Tokenizer", type(tokenizer)
    model = M2M100ForConditionalGeneration.from_pretrained(directory)
    cases, beam_cases, tokenizer_cases = reference(model, tokenizer, lambda code: code, lambda code: f"__{code}__", MAX_POSITIONS)
    write_reference(directory, cases, beam_cases, tokenizer_cases, "M2M100Tokenizer (slow: vocab.json + sentencepiece.bpe.model)")


NLLB_CODES = {"en": "eng_Latn", "de": "deu_Latn", "fr": "fra_Latn"}


def make_nllb(work, spm_file):
    directory = os.path.join(OUT, "nllb")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    tokenizer = NllbTokenizerFast(vocab_file=spm_file, model_max_length=MAX_POSITIONS, legacy_behaviour=False)
    tokenizer.save_pretrained(directory)
    set_json(os.path.join(directory, "tokenizer_config.json"), src_lang=None, tgt_lang=None)
    for extra in ["added_tokens.json"]:
        if os.path.exists(os.path.join(directory, extra)):
            os.remove(os.path.join(directory, extra))
    assert os.path.exists(os.path.join(directory, "sentencepiece.bpe.model"))

    torch.manual_seed(2)
    config = tiny_config(len(tokenizer), 2)
    config.tokenizer_class = "NllbTokenizer"
    model = M2M100ForConditionalGeneration(config)
    model.generation_config = generation_config()
    model.save_pretrained(directory, safe_serialization=False)

    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert type(tokenizer).__name__ == "NllbTokenizerFast", type(tokenizer)
    model = M2M100ForConditionalGeneration.from_pretrained(directory)
    cases, beam_cases, tokenizer_cases = reference(model, tokenizer, lambda code: NLLB_CODES[code], lambda code: code, MAX_POSITIONS)
    write_reference(directory, cases, beam_cases, tokenizer_cases, "NllbTokenizerFast (tokenizer.json), legacy_behaviour false")


def main():
    work = tempfile.mkdtemp()
    try:
        spm_file = train_spm(work)
        make_m2m100(work, spm_file)
        make_nllb(work, spm_file)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
