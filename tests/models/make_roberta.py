"""Tiny random RoBERTa / XLM-RoBERTa sequence classifiers in the layouts of the Hub repos they stand for.

- tiny-random/roberta-sentiment: cardiffnlp/twitter-roberta-base-sentiment-latest (byte-level BPE
  vocab.json + merges.txt, no tokenizer.json / tokenizer_config.json, pytorch_model.bin, labels
  negative/neutral/positive).
- tiny-random/roberta-go-emotions: SamLowe/roberta-base-go_emotions (the same tokenizer files plus
  tokenizer.json and tokenizer_config.json, model.safetensors, problem_type
  multi_label_classification with its 28 labels: sigmoid per label).
- tiny-random/xlm-roberta-sentiment: cardiffnlp/twitter-xlm-roberta-base-sentiment
  (sentencepiece.bpe.model only, a unigram model as XLM-R's real file is despite its name; fairseq
  id offsets; pytorch_model.bin, labels negative/neutral/positive).

Tokenizers are trained on corpus.txt. Reference ids come from the slow Python tokenizers
(RobertaTokenizer, XLMRobertaTokenizer), which the real repos without tokenizer.json load as; the
script asserts that the fast ones agree where a repo has tokenizer.json. Inputs are truncated to
max_position_embeddings - 2 (RoBERTa's position ids start at padding_idx + 1), special tokens
included, as `tokenizer(text, truncation=True, max_length=...)` does.

Run with scripts/make-test-models.sh roberta (pinned versions in requirements.txt).
"""

import io
import json
import os
import shutil
import tempfile

import sentencepiece as spm
import tokenizers
import torch
import transformers
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaTokenizer,
    RobertaTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    XLMRobertaTokenizer,
)

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus.txt")
OUT = os.path.join(HERE, "..", "fixtures", "hub", "tiny-random")

# Real RoBERTa checkpoints: 514 positions (512 tokens + padding_idx 1 + the unused row 0).
MAX_POSITIONS = 514
MAX_LENGTH = MAX_POSITIONS - 2

TEXTS = [
    "I love this movie, it was wonderful!",
    "This is the worst film I have ever seen.",
    "It was okay.",
    "",
    " ",
    "Café déjà vu — naïve résumé, 東京, emoji 😀👍",
    "THE PLOT WAS NOT BAD AT ALL!!!",
    "  leading and trailing spaces,\ttabs\tand\nnewlines   inside  ",
    "Привет, мир! Γειά σου κόσμε. مرحبا بالعالم",
    "@user https://example.com #hashtag 🤗🤗 don't won't it's",
    "ﬁne ﬂowers ½ ｆｕｌｌｗｉｄｔｈ Å Å",
    "special tokens in text: a <mask> b</s>c <s>d <pad> <unk>",
    "the licence terms and conditions apply " * 120,
]

GO_EMOTIONS = [
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
    "remorse", "sadness", "surprise", "neutral",
]
SENTIMENT = ["negative", "neutral", "positive"]


def fresh(name):
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def tiny_config(cls, vocab_size, labels, **extra):
    return cls(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        initializer_range=0.5,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **extra,
    )


def random_model(cls, config, seed):
    torch.manual_seed(seed)
    model = cls(config).eval()
    # Random LayerNorm parameters and biases too, so that every weight matters to the logits.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                param.add_(torch.randn_like(param) * 0.2)
    return model


