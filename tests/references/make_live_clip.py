"""Make tests/fixtures/audio/live16.wav and live16.labels.json: a labelled clip for the voice
activity detector (src/audio/vad.rs) and the live transcription tests, built deterministically
from the test clips with inserted pauses and noise.

Layout (16 kHz mono, 16-bit): pause | jfk16 | pause | jfk16 at -6 dB | pause | de16 | pause, each
pause filled with a different noise (white, hum + white, brown), and white noise at -55 dBFS under
the whole clip. The English part (everything before de16) is what the live tests replay.

Labels, one per 20 ms frame (320 samples):
- inserted pauses are non-speech (by construction);
- inside a clip, a frame is speech when its energy is within 28 dB of the clip's loudest frame
  (jfk16's own background sits 30+ dB below its speech), then gaps shorter than 160 ms between
  speech frames are filled (stop closures inside words) and speech runs shorter than 60 ms are
  dropped (clicks).

Run: /tmp/peer/venv/bin/python tests/references/make_live_clip.py  (numpy, seeded; see
tests/models/requirements.txt). The outputs are committed, so tests need no Python.
"""
import json
import os
import wave

import numpy as np

RATE = 16000
FRAME = 320
HERE = os.path.dirname(os.path.abspath(__file__))
AUDIO = os.path.join(HERE, "..", "fixtures", "audio")
rng = np.random.default_rng(12)


def read(name):
    with wave.open(os.path.join(AUDIO, name)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768


def db(x):
    return 10 * np.log10(np.mean(x**2) + 1e-20)


def at_level(x, dbfs):
    return x * 10 ** ((dbfs - db(x)) / 20)


def white(seconds, dbfs):
    return at_level(rng.standard_normal(int(seconds * RATE)), dbfs)


def hum(seconds, dbfs):
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * 100 * k * t) / k for k in (1, 2, 3))
    return at_level(x, dbfs) + white(seconds, -48)


def brown(seconds, dbfs):
    x = np.cumsum(rng.standard_normal(int(seconds * RATE)))
    x -= np.convolve(x, np.ones(801) / 801, mode="same")  # no drift: a rumble, not a DC ramp
    return at_level(x, dbfs)


def clip_labels(x):
    n = len(x) // FRAME
    e = 10 * np.log10((x[: n * FRAME].reshape(n, FRAME) ** 2).mean(1) + 1e-20)
    speech = e > e.max() - 28
    # Speech frames at the clip's tail that do not fill a whole frame count with the last frame.
    labels = list(speech) + [speech[-1] if n else False] * (1 if len(x) % FRAME else 0)
    return fill_gaps(labels)


def fill_gaps(labels, max_gap=8, min_run=3):
    labels = list(labels)
    i = 0
    while i < len(labels):  # gaps between speech shorter than max_gap frames become speech
        if not labels[i]:
            j = i
            while j < len(labels) and not labels[j]:
                j += 1
            if i > 0 and j < len(labels) and j - i < max_gap:
                labels[i:j] = [True] * (j - i)
            i = j
        else:
            i += 1
    i = 0
    while i < len(labels):  # runs shorter than min_run frames are not speech
        if labels[i]:
            j = i
            while j < len(labels) and labels[j]:
                j += 1
            if j - i < min_run:
                labels[i:j] = [False] * (j - i)
            i = j
        else:
            i += 1
    return labels


def frames(seconds):
    return int(round(seconds * RATE / FRAME))


jfk, de = read("jfk16.wav"), read("de16.wav")
# Clip lengths are padded to whole frames so every piece starts on a frame boundary.
pad = lambda x: np.concatenate([x, np.zeros(-len(x) % FRAME)])
jfk, de = pad(jfk), pad(de)
pieces = [
    ("pause", white(1.5, -42)),
    ("speech", jfk),
    ("pause", hum(2.0, -38)),
    ("speech", jfk * 10 ** (-6 / 20)),
    ("pause", brown(1.6, -40)),
    ("speech", de),
    ("pause", white(2.0, -45)),
]
audio = np.concatenate([p for _, p in pieces])
audio += white(len(audio) / RATE, -55)
labels, layout, start = [], [], 0
for kind, piece in pieces:
    labels += clip_labels(piece) if kind == "speech" else [False] * (len(piece) // FRAME)
    layout.append({"kind": kind, "start": start / RATE, "end": (start + len(piece)) / RATE})
    start += len(piece)
assert len(labels) == len(audio) // FRAME
pcm = np.clip(np.round(audio * 32768), -32768, 32767).astype("<i2")
with wave.open(os.path.join(AUDIO, "live16.wav"), "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(RATE)
    w.writeframes(pcm.tobytes())
english_end = layout[4]["end"]  # through the pause after the second jfk16
with open(os.path.join(AUDIO, "live16.labels.json"), "w") as f:
    json.dump(
        {
            "frame_seconds": FRAME / RATE,
            "labels": "".join("1" if s else "0" for s in labels),
            "layout": layout,
            "english_end": english_end,
        },
        f,
        indent=1,
    )
    f.write("\n")
print(f"{len(audio) / RATE:.2f} s, {sum(labels)} of {len(labels)} frames speech")
