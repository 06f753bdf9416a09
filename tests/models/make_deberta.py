"""Tiny random DeBERTa-v2/v3 sequence classifiers in the Hub layout of microsoft/deberta-v3-base
fine-tunes (config.json, model.safetensors, spm.model, tokenizer_config.json; no tokenizer.json),
plus reference.json from PyTorch + transformers. Two variants, so that both code paths are checked:

- deberta-v3-sentiment: the v3 config (relative attention with log-bucketed positions, shared
  attention keys, layer-normed relative embeddings, p2c + c2p, no absolute positions), 3 labels.
- deberta-v3-sentiment-saved: the same model as a fine-tune pushed with transformers'
  save_pretrained ships it: tokenizer.json and the full tokenizer_config.json next to spm.model.
- deberta-v2-style: the older v2 options (absolute positions added to the input, c2p|p2c given as a
  string, separate position projections, no buckets, a relative span shorter than the inputs,
  an embedding size projected to the hidden size, token types, tanh pooler, the convolution of
  deberta-v2-xlarge), 2 labels, with a lower-casing, punctuation-splitting tokenizer config.

The SentencePiece model is trained like DeBERTa-v3's: unigram, [PAD]=0, [CLS]=1, [SEP]=2,
[UNK]=3, nmt_nfkc normalisation; [MASK] is added by the tokenizer after the pieces.
"""

import io
import json
import os
import shutil

import sentencepiece as spm
import tokenizers
import torch
import transformers
from transformers import (
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    DebertaV2Tokenizer,
    DebertaV2TokenizerFast,
)

HERE = os.path.dirname(os.path.abspath(__file__))
HUB = os.path.join(HERE, "..", "fixtures", "hub", "tiny-random")
MAX_LENGTH = 512

TEXTS = [
    "I love this movie, it was wonderful!",
    "This is the worst film I have ever seen.",
    "It was okay.",
    "",
    "Café déjà vu — naïve résumé, 東京, emoji 😀👍",
    "THE PLOT WAS NOT BAD AT ALL!!!",
    "   leading, trailing   and\tinner\n\nwhitespace   runs   ",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ and ligatures ﬁ ﬂ, Ångström, Straße",
    "Русский текст, ελληνικά, עברית, العربية, हिन्दी",
    "a [MASK] token and [CLS] [SEP] inside the text",
    "[UNK] or [unk], [Mask] [PAD]",
    "emoji only 🙂🙃🤖👩‍👩‍👧 ✨",
    # Long inputs: truncated to 512 tokens, so relative positions reach far beyond the exact
    # buckets (and the v2 variant's relative span).
    "The licence grants you the right to use, copy and modify the work. " * 60,
    "Ünïcödé ẞ ﬀ 😀 " * 200,
]


def train_spm(directory):
    # Relative paths: the trainer writes them into the model (trainer_spec), which should not
    # depend on where the repository is checked out.
    cwd = os.getcwd()
    os.chdir(directory)
    spm.SentencePieceTrainer.train(
        input=os.path.relpath(os.path.join(HERE, "corpus.txt")),
        model_prefix="spm",
        model_type="unigram",
        vocab_size=800,
        character_coverage=0.9995,
        normalization_rule_name="nmt_nfkc",
        pad_id=0,
        pad_piece="[PAD]",
        bos_id=1,
        bos_piece="[CLS]",
        eos_id=2,
        eos_piece="[SEP]",
        unk_id=3,
        unk_piece="[UNK]",
        seed_sentencepiece_size=20000,
        num_threads=1,
        minloglevel=2,
    )
    os.remove("spm.vocab")
    os.chdir(cwd)