def write_reference(path, model, tokenizer, score_fn, extra):
    cases = []
    for text in TEXTS:
        enc = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0]
        scores = torch.sigmoid(logits) if score_fn == "sigmoid" else torch.softmax(logits, -1)
        label = model.config.id2label[int(scores.argmax())]
        ranked = sorted(scores.tolist(), reverse=True)
        cases.append({
            "text": text,
            "input_ids": enc["input_ids"][0].tolist(),
            "logits": [round(v, 6) for v in logits.tolist()],
            "scores": [round(v, 6) for v in scores.tolist()],
            "label": label,
            "top_margin": round(ranked[0] - ranked[1], 6),
        })
    reference = {
        "reference": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "sentencepiece": spm.__version__,
        },
        "task": "text-classification",
        "truncation": f"tokenizer(text, truncation=True, max_length={MAX_LENGTH}): max_position_embeddings - 2, special tokens included",
        "scores": score_fn,
        **extra,
        "cases": cases,
    }
    with open(os.path.join(path, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, indent=1, ensure_ascii=False)
        f.write("\n")


def byte_level_bpe(workdir):
    """vocab.json + merges.txt as RoBERTa ships them: <s> <pad> </s> <unk> first, <mask> last."""
    trainer = ByteLevelBPETokenizer()
    trainer.train([CORPUS], vocab_size=700, min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    trainer.save_model(workdir)
    vocab_path = os.path.join(workdir, "vocab.json")
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    vocab["<mask>"] = len(vocab)
    with open(vocab_path, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    return len(vocab)


def special_tokens_map(path, mask_lstrip):
    # As the real repos' special_tokens_map.json: <mask> strips the space before it.
    tokens = {name: token for name, token in [
        ("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>"), ("sep_token", "</s>"),
        ("pad_token", "<pad>"), ("cls_token", "<s>")]}
    tokens["mask_token"] = {"content": "<mask>", "single_word": False, "lstrip": mask_lstrip,
                            "rstrip": False, "normalized": False}
    with open(os.path.join(path, "special_tokens_map.json"), "w") as f:
        json.dump(tokens, f)


def roberta(workdir):
    vocab_size = byte_level_bpe(workdir)
    slow = RobertaTokenizer(os.path.join(workdir, "vocab.json"), os.path.join(workdir, "merges.txt"))
    fast = RobertaTokenizerFast(os.path.join(workdir, "vocab.json"), os.path.join(workdir, "merges.txt"))
    for text in TEXTS:
        a = slow(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        b = fast(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        assert a == b, (text, a, b)

    path = fresh("roberta-sentiment")
    for name in ["vocab.json", "merges.txt"]:
        shutil.copy(os.path.join(workdir, name), path)
    special_tokens_map(path, True)
    config = tiny_config(RobertaConfig, vocab_size, SENTIMENT)
    model = random_model(RobertaForSequenceClassification, config, 1)
    model.save_pretrained(path, safe_serialization=False)
    write_reference(path, model, slow, "softmax", {"tokenizer": "RobertaTokenizer (slow) from vocab.json + merges.txt; RobertaTokenizerFast gives the same ids"})

    path = fresh("roberta-go-emotions")
    fast.save_pretrained(path)
    # Only the files SamLowe/roberta-base-go_emotions ships.
    for name in os.listdir(path):
        if name not in {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}:
            os.remove(os.path.join(path, name))
    config = tiny_config(RobertaConfig, vocab_size, GO_EMOTIONS, problem_type="multi_label_classification")
    model = random_model(RobertaForSequenceClassification, config, 2)
    model.save_pretrained(path)
    reloaded = transformers.AutoTokenizer.from_pretrained(path)
    assert reloaded.is_fast
    write_reference(path, model, reloaded, "sigmoid", {"tokenizer": "tokenizer.json (RobertaTokenizerFast)"})


def xlm_roberta(workdir):
    # The real sentencepiece.bpe.model is a unigram model (trainer_spec.model_type 1) with the
    # nmt_nfkc normalisation rules and spm's default <unk>=0, <s>=1, </s>=2. Trained from an
    # iterator into memory so that no temporary path ends up in the model's trainer_spec.
    model = io.BytesIO()
    with open(CORPUS, encoding="utf-8") as f:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(f.read().splitlines()),
            model_writer=model,
            vocab_size=600,
            model_type="unigram",
            character_coverage=0.995,
            normalization_rule_name="nmt_nfkc",
            seed_sentencepiece_size=10000,
            num_threads=1,
            minloglevel=2,
        )
    path = fresh("xlm-roberta-sentiment")
    with open(os.path.join(path, "sentencepiece.bpe.model"), "wb") as f:
        f.write(model.getvalue())
    special_tokens_map(path, True)
    slow = XLMRobertaTokenizer(os.path.join(path, "sentencepiece.bpe.model"))
    config = tiny_config(XLMRobertaConfig, len(slow), SENTIMENT)
    model = random_model(XLMRobertaForSequenceClassification, config, 3)
    model.save_pretrained(path, safe_serialization=False)
    write_reference(path, model, slow, "softmax", {"tokenizer": "XLMRobertaTokenizer (slow, sentencepiece) from sentencepiece.bpe.model"})


def main():
    with tempfile.TemporaryDirectory() as workdir:
        roberta(workdir)
        xlm_roberta(workdir)
    # save_pretrained writes model.safetensors owner-only; fixtures are plain readable files.
    for name in ["roberta-sentiment", "roberta-go-emotions", "xlm-roberta-sentiment"]:
        for file in os.listdir(os.path.join(OUT, name)):
            os.chmod(os.path.join(OUT, name, file), 0o644)


if __name__ == "__main__":
    main()
