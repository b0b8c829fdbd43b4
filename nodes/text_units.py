"""Character units for the ContentTokenizer's CTC recognition head.

One shared zh/en alphabet: Han characters, English letters, the apostrophe and the space. It is
built from the training manifests (`build_vocab`) and stored as a plain list in the node's
config, so a `.nemo` checkpoint carries its own alphabet and decodes without the corpus.

Text is normalised the way Speech-BLEU scores it (DESIGN §9, `dragoman.nodes.eval.text_bleu`):
English lowercased with punctuation removed except apostrophes; Chinese without punctuation or
spaces (a Chinese space is not spoken, so CTC should not have to guess one). Index 0 is the CTC
blank.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Iterable, Sequence

BLANK = "<blank>"
SPACE = " "
_APOSTROPHES = {"'", "\u2019", "\u02bc"}


def is_han(ch: str) -> bool:
    """CJK unified ideographs (basic block + extension A + compatibility)."""
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def is_latin(ch: str) -> bool:
    return "a" <= ch <= "z" or ch == "'"


def normalize_text(text: str, lang: str) -> str:
    """What the recogniser is trained to write: 'Hello, it’s me!' -> "hello it's me" (en);
    '你好，世界。' -> '你好世界' (zh). Symbols other than letters, digits and Han are dropped."""
    text = unicodedata.normalize("NFKC", text).lower()
    out = []
    for ch in text:
        if ch in _APOSTROPHES:
            out.append("'" if lang == "en" else " ")
        elif ch.isalnum():
            out.append(ch)
        else:
            out.append(" ")
    words = "".join(out).split()
    return "".join(words) if lang == "zh" else " ".join(words)


def build_vocab(rows: Iterable[dict], min_count: int = 1) -> list[str]:
    """Alphabet of the manifests' `text` fields (normalised per `lang`): blank, space, then
    characters sorted by code point, so the same corpus always gives the same ids."""
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(ch for ch in normalize_text(str(row.get("text", "")), str(row.get("lang", "en"))) if ch != SPACE)
    chars = sorted(ch for ch, n in counts.items() if n >= min_count)
    return [BLANK, SPACE, *chars]


class CharVocab:
    """Text <-> ids over a fixed alphabet (index 0 = CTC blank)."""

    def __init__(self, units: Sequence[str]):
        units = list(units)
        if len(units) < 3 or units[0] != BLANK or units[1] != SPACE:
            raise ValueError(f"a CTC vocabulary starts with [{BLANK!r}, ' '] and has characters; got {units[:4]}")
        self.units = units
        self.index = {ch: i for i, ch in enumerate(units)}

    def __len__(self) -> int:
        return len(self.units)

    def encode(self, text: str, lang: str) -> list[int]:
        """Ids of the normalised text; characters outside the alphabet are skipped."""
        return [self.index[ch] for ch in normalize_text(text, lang) if ch in self.index]

    def decode(self, ids: Iterable[int], lang: str | None = None) -> str:
        """Ids (no blanks) -> text. zh: no spaces; en: single spaces; None: spaces kept only
        between Latin words (a mixed utterance keeps its English words apart)."""
        chars = [self.units[i] for i in ids if 0 < i < len(self.units)]
        text = "".join(chars)
        if lang == "zh":
            return text.replace(SPACE, "")
        words = text.split()
        if lang == "en":
            return " ".join(words)
        out = ""
        for word in words:
            if out and is_latin(out[-1]) and is_latin(word[0]):
                out += SPACE
            out += word
        return out

    def language_mask(self, lang: str | None) -> list[bool]:
        """Which units a recogniser may emit when the language is known: zh keeps Han (and
        digits), en keeps letters, apostrophe, digits and the space. The blank is always allowed."""
        allowed = []
        for i, unit in enumerate(self.units):
            if i == 0 or lang is None:
                allowed.append(True)
            elif lang == "zh":
                allowed.append(is_han(unit) or unit.isdigit())
            elif lang == "en":
                allowed.append(unit == SPACE or is_latin(unit) or unit.isdigit())
            else:
                raise ValueError(f"unknown language {lang!r}; expected 'zh', 'en' or None")
        return allowed


def ctc_greedy(frame_ids: Sequence[int], blank: int = 0) -> list[int]:
    """Best-path CTC decoding: merge repeats, then drop blanks ([a a - a b b] -> [a a b])."""
    out, previous = [], None
    for i in frame_ids:
        if i != previous and i != blank:
            out.append(int(i))
        previous = i
    return out


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def cer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus character error rate: total edits / total reference characters (spaces count in
    English, where a merged or split word is an error; Chinese text has none)."""
    edits = sum(edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True))
    total = sum(len(r) for r in references)
    return edits / max(total, 1)
