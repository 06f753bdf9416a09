"""Word-timestamp references from openai-whisper on the real test weights.

usage: make_whisper_words.py [HUB_DIR]   (HUB_DIR: $HUBSIDE_CACHE/hub, default ~/.cache/hubside/hub)

For Systran/faster-whisper-{tiny.en,base} (CTranslate2, f16; scripts/fetch-whisper.sh): convert
to the transformers layout with ../shared/tools/ct2_to_hf.py (copied next to this script's
caller: /work/shared/tools or $CT2_TO_HF), rename the tensors into openai-whisper's checkpoint
names, load them into `whisper.model.Whisper` with the CTranslate2 config's alignment heads, and
run `whisper.transcribe(..., word_timestamps=True, temperature=0.0, condition_on_previous_text=False)`
(greedy only and each window on its own, as hubside's transcriber decodes today; its defaults
otherwise: no-speech and log-probability thresholds; fp16=False on the CPU). With the previous
text as prompt, openai's tiny.en hallucinates the phrase once more in the 64 s clip's trailing
silence. Writes
tests/fixtures/whisper/words.reference.json, and tests/fixtures/whisper/alignment_heads.json:
openai's `_ALIGNMENT_HEADS` (base85 + gzip boolean masks) decoded into [layer, head] lists per
model name, which src/whisper/alignment.rs's table copies.

Pinned versions: tests/models/requirements.txt (openai-whisper 20250625, torch 2.8.0). Deterministic:
greedy decoding at temperature 0 only (with openai's default fallback, base's German transcript of
de16.wav falls back to temperature 1.0 sampling).
"""
import base64, gzip, importlib.util, json, os, sys, tempfile, wave

import numpy as np
import torch
import whisper
from whisper.model import ModelDimensions, Whisper

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'fixtures')
CT2_TO_HF = os.environ.get('CT2_TO_HF', os.path.join(HERE, '..', '..', '..', 'shared', 'tools', 'ct2_to_hf.py'))

# (model, clip, language, task, repeat): the clip `repeat` times, each followed by 5 s of digital
# silence when repeated (64 s: several windows, as tests/whisper.rs's long-audio test builds it).
CASES = [
    ('tiny.en', 'jfk16.wav', 'en', 'transcribe', 1),
    ('base', 'jfk16.wav', 'en', 'transcribe', 1),
    ('base', 'de16.wav', 'de', 'transcribe', 1),
    ('base', 'de16.wav', 'de', 'translate', 1),
    ('tiny.en', 'jfk16.wav', 'en', 'transcribe', 4),
]
SILENCE_SECONDS = 5


def load_converter():
    spec = importlib.util.spec_from_file_location('ct2_to_hf', CT2_TO_HF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hf_to_openai(hf):
    """transformers WhisperForConditionalGeneration names -> openai-whisper checkpoint names."""
    out = {}
    for side in ('encoder', 'decoder'):
        p = f'model.{side}.'
        n = len({k.split('.')[3] for k in hf if k.startswith(p + 'layers.')})
        for i in range(n):
            src, dst = f'{p}layers.{i}.', f'{side}.blocks.{i}.'
            attns = [('self_attn', 'attn')] + ([('encoder_attn', 'cross_attn')] if side == 'decoder' else [])
            for a, b in attns:
                for x, y in [('q_proj', 'query'), ('k_proj', 'key'), ('v_proj', 'value'), ('out_proj', 'out')]:
                    out[f'{dst}{b}.{y}.weight'] = hf[f'{src}{a}.{x}.weight']
                    if f'{src}{a}.{x}.bias' in hf and x != 'k_proj':
                        out[f'{dst}{b}.{y}.bias'] = hf[f'{src}{a}.{x}.bias']
                for t in ('weight', 'bias'):
                    out[f'{dst}{b}_ln.{t}'] = hf[f'{src}{a}_layer_norm.{t}']
            for t in ('weight', 'bias'):
                out[f'{dst}mlp.0.{t}'] = hf[f'{src}fc1.{t}']
                out[f'{dst}mlp.2.{t}'] = hf[f'{src}fc2.{t}']
                out[f'{dst}mlp_ln.{t}'] = hf[f'{src}final_layer_norm.{t}']
    for t in ('weight', 'bias'):
        out[f'encoder.conv1.{t}'] = hf[f'model.encoder.conv1.{t}']
        out[f'encoder.conv2.{t}'] = hf[f'model.encoder.conv2.{t}']
        out[f'encoder.ln_post.{t}'] = hf[f'model.encoder.layer_norm.{t}']
        out[f'decoder.ln.{t}'] = hf[f'model.decoder.layer_norm.{t}']
    out['encoder.positional_embedding'] = hf['model.encoder.embed_positions.weight']
    out['decoder.positional_embedding'] = hf['model.decoder.embed_positions.weight']
    out['decoder.token_embedding.weight'] = hf['model.decoder.embed_tokens.weight']
    return out


def load_openai(ct2_dir, work):
    from safetensors.torch import load_file
    load_converter().convert(ct2_dir, work)
    hf = load_file(os.path.join(work, 'model.safetensors'))
    cfg = json.load(open(os.path.join(work, 'config.json')))
    state = hf_to_openai(hf)
    dims = ModelDimensions(
        n_mels=cfg['num_mel_bins'], n_audio_ctx=cfg['max_source_positions'], n_audio_state=cfg['d_model'],
        n_audio_head=cfg['encoder_attention_heads'], n_audio_layer=cfg['encoder_layers'], n_vocab=cfg['vocab_size'],
        n_text_ctx=cfg['max_target_positions'], n_text_state=cfg['d_model'],
        n_text_head=cfg['decoder_attention_heads'], n_text_layer=cfg['decoder_layers'])
    model = Whisper(dims)
    model.load_state_dict(state, strict=True)
    heads = json.load(open(os.path.join(ct2_dir, 'config.json')))['alignment_heads']
    mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    model.register_buffer('alignment_heads', mask.to_sparse(), persistent=False)
    return model.eval(), heads


def read_wav(path):
    with wave.open(path) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), path
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    return pcm.astype(np.float32) / 32768.0


