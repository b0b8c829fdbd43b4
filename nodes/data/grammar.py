"""A compositional zh<->en sentence generator, correct by construction.

Each template builds the English and the Chinese sentence from the same choices (subject, tense,
polarity, object phrase, place, time), so the pair is a translation by construction: English gets
do-support, agreement, articles and plurals; Chinese gets measure words, 了/没有/会/正在 aspect,
吗 questions and time words after the subject. Sixteen templates (statements, negations, yes/no
and wh-questions, imperatives) over the lexicon give millions of distinct pairs; sentences keep
4-12 English words so that a pair lasts ~1.5-5 s when spoken.

`SentencePair.combos` names the (adjective, noun) and (verb, noun) combinations a sentence uses,
so that `heldout_combos()` can keep some of them out of training altogether (compositional
generalisation test).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from dragoman.nodes.data import lexicon as L

MIN_EN_WORDS, MAX_EN_WORDS = 4, 12

FREQUENCY = [("every day", "每天"), ("every morning", "每天早上"), ("every evening", "每天晚上"),
             ("every week", "每个星期")]
PAST_TIMES = [("yesterday", "昨天"), ("last night", "昨天晚上"), ("this morning", "今天早上"),
              ("last week", "上个星期"), ("yesterday afternoon", "昨天下午")]
FUTURE_TIMES = [("tomorrow", "明天"), ("tonight", "今天晚上"), ("next week", "下个星期"),
                ("tomorrow morning", "明天早上")]
NOW = [("now", "现在")]
NO_TIME = ("", "")

# Where a transitive action plausibly happens (template "act_at_place").
VERB_PLACES = {
    "buy": "market shop supermarket", "sell": "market shop", "eat": "home restaurant kitchen park",
    "read": "library home park classroom", "write": "home office classroom library",
    "draw": "home park classroom garden", "wash": "kitchen home", "see": "park zoo garden beach museum",
    "make": "kitchen home school", "borrow": "library",
}


@dataclass(frozen=True)
class SentencePair:
    en: str
    zh: str
    template: str
    combos: frozenset[str]


def combo(kind: str, a: str, b: str) -> str:
    return f"{kind}:{a}+{b}"


# ---------------------------------------------------------------- noun phrases

def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def np_count(noun: L.Noun, n: int, adj: L.Adjective | None) -> tuple[str, str]:
    """'three red apples' / '三个红色的苹果'; n == 1 gives 'a red apple' / '一个红色的苹果'."""
    head_en = noun.en if n == 1 else noun.en_plural
    words = ([adj.en] if adj else []) + [head_en]
    det = _article(words[0]) if n == 1 else L.NUMBERS_EN[n]
    return " ".join([det] + words), L.zh_count(n) + noun.measure + (adj.zh_attr if adj else "") + noun.zh


def np_bare(noun: L.Noun, adj: L.Adjective | None) -> tuple[str, str]:
    """Object of a negated verb: 'a red car' / '红色的车' (Chinese drops the numeral: 没有买车)."""
    words = ([adj.en] if adj else []) + [noun.en]
    return " ".join([_article(words[0])] + words), (adj.zh_attr if adj else "") + noun.zh


def np_generic(noun: L.Noun, adj: L.Adjective | None) -> tuple[str, str]:
    """Kinds, as after 'like': 'red apples' / '红色的苹果'."""
    return " ".join(([adj.en] if adj else []) + [noun.en_plural]), (adj.zh_attr if adj else "") + noun.zh


def np_demonstrative(noun: L.Noun, near: bool, n: int, adj: L.Adjective | None) -> tuple[str, str]:
    """'this box' / '这个盒子', 'those two red boxes' / '那两个红色的盒子'."""
    if n == 1:
        det_en, det_zh = ("this" if near else "that"), ("这" if near else "那") + noun.measure
    else:
        det_en = ("these" if near else "those") + ("" if n == 0 else " " + L.NUMBERS_EN[n])
        det_zh = ("这" if near else "那") + ("些" if n == 0 else L.zh_count(n) + noun.measure)
    head = noun.en if n == 1 else noun.en_plural
    return " ".join([det_en] + ([adj.en] if adj else []) + [head]), det_zh + (adj.zh_attr if adj else "") + noun.zh


# ---------------------------------------------------------------- verbs and clauses

def third_singular(s: L.Person) -> bool:
    return s.person == 3 and not s.plural


def be(s: L.Person, past: bool = False) -> str:
    if s.key == "i":
        return "was" if past else "am"
    if s.plural or s.person == 2:
        return "were" if past else "are"
    return "was" if past else "is"


def en_clause(s: L.Person, tense: str, polarity: str, forms: tuple[str, str, str, str]) -> list[str]:
    """Subject + verb group, with do-support: ['my', 'mother', 'did', 'not', 'buy'];
    questions put the auxiliary first: ['did', 'my mother', 'buy']."""
    base, third, past, ing = forms
    if polarity == "ask":
        aux = {"present": "does" if third_singular(s) else "do", "past": "did", "future": "will",
               "progressive": be(s)}[tense]
        return [aux, s.en, ing if tense == "progressive" else base]
    if polarity == "negate":
        aux = {"present": "does not" if third_singular(s) else "do not", "past": "did not",
               "future": "will not", "progressive": be(s) + " not"}[tense]
        return [s.en, aux, ing if tense == "progressive" else base]
    verb = {"present": third if third_singular(s) else base, "past": past, "future": "will " + base,
            "progressive": be(s) + " " + ing}[tense]
    return [s.en, verb]


def zh_predicate(tense: str, polarity: str, verb: str, obj: str = "", loc: str = "", le: bool = True) -> str:
    """Chinese verb group: aspect (了 / 没有 / 会 / 正在), optional 在+place, verb, object."""
    at = "在" + loc if loc else ""
    if tense == "present":
        return ("不" if polarity == "negate" else "") + at + verb + obj
    if tense == "past":
        if polarity == "negate":
            return "没有" + at + verb + obj
        if not obj:  # intransitive: 她昨天在家休息 / 你昨天在家休息了吗
            return at + verb + ("了" if polarity == "ask" else "")
        return at + verb + ("了" if le else "") + obj
    if tense == "future":
        return ("不会" if polarity == "negate" else "会") + at + verb + obj
    if polarity == "negate":
        return "没有在" + loc + verb + obj
    return "正在" + loc + verb + obj


def en_sentence(words: list[str], question: bool) -> str:
    text = " ".join(w for w in words if w)
    return text[0].upper() + text[1:] + ("?" if question else ".")


def zh_sentence(parts: list[str], question: bool) -> str:
    return "".join(parts) + ("？" if question else "。")


def heldout_combos(fraction: float = 0.1) -> frozenset[str]:
    """A fixed subset of (adjective, noun) and (verb, noun) combinations that training never sees.

    Chosen by a stable hash (the same for every seed, so models built from different corpora
    are tested on the same unseen combinations); never all the partners of one word, so every
    word still appears in training.
    """
    def score(c: str) -> float:
        return int(hashlib.sha1(c.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    held = set()
    groups = [[combo("adj_noun", a, n.key) for a in n.adjectives] for n in L.NOUNS.values()]
    groups += [[combo("verb_noun", v.key, n.key) for n in L.NOUNS.values() if n.kind in v.kinds]
               for v in L.VERBS.values()]
    for group in groups:
        picked = [c for c in group if score(c) < fraction]
        if len(picked) >= len(group):
            picked = picked[:-1]
        held.update(picked)
    return frozenset(held)


class Grammar:
    """Samples sentence pairs; `sample(rng)` returns a SentencePair or None (rejected draw)."""

    def __init__(self):
        from dragoman.nodes.data import templates

        self.templates = templates.TEMPLATES
        self._names = list(self.templates)
        self._weights = [self.templates[n][0] for n in self._names]

    def sample(self, rng: random.Random) -> SentencePair | None:
        name = rng.choices(self._names, self._weights)[0]
        built = self.templates[name][1](rng)
        if built is None:
            return None
        en, zh, combos = built
        if not MIN_EN_WORDS <= len(en[:-1].split()) <= MAX_EN_WORDS:
            return None
        return SentencePair(en, zh, name, frozenset(combos))

    def unique_pairs(self, rng: random.Random, max_draws: int | None = None):
        """Yield pairs whose English and Chinese text are both new (one translation per sentence)."""
        seen_en, seen_zh = set(), set()
        draws = 0
        while max_draws is None or draws < max_draws:
            draws += 1
            pair = self.sample(rng)
            if pair is None or pair.en in seen_en or pair.zh in seen_zh:
                continue
            seen_en.add(pair.en)
            seen_zh.add(pair.zh)
            yield pair
