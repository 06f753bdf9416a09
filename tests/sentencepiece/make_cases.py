"""Regenerate cases.json: what the SentencePiece C++ library (Python package `sentencepiece`)
makes of tricky inputs with the tiny-random models' .spm/.model files. Run from this folder:
    pip install sentencepiece && python3 make_cases.py
"""
import json

import sentencepiece

MODELS = {
    "marian-en-de/source.spm": "../fixtures/hub/tiny-random/marian-en-de/source.spm",
    "marian-en-de/target.spm": "../fixtures/hub/tiny-random/marian-en-de/target.spm",
    "t5/spiece.model": "../fixtures/hub/tiny-random/t5/spiece.model",
}
TEXTS = [
    "", " ", "   \t\n ", "Hello world!", "  leading and   inner   spaces  ", "tab\tnew\nline",
    "Ünïcödé ✓ 123", "ïï✓✓ x", "ﬁ ① Ａｂｃ ㍻ ½", "\u00a0nbsp\u3000ideographic", "e\u0301 combining",
    "日本語のテキスト", "emoji 😀👍🏽 end", "Straße Œuvre ÆØÅ", "don't stop—now…", "x" * 40,
    "The quick brown fox jumps over the lazy dog.", "\u200bzero\u200dwidth", "A.B.C. 3.14 $5 50%",
]
PIECES = [["▁Hello", "▁world", "!"], ["▁", "▁b"], ["C", "C", "▁ka", "<unk>", "xyz▁q", "▁"], ["<unk>", "▁a"], ["▁▁a", "▁", "▁b"], []]

cases = {}
for name, path in MODELS.items():
    sp = sentencepiece.SentencePieceProcessor(model_file=path)
    cases[name] = {
        "encode": [{"text": t, "pieces": sp.encode(t, out_type=str), "ids": sp.encode(t)} for t in TEXTS],
        "decode_pieces": [{"pieces": p, "text": sp.decode_pieces(p)} for p in PIECES],
    }
with open("cases.json", "w", encoding="utf-8") as f:
    json.dump({"sentencepiece": sentencepiece.__version__, "models": cases}, f, ensure_ascii=False, indent=1)