def randomise(model, seed):
    """Weights larger than the 0.02 initialisation, LayerNorms not 1/0: outputs then depend on
    every parameter, and logits are far apart."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "LayerNorm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.2 * torch.randn(parameter.shape, generator=generator))
            elif name.endswith("bias") or "LayerNorm" in name:
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))


def make(name, config_kwargs, tokenizer_config, labels, seed, saved_by_transformers=False):
    """saved_by_transformers: the layout of fine-tunes pushed with transformers' save_pretrained
    (tokenizer.json, the full tokenizer_config.json, special_tokens_map.json, added_tokens.json
    next to spm.model) rather than microsoft/deberta-v3-base's spm.model + two-key config."""
    out = os.path.join(HUB, name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    train_spm(out)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config, f, indent=2)
        f.write("\n")

    slow = DebertaV2Tokenizer.from_pretrained(out)
    fast = DebertaV2TokenizerFast.from_pretrained(out)
    if saved_by_transformers:
        fast.save_pretrained(out)
        fast = DebertaV2TokenizerFast.from_pretrained(out)
        assert os.path.exists(os.path.join(out, "tokenizer.json"))
    # DeBERTa-v3's vocab_size (128100) leaves room past the pieces and [MASK] (128000).
    vocab_size = len(slow) + 7

    torch.manual_seed(seed)
    config = DebertaV2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        id2label={i: label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
        **config_kwargs,
    )
    config.architectures = ["DebertaV2ForSequenceClassification"]
    model = DebertaV2ForSequenceClassification(config).eval()
    randomise(model, seed)
    model.save_pretrained(out, safe_serialization=True)

    cases = []
    for text in TEXTS:
        # The fast tokenizer is what AutoTokenizer and pipeline() load (and what transformers.js
        # reads from a converted tokenizer.json); the slow one must agree except where
        # transformers itself makes them differ (split_by_punct next to whitespace: the slow
        # tokenizer encodes each punctuation-split word on its own, with its own "▁" prefix).
        ids = fast(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        slow_ids = slow(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        if not tokenizer_config.get("split_by_punct"):
            assert ids == slow_ids, f"{name}: slow and fast tokenizers differ on {text!r}:\n{slow_ids}\n{ids}"
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        scores = torch.softmax(logits, dim=-1)
        ranked = sorted(logits.tolist(), reverse=True)
        cases.append(
            {
                "text": text,
                "input_ids": ids,
                "logits": logits.tolist(),
                "scores": scores.tolist(),
                "label": labels[int(torch.argmax(logits))],
                "margin": ranked[0] - ranked[1],
            }
        )
        if slow_ids != ids:
            cases[-1]["slow_input_ids"] = slow_ids
    reference = {
        "reference": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "sentencepiece": spm.__version__,
        },
        "task": "text-classification",
        "truncation": "inputs longer than max_position_embeddings are truncated to it (special tokens included)",
        "tokenizer": "input_ids: DebertaV2TokenizerFast (AutoTokenizer's choice); slow_input_ids where DebertaV2Tokenizer differs",
        "cases": cases,
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(name, "vocab", vocab_size, "margins", [round(c["margin"], 4) for c in cases])


make(
    "deberta-v3-sentiment",
    dict(
        relative_attention=True,
        position_biased_input=False,
        pos_att_type=["p2c", "c2p"],
        position_buckets=256,
        max_relative_positions=-1,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        type_vocab_size=0,
        layer_norm_eps=1e-7,
        hidden_act="gelu",
        pooler_hidden_size=32,
        pooler_hidden_act="gelu",
        pooler_dropout=0,
    ),
    # As microsoft/deberta-v3-base ships it.
    {"do_lower_case": False, "vocab_type": "spm"},
    ["negative", "neutral", "positive"],
    seed=11,
)

make(
    "deberta-v3-sentiment-saved",
    dict(
        relative_attention=True,
        position_biased_input=False,
        pos_att_type=["p2c", "c2p"],
        position_buckets=256,
        max_relative_positions=-1,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        type_vocab_size=0,
        layer_norm_eps=1e-7,
        hidden_act="gelu",
        pooler_hidden_size=32,
        pooler_hidden_act="gelu",
        pooler_dropout=0,
    ),
    # As microsoft/deberta-v3-base ships it.
    {"do_lower_case": False, "vocab_type": "spm"},
    ["negative", "neutral", "positive"],
    seed=11,
    saved_by_transformers=True,
)

make(
    "deberta-v2-style",
    dict(
        relative_attention=True,
        position_biased_input=True,
        pos_att_type="c2p|p2c",
        max_relative_positions=64,
        share_att_key=False,
        embedding_size=24,
        type_vocab_size=2,
        layer_norm_eps=1e-7,
        hidden_act="gelu",
        pooler_hidden_size=32,
        pooler_hidden_act="tanh",
        pooler_dropout=0,
        # deberta-v2-xlarge's convolution after the first layer (real configs: kernel 3, gelu,
        # one group; two groups here check the grouped weights too).
        conv_kernel_size=3,
        conv_groups=2,
        conv_act="gelu",
    ),
    {"do_lower_case": True, "split_by_punct": True, "vocab_type": "spm"},
    ["NEGATIVE", "POSITIVE"],
    seed=12,
)
