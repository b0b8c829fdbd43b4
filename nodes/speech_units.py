"""Interleaved speech: the Translator writes each word (or Han character) of its text right
before the semantic tokens that say it.

Why: trained on "text, then all of its 50 Hz speech", the 8.5M default model starts on the right
word and then says another sentence (README, session 5: TTS CER 0.72 / 0.90, teacher-forced
predictions fine, free-running drifts). A clean guided alignment did not cure it. ELLA-V (Song et
al. 2024) met the same skipping and drifting in VALL-E and fixed it by interleaving each phoneme
with its acoustic tokens, so the unit being spoken always sits just before the speech. Here the
units are text units the model already writes (one token per character), the unit boundaries come
from CTC forced alignment of each unit's phonemes on the ContentTokenizer's auxiliary phoneme head
(50 Hz, the semantic rate, so frames map one to one), and at run time the decode loop copies the
next unit of the text it wrote (or was given) into place whenever the model asks for one
(`SpokenText`): the model decides *when* to move on, never *what* comes next.

Units are written as their characters (`interleave_units: chars`) or as their espeak-ng phonemes
(`phones`, one `<|phone_X|>` token per IPA unit, this project's addition like the emotion tokens):
letters to sounds is irregular in English and a Han character is one of thousands, while the
phoneme inventory is small and read the same way everywhere, as in ELLA-V.

Off unless the translator's `model.interleave_text` is set; the released UniSS model does not
interleave, and its parser ignores everything after `<|start_semantic_token|>` but semantic ids.
"""
from __future__ import annotations

from typing import Sequence

import torch

from dragoman.nodes.text_units import is_han

_APOSTROPHES = "'\u2019\u02bc"


def phone_token(phone: str) -> str:
    return f"<|phone_{phone}|>"


def unit_lang(unit: str) -> str:
    """The language a unit is read in: Han characters as Mandarin, anything else as English (an
    English word inside a Chinese sentence keeps its English reading); no prompt needed."""
    return "zh" if any(is_han(ch) for ch in unit) else "en"


def units_phones(units: Sequence[str]) -> list[list[str]]:
    """espeak-ng phonemes of every unit, each read alone (`unit_lang`), with one espeak-ng process
    per language for the units not read before (phonemes.phonemize_many); punctuation alone
    says nothing."""
    from dragoman.nodes.phonemes import phonemize_many

    out: list[list[str]] = [[] for _ in units]
    for lang in ("zh", "en"):
        picked = [i for i, u in enumerate(units) if unit_lang(u) == lang and any(ch.isalnum() for ch in u)]
        for i, phones in zip(picked, phonemize_many([units[i] for i in picked], lang)):
            out[i] = list(phones)
    return out


def written_units(tok, units: Sequence[str], phones: Sequence[Sequence[str]] | None = None) -> list[list[int]]:
    """How an interleaved speech section writes its units: their characters, or, given `phones`
    (one list per unit), their `<|phone_X|>` tokens; training (phonemes from the token cache) and
    decoding (phonemes from espeak-ng) both write them here. Phones outside the vocabulary are
    left out."""
    if phones is None:
        return [tok.encode_text(u) for u in units]
    return [[tok.stoi[name] for name in map(phone_token, ph) if name in tok.stoi] for ph in phones]


def _is_word_char(ch: str) -> bool:
    return (ch.isalnum() and not is_han(ch)) or ch in _APOSTROPHES


def split_units(text: str) -> list[str]:
    """Text -> spoken units whose concatenation is the text: one per Han character, one per run of
    letters/digits (a word); spaces and punctuation before a unit and punctuation after it belong
    to it. "Hi, it's me." -> ["Hi,", " it's", " me."]; "你好，世界。" -> ["你", "好，", "世", "界。"]."""
    units: list[str] = []
    lead = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if is_han(ch):
            j = i + 1
        elif ch.isalnum():
            j = i + 1
            while j < n and _is_word_char(text[j]):
                j += 1
        else:
            lead += ch
            i += 1
            continue
        k = j
        while k < n and not text[k].isspace() and not text[k].isalnum():
            k += 1
        units.append(lead + text[i:k])
        lead, i = "", k
    if lead:
        if units:
            units[-1] += lead
        else:
            units.append(lead)
    return units


def _proportional(units_ids: Sequence[Sequence[int]], frames: int) -> list[int]:
    """Fallback bounds: each unit gets frames in proportion to its characters."""
    sizes = [max(1, len(u)) for u in units_ids]
    total, acc, bounds = sum(sizes), 0, []
    for s in sizes:
        bounds.append(round(acc * frames / total))
        acc += s
    return bounds


