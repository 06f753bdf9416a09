"""Markdown tables from bench.mjs results (hubside's variant of ../shared/peer-bench/summarize.py: it
names each hubside row by dtype, threads and cache visit, shows wasm memory right after load, and
compares each row with transformers.js at the same dtype and threads).
usage: python3 bench/peer/summarize.py RESULTS.jsonl [...]
Per configuration over rounds: medians of load, first call and the per-round median of the timed
calls (min over rounds in brackets); tokens/s and time to first token (translation); real-time
factor (Whisper); renderer peak RSS; wasm memory after load / after the runs; MB downloaded."""
import json
import statistics as st
import sys
from collections import defaultdict

rows = [json.loads(line) for f in sys.argv[1:] for line in open(f) if line.strip()]
errors = [r for r in rows if 'error' in r]
rows = [r for r in rows if 'error' not in r and not r.get('smoke')]
groups = defaultdict(list)
for r in rows:
    if r['task'] == 'asr':
        r['input'] = ('whisper tiny.en' if 'tiny' in r['repo'] else 'whisper base') + ', jfk16.wav'
    threads = str(r.get('threads'))
    groups[(r['task'], r['input'])].append(r)


def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else None


def f(x, d=0):
    return '-' if x is None else f'{x:.{d}f}'


def agg(rs):
    mb = lambda b: None if b is None else b / 1e6
    a = dict(n=len(rs), load=med([r['load_ms'] for r in rs]), load_min=min(r['load_ms'] for r in rs),
             first=med([r['first_ms'] for r in rs]), median=med([r['median_ms'] for r in rs]),
             median_min=min(r['median_ms'] for r in rs), rss=med([r['renderer_peak_rss_mb'] for r in rs]),
             wasm_loaded=mb(med([r.get('wasm_memory_loaded') for r in rs])),
             wasm=mb(med([r['memory'].get('wasm_memory') for r in rs])),
             jsheap=mb(med([r['memory'].get('js_heap_used') for r in rs])),
             model_mb=med([r['net_bytes']['model'] / 1e6 for r in rs]), threads=rs[0].get('threads'),
             out=json.dumps(rs[-1]['output'], ensure_ascii=False)[:110])
    if rs[0]['task'] == 'translation':
        a['tps'] = med([r['tokens_per_s_median'] for r in rs])
        a['ttft'] = med([r['ttft_median_ms'] for r in rs])
    if rs[0]['task'] == 'asr':
        a['rtf'] = med([r['rtf_median'] for r in rs])
    return a


for (task, inp), rs in sorted(groups.items()):
    configs = defaultdict(list)
    for r in rs:
        system = 'hubside-plain' if r.get('plain') else r['sys']
        configs[(system, r['dtype'], str(r.get('threads')), r.get('cache', 'off'))].append(r)
    stats = {c: agg(v) for c, v in configs.items()}
    extra = {'translation': ['tok/s', 'TTFT ms'], 'asr': ['RTF']}.get(task, [])
    print(f'\n### {task} ({inp})\n')
    print('| system | dtype | threads | cache | rounds | load ms (min) | first ms | median ms (min) | ' + ''.join(e + ' | ' for e in extra) +
          'peak RSS MB | wasm MB loaded / after | JS heap MB | model MB fetched | t.js median / this |')
    print('|' + '---|' * (14 + len(extra)))
    order = sorted(stats, key=lambda c: (c[0] == 'tjs', c[0] != 'hubside', c[1], int(c[2]) if c[2].isdigit() else 99, c[3]))
    for c in order:
        a = stats[c]
        ex = []
        if task == 'translation':
            ex = [f(a['tps'], 1), f(a['ttft'])]
        if task == 'asr':
            ex = [f(a['rtf'], 3)]
        peer = stats.get(('tjs', c[1], str(a['threads']), 'off'))
        ratio = f"{peer['median'] / a['median']:.2f}" if c[0] != 'tjs' and peer else ''
        name = {'hubside': 'hubside', 'hubside-plain': 'hubside, no relaxed SIMD'}.get(c[0], 'transformers.js')
        print(f"| {name} | {c[1]} | {a['threads']} | {c[3]} | {a['n']} | {f(a['load'])} ({f(a['load_min'])}) | {f(a['first'])} | "
              f"{f(a['median'], 1)} ({f(a['median_min'], 1)}) | " + ''.join(x + ' | ' for x in ex) +
              f"{f(a['rss'])} | {f(a['wasm_loaded'])} / {f(a['wasm'])} | {f(a['jsheap'], 1)} | {f(a['model_mb'], 1)} | {ratio} |")
    print()
    for c in order:
        print(f"- {c[0]} {c[1]} t{stats[c]['threads']} {c[3]}: {stats[c]['out']}")
if errors:
    print('\nerrors:')
    for r in errors:
        print('-', r['sys'], r['task'], r.get('dtype'), r.get('threads'), r['error'][:300])
