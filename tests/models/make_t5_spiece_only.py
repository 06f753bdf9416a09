"""tiny-random/t5-spiece-only: tiny-random/t5's files without tokenizer.json (spiece.model and
tokenizer_config.json only, as older T5 repos ship them), so the tokenizer is T5Tokenizer's:
SentencePiece ids as they are, `</s>` appended, `<extra_id_N>` after the vocabulary. Same weights,
so the same translations as tiny-random/t5's reference.json; reference.json here adds
`tokenizer_cases` (Unicode, emoji, accents, whitespace runs, the empty string, a long text) from
the slow T5Tokenizer (and `legacy_input_ids` with legacy=True) and the T5TokenizerFast transformers converts from spiece.model (AutoTokenizer's
choice), which must agree.
"""

import json
import os
import shutil

import sentencepiece
import tokenizers
import torch
import transformers
from transformers import AutoTokenizer, T5Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
HUB = os.path.join(HERE, "..", "fixtures", "hub", "tiny-random")
SOURCE = os.path.join(HUB, "t5")
OUT = os.path.join(HUB, "t5-spiece-only")

TEXTS = [
    "Hello world!",
    "translate English to German: The house is small.",
    "Ünïcödé café naïve — résumé ✓",
    "emoji 😀🎉 and CJK 漢字 and Ελληνικά",
    "  leading, trailing   and\t\ttabs  ",
    "ﬁ ligature, full-width ＡＢＣ, combining e\u0301",
    "",
    "special tokens in text: a</s>b <unk> <pad>end",
    "</s> at the start",
    " ".join(["The licensor grants you a license to reproduce the Work."] * 30),
]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for name in sorted(os.listdir(SOURCE)):
        if name not in ("tokenizer.json", "reference.json"):
            shutil.copy(os.path.join(SOURCE, name), os.path.join(OUT, name))
    # tiny-random/t5's tokenizer_config.json, less what only its writer's transformers version reads
    # (`extra_special_tokens` as a list, `backend`): the keys a T5Tokenizer repo has.
    path = os.path.join(OUT, "tokenizer_config.json")
    with open(path) as f:
        config = json.load(f)
    for key in ("backend", "extra_special_tokens", "is_local", "local_files_only"):
        config.pop(key, None)
    with open(path, "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    slow = T5Tokenizer.from_pretrained(OUT)
    auto = AutoTokenizer.from_pretrained(OUT)
    # What the same files give with `"legacy": true` (the default when the key is absent, as in
    # google-t5/t5-small): the spm model's own dummy prefix on every piece of text.
    legacy = T5Tokenizer.from_pretrained(OUT, legacy=True)
    cases = []
    for text in TEXTS:
        ids = slow(text)["input_ids"]
        assert auto(text)["input_ids"] == ids, (text, ids, auto(text)["input_ids"])
        legacy_ids = legacy(text)["input_ids"]
        cases.append({"text": text, "input_ids": ids, "legacy_input_ids": legacy_ids,
                      "decoded": slow.decode(ids, skip_special_tokens=True)})
    with open(os.path.join(SOURCE, "reference.json")) as f:
        t5 = json.load(f)
    for case in t5["cases"]:
        assert slow(case["model_input"])["input_ids"] == case["input_ids"], case["text"]
    reference = {
        "reference": {"torch": torch.__version__, "transformers": transformers.__version__,
                      "tokenizers": tokenizers.__version__, "sentencepiece": sentencepiece.__version__},
        "tokenizer": f"T5Tokenizer (slow) and {type(auto).__name__} (AutoTokenizer) agree",
        "translations": "as tiny-random/t5/reference.json (same weights)",
        "tokenizer_cases": cases,
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