def unit_bounds(unit_targets: Sequence[Sequence[int]], log_probs: torch.Tensor) -> tuple[list[int], bool]:
    """Start frame of every unit in `log_probs` [T, C] (CTC, blank 0; frame 0 = first unit), given
    each unit's CTC targets, and whether forced alignment found them (False: proportional
    fallback, e.g. more targets than frames). A boundary sits midway between the last emission of
    one unit and the first of the next: CTC spikes are sharp, the sound between them belongs half
    to each side."""
    import torchaudio.functional as F

    frames = int(log_probs.shape[0])
    targets: list[int] = []
    first: list[int | None] = []
    for ids in unit_targets:
        first.append(len(targets) if ids else None)
        targets += list(ids)
    if not targets or frames < len(targets):
        return _proportional(unit_targets, frames), False
    try:
        path, scores = F.forced_align(log_probs[None].float(), torch.tensor([targets], dtype=torch.int32), blank=0)
    except RuntimeError:  # more targets (with repeats) than frames
        return _proportional(unit_targets, frames), False
    spans = F.merge_tokens(path[0], scores[0].exp())
    if len(spans) != len(targets):
        return _proportional(unit_targets, frames), False
    bounds = [0]
    for k in first[1:]:
        if k is None or k == 0:  # nothing to say (no phonemes), or nothing said before it
            bounds.append(bounds[-1])
        else:
            bounds.append(max(bounds[-1], (spans[k - 1].end + spans[k].start) // 2))
    return bounds, True


def interleave(units_ids: Sequence[Sequence[int]], speech: Sequence[int], bounds: Sequence[int]) -> list[int]:
    """unit 0, speech[b0:b1], unit 1, speech[b1:b2], ... (b0 = 0, the last unit takes the rest)."""
    if len(units_ids) != len(bounds):
        raise ValueError(f"{len(units_ids)} units but {len(bounds)} bounds")
    out: list[int] = []
    ends = [*bounds[1:], len(speech)]
    for ids, start, end in zip(units_ids, bounds, ends):
        out += list(ids) + list(speech[min(start, len(speech)):min(max(start, end), len(speech))])
    return out


class SpokenText:
    """Decode-time partner of `interleave`: which token to write next in an interleaved speech
    section. The model samples; a semantic token is kept; anything else (a text character, the
    end of speech) means "next unit", so the next unit of the text is copied in, and once every
    unit is spoken it means the end: `<|end_semantic_token|>` `<|im_end|>`. Right after a unit
    the model must write speech (`needs_speech`: the loop masks everything else): a model that
    took the unit for unfinished asked for the next unit at once and skipped its speech ("make
    this" came out as one unit, the last word was never said)."""

    def __init__(self, units_ids: Sequence[Sequence[int]], semantic_ids: set[int], end_ids: Sequence[int]):
        self.units = [list(u) for u in units_ids if u]
        self.semantic_ids = semantic_ids
        self.end_ids = list(end_ids)
        self.spoken = 0
        self.needs_speech = False

    def start(self) -> list[int]:
        """Tokens to write right after `<|start_semantic_token|>`."""
        return self.advance() if self.units else []

    def advance(self) -> list[int]:
        if self.spoken < len(self.units):
            self.spoken += 1
            self.needs_speech = True
            return list(self.units[self.spoken - 1])
        return list(self.end_ids)

    def replace(self, token: int) -> list[int]:
        """What to write for a sampled `token` (the token itself when it is speech)."""
        if token in self.semantic_ids:
            self.needs_speech = False
            return [token]
        return self.advance()

    @property
    def done(self) -> bool:
        return self.spoken >= len(self.units)


def align_records(records: list[dict], rows: list[dict], content, batch_size: int = 16) -> dict[str, int]:
    """Store `unit_phones` (each `split_units(text)` unit's espeak-ng phonemes) and `unit_bounds`
    (the 50 Hz frame where each unit starts) in every token cache record, by forced alignment of
    those phonemes on the ContentTokenizer's auxiliary phoneme head, which reads the audio
    (`rows`: the manifest rows the records were made from, same order). Not the token head: it recognises well but places
    its spikes anywhere in its context (Mandarin characters bunched at both ends of the
    utterance), while the phoneme head's spikes follow the speech envelope. Returns how many
    records aligned and how many fell back to proportional bounds."""
    from tqdm import tqdm

    from dragoman.nodes.audio.io import read_audio
    from dragoman.nodes.errors import DragomanError
    from dragoman.nodes.trainable import pad_batch

    phones = list(content.cfg.get("phones") or [])
    if content.net.aux_chars is None or content.cfg.get("aux_units") != "phones" or not phones:
        raise DragomanError("unit alignment needs a ContentTokenizer with an auxiliary phoneme head (aux_units: phones)")
    if len(rows) != len(records) or any(r["text"] != row["text"] for r, row in zip(records, rows)):
        raise DragomanError("unit alignment: the manifest rows do not match the token cache records (rebuild the cache)")
    index = {p: i for i, p in enumerate(phones)}
    counts = {"aligned": 0, "fallback": 0}
    order = sorted(range(len(records)), key=lambda i: float(rows[i].get("duration") or 0.0))
    with content._eval_mode():
        for at in tqdm(range(0, len(order), batch_size), desc="unit alignment", unit="batch"):
            picked = order[at:at + batch_size]
            wav, lengths = pad_batch([read_audio(rows[i]["audio_filepath"]) for i in picked])
            feats, n = content.net.features(wav.to(content.device), lengths.to(content.device))
            b, t, _ = feats.shape
            log_probs = content.net.aux_chars(feats).view(b, 2 * t, -1).log_softmax(dim=-1).cpu()
            for i, lp, frames in zip(picked, log_probs, (2 * n).tolist()):
                r = records[i]
                r["unit_phones"] = units_phones(split_units(r["text"]))
                bounds, ok = unit_bounds([[index[p] for p in ph if p in index] for ph in r["unit_phones"]], lp[:frames])
                r["unit_bounds"] = [min(x, len(r["semantic_tokens"])) for x in bounds]
                counts["aligned" if ok else "fallback"] += 1
    return counts