def decoded_alignment_heads():
    """openai's _ALIGNMENT_HEADS (base85-encoded gzip of a boolean (layers, heads) mask) as lists."""
    dims = {  # (n_text_layer, n_text_head) per name (openai's model card)
        'tiny': (4, 6), 'base': (6, 8), 'small': (12, 12), 'medium': (24, 16), 'large': (32, 20), 'turbo': (4, 20)}
    out = {}
    for name, dump in whisper._ALIGNMENT_HEADS.items():
        family = name.split('.')[0].split('-')[0]
        if name.startswith('large-v3-turbo'):
            family = 'turbo'
        layers, heads = dims[family]
        array = np.frombuffer(gzip.decompress(base64.b85decode(dump)), dtype=bool).reshape(layers, heads)
        out[name] = [[int(l), int(h)] for l, h in zip(*np.nonzero(array))]
    return out


def main():
    hub = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser('~/.cache/hubside/hub')
    torch.manual_seed(0)
    table = decoded_alignment_heads()
    with open(os.path.join(FIXTURES, 'whisper', 'alignment_heads.json'), 'w') as f:
        json.dump(table, f, indent=1)
        f.write('\n')
    models, cases = {}, []
    for name, clip, language, task, repeat in CASES:
        if name not in models:
            work = tempfile.mkdtemp(prefix=f'words-{name}-')
            models[name] = load_openai(os.path.join(hub, 'Systran', f'faster-whisper-{name}'), work)
            assert models[name][1] == table[name], (name, models[name][1], table[name])
        model, _ = models[name]
        audio = read_wav(os.path.join(FIXTURES, 'audio', clip))
        if repeat > 1:
            audio = np.concatenate([audio, np.zeros(16000 * SILENCE_SECONDS, np.float32)] * repeat)
        result = whisper.transcribe(model, audio, language=language, task=task, word_timestamps=True,
                                    temperature=0.0, condition_on_previous_text=False, fp16=False, verbose=None)
        cases.append({
            'model': f'Systran/faster-whisper-{name}', 'audio': clip, 'language': language, 'task': task, 'repeat': repeat,
            'silence_after': SILENCE_SECONDS if repeat > 1 else 0,
            'text': result['text'],
            'segments': [{
                'start': s['start'], 'end': s['end'], 'text': s['text'], 'tokens': s['tokens'],
                'temperature': s['temperature'],
                'words': [{'word': w['word'], 'start': w['start'], 'end': w['end'],
                           'probability': round(float(w['probability']), 4)} for w in s['words']],
            } for s in result['segments']],
        })
    out = {
        'reference': {'openai-whisper': whisper.__version__, 'torch': torch.__version__},
        'call': "whisper.transcribe(model, audio, language=LANG, task=TASK, word_timestamps=True, temperature=0.0, condition_on_previous_text=False, fp16=False)",
        'alignment_heads': 'the CTranslate2 config.json alignment_heads (equal to openai _ALIGNMENT_HEADS)',
        'cases': cases,
    }
    with open(os.path.join(FIXTURES, 'whisper', 'words.reference.json'), 'w') as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write('\n')


if __name__ == '__main__':
    main()
