"""Seeded random models of real sizes for issue 11's benchmarks, in the original Hub layouts, under
/tmp/peer/hf/ (hubside only: no ONNX exports exist for them here). Random weights: the outputs are
meaningless, the times and memory are those of the real architectures.
  roberta-base-random: RobertaForSequenceClassification shaped like cardiffnlp/twitter-roberta-base-sentiment-latest
      (hidden 768, 12 layers, 12 heads, ffn 3072, vocab 50265, 514 positions, 3 labels); vocab.json + merges.txt
      (no tokenizer.json, as that repo) made from GPT-2's byte-level BPE in Whisper's tokenizer.json, which is the
      vocabulary RoBERTa uses, with fairseq's four specials first.
  nllb-600m-random: M2M100ForConditionalGeneration shaped like facebook/nllb-200-distilled-600M (d 1024, 12+12
      layers, 16 heads, ffn 4096, vocab 256206); the tiny NLLB fixture's tokenizer.json with its vocabulary padded
      to 256206 entries, its language codes moved to NLLB's ids.
  whisper-large-v3-turbo-random: WhisperForConditionalGeneration shaped like openai/whisper-large-v3-turbo
      (d 1280, 32 encoder + 4 decoder layers, 20 heads, 128 mel bins, vocab 51866), fp16 safetensors, the tiny
      large-v3 fixture's tokenizer files.
usage: make_issue11_models.py [roberta] [nllb] [turbo]     (uses the pinned tests/models/requirements.txt)"""
import json, os, shutil, sys
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, '..', '..', 'tests', 'fixtures', 'hub', 'tiny-random')
CACHE = os.environ.get('HUBSIDE_CACHE', os.path.expanduser('~/.cache/hubside'))
OUT = '/tmp/peer/hf'


def roberta():
    from transformers import RobertaConfig, RobertaForSequenceClassification
    d = f'{OUT}/roberta-base-random'
    os.makedirs(d, exist_ok=True)
    gpt2 = json.load(open(f'{CACHE}/hub/Systran/faster-whisper-base/tokenizer.json'))['model']
    vocab = {'<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3}
    for token, i in sorted(gpt2['vocab'].items(), key=lambda kv: kv[1]):
        if token not in vocab and len(vocab) < 50264:
            vocab[token] = len(vocab)
    vocab['<mask>'] = 50264
    merges = [m if isinstance(m, str) else ' '.join(m) for m in gpt2['merges']]
    merges = [m for m in merges if all(p in vocab for p in m.split(' ')) and m.replace(' ', '') in vocab]
    json.dump(vocab, open(f'{d}/vocab.json', 'w'), ensure_ascii=False)
    open(f'{d}/merges.txt', 'w').write('#version: 0.2\n' + '\n'.join(merges) + '\n')
    json.dump({'tokenizer_class': 'RobertaTokenizer', 'model_max_length': 512, 'bos_token': '<s>', 'eos_token': '</s>',
               'unk_token': '<unk>', 'sep_token': '</s>', 'cls_token': '<s>', 'pad_token': '<pad>', 'mask_token': '<mask>'},
              open(f'{d}/tokenizer_config.json', 'w'), indent=2)
    torch.manual_seed(0)
    labels = ['negative', 'neutral', 'positive']
    cfg = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                        max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
                        eos_token_id=2, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    m = RobertaForSequenceClassification(cfg).eval()
    m.save_pretrained(d, safe_serialization=True)
    print('roberta params', sum(p.numel() for p in m.parameters()))


def nllb():
    from transformers import M2M100Config, M2M100ForConditionalGeneration
    d = f'{OUT}/nllb-600m-random'
    os.makedirs(d, exist_ok=True)
    tiny = f'{FIX}/nllb'
    tok = json.load(open(f'{tiny}/tokenizer.json'))
    vocab = tok['model']['vocab']
    # NLLB's layout: 256001 pieces (fairseq specials + SentencePiece), then the language codes, then <mask>.
    pieces = len(vocab)
    for i in range(pieces, 256001):
        vocab[f'<dummy_{i}>'] = i
    moved = {}
    languages = [a for a in tok['added_tokens'] if a['id'] >= pieces and a['content'] != '<mask>']
    for k, a in enumerate(languages):
        moved[a['id']] = 256001 + k
    mask = next(a for a in tok['added_tokens'] if a['content'] == '<mask>')
    moved[mask['id']] = 256001 + len(languages)
    for a in tok['added_tokens']:
        a['id'] = moved.get(a['id'], a['id'])
    def remap(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == 'ids' and isinstance(v, list):
                    node[k] = [moved.get(i, i) for i in v]
                else:
                    remap(v)
        elif isinstance(node, list):
            for v in node:
                remap(v)
    remap(tok.get('post_processor'))
    json.dump(tok, open(f'{d}/tokenizer.json', 'w'), ensure_ascii=False)
    config = json.load(open(f'{tiny}/tokenizer_config.json'))
    config['added_tokens_decoder'] = {str(moved.get(int(k), int(k))): v for k, v in config['added_tokens_decoder'].items()}
    json.dump(config, open(f'{d}/tokenizer_config.json', 'w'), ensure_ascii=False, indent=2)
    for f in ['special_tokens_map.json', 'sentencepiece.bpe.model']:
        shutil.copy(f'{tiny}/{f}', d)
    torch.manual_seed(0)
    cfg = M2M100Config(vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                       decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
                       scale_embedding=True, activation_function='relu', pad_token_id=1, bos_token_id=0, eos_token_id=2,
                       decoder_start_token_id=2, tokenizer_class='NllbTokenizer')
    m = M2M100ForConditionalGeneration(cfg).eval()
    # pytorch_model.bin, as facebook/nllb-200-distilled-600M ships it.
    m.save_pretrained(d, safe_serialization=False)
    print('nllb params', sum(p.numel() for p in m.parameters()))


def turbo():
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    d = f'{OUT}/whisper-large-v3-turbo-random'
    os.makedirs(d, exist_ok=True)
    tiny = f'{FIX}/whisper-large-v3-turbo'
    config = json.load(open(f'{tiny}/config.json'))
    config.update(d_model=1280, encoder_layers=32, decoder_layers=4, encoder_attention_heads=20, decoder_attention_heads=20,
                  encoder_ffn_dim=5120, decoder_ffn_dim=5120, max_target_positions=448, max_source_positions=1500)
    torch.manual_seed(0)
    m = WhisperForConditionalGeneration(WhisperConfig(**{k: v for k, v in config.items() if k not in ('architectures', 'transformers_version', 'model_type')}))
    m = m.half().eval()
    m.save_pretrained(d, safe_serialization=True)
    # The tiny fixture's files, after save_pretrained (which writes its own generation_config.json);
    # max_length as the real repo's (448).
    for f in ['preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']:
        shutil.copy(f'{tiny}/{f}', d)
    generation = json.load(open(f'{tiny}/generation_config.json'))
    generation.update(max_length=448, alignment_heads=[[2, 4], [2, 11], [3, 3], [3, 6], [3, 11], [3, 14]])
    json.dump(generation, open(f'{d}/generation_config.json', 'w'), indent=2)
    print('whisper-large-v3-turbo params', sum(p.numel() for p in m.parameters()))


if __name__ == '__main__':
    for name in sys.argv[1:] or ['roberta', 'nllb', 'turbo']:
        globals()[name]()
