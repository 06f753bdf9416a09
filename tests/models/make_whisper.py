"""Tiny random Whisper models in the layouts of the real Hub repos, each with a CTranslate2 twin,
plus PyTorch + transformers references (seeded, deterministic).

  tiny-random/whisper-large-v3         openai/whisper-large-v3: 128 mel bins, 51866 tokens (<|yue|>),
                                       fp16 model.safetensors
  tiny-random/whisper-large-v3-turbo   openai/whisper-large-v3-turbo: as v3, 4 decoder layers
  tiny-random/distil-small.en          distil-whisper/distil-small.en: 80 mel bins, English-only
                                       (51864 tokens), fp16 model.safetensors, 2 decoder layers
  tiny-random/whisper-small            openai/whisper-small: 80 mel bins, multilingual (51865), f32
  tiny-random/faster-*                 the same weights converted by ct2-transformers-converter
                                       --quantization float16 (Systran/faster-whisper-* layout:
                                       model.bin, CTranslate2's config.json, vocabulary.json, and
                                       tokenizer.json + preprocessor_config.json copied)

Tokenizers are the real ones (the Systran copies of openai's tokenizer.json in the hubside cache,
see tests/fixtures/README.md): whisper-small's is the multilingual one as it is (no timestamp
tokens, like the Systran copies of openai's 2022 files); large-v3's inserts <|yue|> after <|su|>
(every later special token moves up by one, as in transformers' large-v3 tokenizer) and, like it,
adds the 1501 timestamp tokens <|0.00|>..<|30.00|>; distil-small.en's is the English one with the
timestamp tokens (distil-whisper's files are newer and have them). Files the loaders do not read
and that only repeat tokenizer.json (vocab.json, merges.txt, normalizer.json, added_tokens.json)
are left out to keep the fixtures small.

Weights: the token embedding is drawn with std 1 (transformers' 0.02 gives logits so close that
greedy margins fall below f32 noise); every weight is rounded to f16 first, so the f32
whisper-small and its f16 CTranslate2 twin hold the same numbers and share one reference.

Reference (per model, in the transformers folder's reference.json, valid for the twin too):
transformers `generate` (greedy) on tests/fixtures/audio/{jfk16,de16}.wav with the language and
task forced, no timestamps, max_new_tokens = max_target_positions // 2 (openai's sample_len,
hubside's per-window cap), plus, for multilingual models, one case with the language detected;
`min_margin` is the smallest top-1 / top-2 gap of the processed scores along the path. `log_mel`
holds WhisperFeatureExtractor(feature_size=n_mels) statistics and full frames. `tokenizer` holds
the BPE ids (no special tokens) of texts with Unicode, emoji, accents, whitespace runs, a long text
and the empty string.
usage: python make_whisper.py  (from tests/models; needs the real tokenizers in the hubside cache)
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import (WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                          WhisperTokenizerFast)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'fixtures')
OUT = os.path.join(FIXTURES, 'hub', 'tiny-random')
CACHE = os.path.join(os.environ.get('HUBSIDE_CACHE', os.path.expanduser('~/.cache/hubside')), 'hub', 'Systran')
MULTILINGUAL = os.path.join(CACHE, 'faster-whisper-base')
ENGLISH = os.path.join(CACHE, 'faster-whisper-tiny.en')
CONVERTER = os.path.join(os.path.dirname(sys.executable), 'ct2-transformers-converter')


def load_json(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def write_json(path, value, indent=2):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=indent, ensure_ascii=False)
        f.write('\n')


def timestamp_tokens(first_id):
    """The 1501 timestamp tokens as transformers adds them (AddedToken defaults: not special)."""
    return [{'id': first_id + i, 'content': '<|%.2f|>' % (i * 0.02), 'single_word': False, 'lstrip': False,
             'rstrip': False, 'normalized': True, 'special': False} for i in range(1501)]


def renumber_post_processor(tok):
    ids = {t['content']: t['id'] for t in tok['added_tokens']}
    for name, entry in tok['post_processor']['special_tokens'].items():
        entry['ids'] = [ids[t] for t in entry['tokens']]


def tokenizer_multilingual():
    return load_json(os.path.join(MULTILINGUAL, 'tokenizer.json'))


def tokenizer_v3():
    tok = tokenizer_multilingual()
    su = next(t['id'] for t in tok['added_tokens'] if t['content'] == '<|su|>')
    added = []
    for t in tok['added_tokens']:
        t = dict(t)
        if t['id'] > su:
            t['id'] += 1
        added.append(t)
        if t['content'] == '<|su|>':
            added.append(dict(t, id=su + 1, content='<|yue|>'))
    added += timestamp_tokens(added[-1]['id'] + 1)
    tok['added_tokens'] = added
    renumber_post_processor(tok)
    assert added[-1]['id'] == 51865, added[-1]
    return tok


def tokenizer_english():
    tok = load_json(os.path.join(ENGLISH, 'tokenizer.json'))
    tok['added_tokens'] = tok['added_tokens'] + timestamp_tokens(tok['added_tokens'][-1]['id'] + 1)
    assert tok['added_tokens'][-1]['id'] == 51863
    return tok


def suppress_tokens(source_config, shift_from=None):
    """openai's non-speech tokens + control tokens, as the real generation_config.json lists them
    (CTranslate2 copied them into the Systran config.json as suppress_ids)."""
    ids = load_json(os.path.join(source_config, 'config.json'))['suppress_ids']
    return [i + 1 if shift_from is not None and i >= shift_from else i for i in ids]


MODELS = [
    # name, ct2 twin, tokenizer, mel bins, d_model, encoder/decoder layers, heads, fp16 checkpoint, seed
    dict(name='whisper-large-v3', twin='faster-whisper-large-v3', tokenizer='v3', n_mels=128, d=32,
         enc=2, dec=2, heads=2, fp16=True, seed=3),
    dict(name='whisper-large-v3-turbo', twin='faster-whisper-large-v3-turbo', tokenizer='v3', n_mels=128, d=16,
         enc=2, dec=4, heads=2, fp16=True, seed=5),
    dict(name='distil-small.en', twin='faster-distil-whisper-small.en', tokenizer='en', n_mels=80, d=16,
         enc=2, dec=2, heads=2, fp16=True, seed=7),
    dict(name='whisper-small', twin='faster-whisper-small', tokenizer='multi', n_mels=80, d=16,
         enc=2, dec=2, heads=2, fp16=False, seed=11),
]
MAX_TARGET_POSITIONS = 64

TOKENIZER_TEXTS = [
    'And so, my fellow Americans: ask not what your country can do for you.',
    'Grüße aus Köln, ça va? Señor Ñandú — naïve façade',
    'Emoji 🎉🚀👩‍👩‍👧 and ♪ music ♪',
    '日本語のテキスト、中文字符，한국어 문장, Ελληνικά, русский текст, עברית, العربية',
    '   whitespace\t\truns  \n\n  and   trailing   ',
    '',
    ' '.join(['The quick brown fox jumps over the lazy dog.'] * 120),
]


def wav(name):
    import wave
    with wave.open(os.path.join(FIXTURES, 'audio', name)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype='<i2')
    return data.astype(np.float32) / 32768.0


def log_mel_reference(extractor, samples):
    feats = extractor(samples, sampling_rate=16000, return_tensors='np').input_features[0]
    loudest = np.argsort(-feats.mean(axis=0), kind='stable')[:3]
    frames = sorted({0, 1, 100, len(samples) // 160 - 1, 2999, *map(int, loudest)})
    return {
        'shape': list(feats.shape),
        'mean': float(feats.astype(np.float64).mean()),
        'std': float(feats.astype(np.float64).std()),
        'frame0_first8': [float(x) for x in feats[:8, 0]],
        'frame100_first8': [float(x) for x in feats[:8, 100]],
        'frames': {str(t): [float(x) for x in feats[:, t]] for t in frames},
    }


def save_model(spec, tok_json, out_dir):
    torch.manual_seed(spec['seed'])
    vocab = 51866 if spec['tokenizer'] == 'v3' else 51865 if spec['tokenizer'] == 'multi' else 51864
    added = {t['content']: t['id'] for t in tok_json['added_tokens']}
    eot, sot = added['<|endoftext|>'], added['<|startoftranscript|>']
    multilingual = spec['tokenizer'] != 'en'
    suppress = {'v3': suppress_tokens(MULTILINGUAL, shift_from=added.get('<|yue|>')),
                'multi': suppress_tokens(MULTILINGUAL), 'en': suppress_tokens(ENGLISH)}[spec['tokenizer']]
    config = WhisperConfig(
        vocab_size=vocab, num_mel_bins=spec['n_mels'], d_model=spec['d'],
        encoder_layers=spec['enc'], decoder_layers=spec['dec'],
        encoder_attention_heads=spec['heads'], decoder_attention_heads=spec['heads'],
        encoder_ffn_dim=4 * spec['d'], decoder_ffn_dim=4 * spec['d'],
        max_source_positions=1500, max_target_positions=MAX_TARGET_POSITIONS,
        bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        # openai/whisper-large-v3's config.json says 50256 (its generation_config.json 50257).
        pad_token_id=50256 if spec['tokenizer'] == 'v3' else eot,
        begin_suppress_tokens=[220, eot], suppress_tokens=suppress,
        architectures=['WhisperForConditionalGeneration'],
    )
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        # Unit-scale layers, so that the audio (through cross-attention) and every block move the
        # logits: with transformers' init_std 0.02 the token embedding alone decides.
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, fan_in ** -0.5)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1)
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.1)
        # Token embeddings small beside the blocks' outputs (else the tied projection repeats the
        # last token forever), positions large enough that each step differs.
        model.model.decoder.embed_tokens.weight.normal_(0.0, 0.3)
        model.model.decoder.embed_positions.weight.normal_(0.0, 1.0)
        # Wider logits (the final norm's gain scales them) keep greedy margins clear of f32 noise.
        model.model.decoder.layer_norm.weight.normal_(4.0, 0.4)
        for p in model.parameters():
            p.copy_(p.half().float())
    languages = [t for t in tok_json['added_tokens'] if sot < t['id'] < added['<|translate|>']]
    generation = {
        'alignment_heads': [[spec['dec'] - 1, h] for h in range(spec['heads'])],
        'begin_suppress_tokens': [220, eot],
        'bos_token_id': eot,
        'decoder_start_token_id': sot,
        'eos_token_id': eot,
        'is_multilingual': multilingual,
        'max_initial_timestamp_index': 50,
        'max_length': MAX_TARGET_POSITIONS,
        'no_timestamps_token_id': added['<|notimestamps|>'],
        'pad_token_id': eot,
        'prev_sot_token_id': added['<|startofprev|>'],
        'return_timestamps': False,
        'suppress_tokens': suppress,
    }
    if multilingual:
        generation['lang_to_id'] = {t['content']: t['id'] for t in languages}
        generation['task_to_id'] = {'transcribe': added['<|transcribe|>'], 'translate': added['<|translate|>']}
    model.generation_config = transformers.GenerationConfig(**generation)
    if spec['fp16']:
        model = model.half()
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    saved = load_json(os.path.join(out_dir, 'generation_config.json'))
    assert saved['suppress_tokens'] == suppress and saved['begin_suppress_tokens'] == [220, eot], saved
    write_json(os.path.join(out_dir, 'tokenizer.json'), tok_json, indent=None)
    # tokenizer_config.json and special_tokens_map.json as transformers writes them.
    tokenizer = WhisperTokenizerFast(tokenizer_file=os.path.join(out_dir, 'tokenizer.json'),
                                     model_max_length=1024, unk_token='<|endoftext|>', bos_token='<|endoftext|>',
                                     eos_token='<|endoftext|>', pad_token='<|endoftext|>')
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        for f in ['tokenizer_config.json', 'special_tokens_map.json']:
            shutil.copy(os.path.join(tmp, f), os.path.join(out_dir, f))
    WhisperFeatureExtractor(feature_size=spec['n_mels']).save_pretrained(out_dir)


def convert(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    subprocess.run([CONVERTER, '--model', src, '--output_dir', dst, '--quantization', 'float16',
                    '--copy_files', 'tokenizer.json', 'preprocessor_config.json'], check=True)


def margins(scores):
    out = []
    for s in scores:
        top = torch.topk(s[0].float(), 2).values
        out.append(float(top[0] - top[1]))
    return out


def reference(spec, out_dir):
    model = WhisperForConditionalGeneration.from_pretrained(out_dir, torch_dtype=torch.float32).eval()
    tokenizer = WhisperTokenizerFast.from_pretrained(out_dir)
    extractor = WhisperFeatureExtractor.from_pretrained(out_dir)
    n_text_ctx = model.config.max_target_positions
    max_new = n_text_ctx // 2
    multilingual = spec['tokenizer'] != 'en'
    runs = [('jfk16.wav', 'en', 'transcribe'), ('de16.wav', 'de', 'translate' if multilingual else 'transcribe')]
    if multilingual:
        runs += [('de16.wav', None, 'transcribe')]
    cases = []
    for audio, language, task in runs:
        samples = wav(audio)
        features = extractor(samples, sampling_rate=16000, return_tensors='pt').input_features
        kwargs = dict(max_new_tokens=max_new, do_sample=False, num_beams=1, return_dict_in_generate=True,
                      output_scores=True, return_timestamps=False)
        if multilingual:
            kwargs['task'] = task
            if language:
                kwargs['language'] = language
        with torch.no_grad():
            out = model.generate(features, **kwargs)
            encoded = model.model.encoder(features).last_hidden_state
            sot = model.generation_config.decoder_start_token_id
            first = model(encoder_outputs=(encoded,), decoder_input_ids=torch.tensor([[sot]])).logits[0, -1]
        sequence = out.sequences[0].tolist()
        generated_count = len(out.scores)
        prompt = sequence[:len(sequence) - generated_count]
        generated = sequence[len(prompt):]
        print('   ', generated)
        eot = model.generation_config.eos_token_id
        if generated and generated[-1] == eot:
            generated = generated[:-1]
        case = {'audio': audio, 'task': task, 'prompt_ids': prompt, 'generated_ids': generated,
                'text': tokenizer.decode(generated, skip_special_tokens=True),
                'min_margin': min(margins(out.scores))}
        probs = torch.softmax(first, -1)
        no_speech = tokenizer.convert_tokens_to_ids('<|nocaptions|>')
        case['no_speech_prob'] = float(probs[no_speech])
        if multilingual:
            lang_ids = sorted(model.generation_config.lang_to_id.values())
            lang_logits = first[lang_ids]
            top = torch.topk(lang_logits, 2)
            detected = tokenizer.convert_ids_to_tokens(lang_ids[int(top.indices[0])])[2:-2]
            case['language'] = language or detected
            case['language_detected'] = language is None
            case['language_margin'] = float(top.values[0] - top.values[1])
            assert prompt[1] == model.generation_config.lang_to_id[f'<|{case["language"]}|>'], (prompt, case['language'])
        else:
            case['language'] = 'en'
            case['language_detected'] = False
        case['log_mel'] = log_mel_reference(extractor, samples)
        cases.append(case)
        print(f"  {spec['name']} {audio} {language}->{case['language']} {task}: prompt {prompt}, {len(generated)} ids, "
              f"margin {case['min_margin']:.4f}, no_speech {case['no_speech_prob']:.2e}, text {case['text'][:40]!r}")
        assert case['min_margin'] > 1e-3 and len(generated) >= 4 and case['no_speech_prob'] < 0.5, \
            {k: v for k, v in case.items() if k != 'log_mel'}
    texts = []
    for text in TOKENIZER_TEXTS:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        texts.append({'text': text, 'ids': ids, 'decoded': tokenizer.decode(ids)})
    return {
        'reference': {'torch': torch.__version__, 'transformers': transformers.__version__,
                      'tokenizers': __import__('tokenizers').__version__},
        'task': 'automatic-speech-recognition',
        'decoding': (f'transformers generate, greedy, no timestamps, max_new_tokens = max_target_positions // 2 = {max_new}; '
                     'generated_ids exclude the prompt and a final <|endoftext|>; text = decode(skip_special_tokens)'),
        'n_mels': model.config.num_mel_bins,
        'vocab_size': model.config.vocab_size,
        'multilingual': multilingual,
        'cases': cases,
        'tokenizer': texts,
    }


def main():
    tokenizers = {'v3': tokenizer_v3(), 'multi': tokenizer_multilingual(), 'en': tokenizer_english()}
    for spec in MODELS:
        out_dir = os.path.join(OUT, spec['name'])
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        save_model(spec, copy.deepcopy(tokenizers[spec['tokenizer']]), out_dir)
        ref = reference(spec, out_dir)
        write_json(os.path.join(out_dir, 'reference.json'), ref, indent=1)
        convert(out_dir, os.path.join(OUT, spec['twin']))


if __name__ == '__main__':
    main()
