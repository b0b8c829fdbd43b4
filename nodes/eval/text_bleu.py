"""Corpus BLEU with the UniSS paper's text normalisation (DESIGN §9).

- English targets: lowercase, punctuation removed except apostrophes, sacrebleu tokenizer `13a`.
- Chinese targets: traditional -> simplified (OpenCC `t2s`), punctuation removed (CJK and ASCII),
  sacrebleu tokenizer `zh`.

Both sides (hypotheses and references) go through the same function, so the normalisation can
only remove differences the paper's definition ignores. Details the definition leaves open, and
what is done here:
- "punctuation" is every Unicode character of category P* (ASCII and CJK alike: ，。、「」《》
  ！？…— and so on; also % # & * @, which Unicode files under P*); symbols (S*: $ + = ~) are
  not punctuation and are kept;
- a removed character becomes a space, so "well-known" -> "well known" rather than "wellknown";
- text is NFKC-normalised first, so full-width letters and digits (Ａ１) equal their ASCII forms;
- typographic apostrophes (’ ʼ) count as the apostrophe ' and are kept, in English only (in
  Chinese they are quotation marks and are removed).
"""
from __future__ import annotations

import dataclasses
import functools
import unicodedata
from typing import Sequence

LANGS = ("zh", "en")
TOKENIZER = {"en": "13a", "zh": "zh"}
_APOSTROPHES = {"'": "'", "\u2019": "'", "\u02bc": "'"}


def _strip_punctuation(text: str, keep_apostrophe: bool) -> str:
    out = []
    for ch in text:
        if keep_apostrophe and ch in _APOSTROPHES:
            out.append("'")
        elif unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


@functools.lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC

    return OpenCC("t2s")


def normalize_en(text: str) -> str:
    """'Hello, World! It’s 5 o’clock.' -> "hello world it's 5 o'clock" """
    return _strip_punctuation(unicodedata.normalize("NFKC", text).lower(), keep_apostrophe=True)


def normalize_zh(text: str) -> str:
    """'這是「測試」，對吧？' -> '这是 测试 对吧' (spaces are ignored by the `zh` tokenizer)."""
    return _strip_punctuation(_t2s().convert(unicodedata.normalize("NFKC", text)), keep_apostrophe=False)


def normalize(text: str, lang: str) -> str:
    if lang == "en":
        return normalize_en(text)
    if lang == "zh":
        return normalize_zh(text)
    raise ValueError(f"unsupported language {lang!r}; expected one of {LANGS}")


@dataclasses.dataclass
class BleuResult:
    score: float
    signature: str
    n: int


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], lang: str) -> BleuResult:
    """sacrebleu corpus BLEU of `hypotheses` against one reference each, in target language
    `lang`, after the paper's normalisation."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("corpus BLEU of an empty corpus")
    hyps = [normalize(h, lang) for h in hypotheses]
    refs = [normalize(r, lang) for r in references]
    metric = sacrebleu.BLEU(tokenize=TOKENIZER[lang])
    score = metric.corpus_score(hyps, [refs])
    return BleuResult(score=float(score.score), signature=str(metric.get_signature()), n=len(hyps))


def sentence_bleu(hypothesis: str, reference: str, lang: str) -> float:
    """Smoothed sentence BLEU after the same normalisation: for ranking utterances in the
    per-utterance table only (corpus BLEU is the reported metric)."""
    metric = _sentence_metric(lang)
    return float(metric.sentence_score(normalize(hypothesis, lang), [normalize(reference, lang)]).score)


@functools.lru_cache(maxsize=None)
def _sentence_metric(lang: str):
    import sacrebleu

    return sacrebleu.BLEU(tokenize=TOKENIZER[lang], effective_order=True)
