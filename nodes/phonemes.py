"""Phoneme targets for the ContentTokenizer's auxiliary CTC head (training only), via espeak-ng.

Why: with characters as the only targets, the encoder has to learn ~250 Han characters and
English spelling straight from 2 h of audio. On the synthetic corpus, after 43 epochs, the
25 Hz character head still made 15 % (zh) and 21 % (en) character errors on unseen sentences,
mostly sound-alike confusions ("does djak se canis mal cpe"). Phonemes with tones are the units
the voices actually produce and are shared across words, so the encoder can learn them from far
fewer examples; the token head, which reads only the quantised tokens, still writes characters.

The phonemes are espeak-ng's IPA for exactly what the corpus backend fed it
(`EspeakBackend.reading`: Chinese words its dictionary misreads go in as pinyin), split into
single code points; stress marks and word spaces are dropped, tone numbers and length marks
kept, punctuation dropped. Any text can be phonemised, so imported real corpora work too (G2P, not alignment).
"""
from __future__ import annotations

import shutil
import subprocess
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from dragoman.nodes.errors import DragomanError

BLANK = "<blank>"
_DROP = {"ˈ", "ˌ", " ", "\n", "\t", "_", "-"}


def _espeak(texts: Sequence[str], lang: str) -> str:
    """espeak-ng's IPA output for `texts` given one per line (one line of output per line)."""
    from dragoman.nodes.data.tts import EspeakBackend

    backend = EspeakBackend()
    if shutil.which(backend.executable) is None:
        raise DragomanError("phoneme targets need espeak-ng: install it with 'sudo apt-get install espeak-ng'")
    voice = backend.voices.get(lang)
    if voice is None:
        raise DragomanError(f"no espeak-ng voice for language {lang!r}")
    lines = "\n".join(backend.reading(t, lang) for t in texts)
    out = subprocess.run([backend.executable, "-v", voice, "-q", "--ipa", lines], capture_output=True, timeout=60)
    if out.returncode != 0:
        raise DragomanError(f"espeak-ng failed on {lines[:40]!r} ({out.stderr.decode(errors='replace').strip()[:80]})")
    return out.stdout.decode("utf-8", errors="replace")


def _units(ipa: str) -> tuple[str, ...]:
    return tuple(ch for ch in ipa if ch not in _DROP and not unicodedata.category(ch).startswith("P"))


_READ: dict[tuple[str, str], tuple[str, ...]] = {}  # (text, lang) -> phonemes, for the process


def phonemize(text: str, lang: str) -> tuple[str, ...]:
    """IPA units of `text` as espeak-ng speaks it in `lang` ('zh' or 'en')."""
    return phonemize_many([text], lang)[0]


def phonemize_many(texts: Sequence[str], lang: str) -> list[tuple[str, ...]]:
    """`phonemize` of each text, with one espeak-ng process for all the uncached ones: a process
    costs ~13 ms, which per word was ~0.04 of the real-time factor of interleaved decoding. Each
    text is read alone on its own line, so the result equals one process per text; should the
    lines not come back one for one (a text espeak-ng reads as several clauses), each text is
    read by its own process."""
    todo = [t for t in dict.fromkeys(texts) if (t, lang) not in _READ]
    if todo:
        out = _espeak(todo, lang)
        lines = out.strip("\n").split("\n") if len(todo) > 1 else [out]
        if len(lines) != len(todo):
            lines = [_espeak([t], lang) for t in todo]
        for text, line in zip(todo, lines):
            _READ[(text, lang)] = _units(line)
    return [_READ[(t, lang)] for t in texts]


def phonemize_rows(rows: Sequence[dict], desc: str = "phonemes") -> list[tuple[str, ...]]:
    """Phonemes of every row's `text` in its `lang` (two espeak-ng processes at a time)."""
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = pool.map(lambda r: phonemize(str(r["text"]), str(r["lang"])), rows)
        return list(tqdm(jobs, total=len(rows), desc=desc, unit="utt", leave=False))


def build_phone_vocab(phones: Sequence[Sequence[str]]) -> list[str]:
    """[blank, units sorted by code point]: the same corpus always gives the same ids."""
    return [BLANK, *sorted({unit for seq in phones for unit in seq})]
