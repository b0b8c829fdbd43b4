"""Text-only zh/en pairs from the corpus grammar: language-model and machine-translation data.

Rendering speech is the slow part of `dragoman data build` (~2.5 min per 1,000 pairs on 2 cores);
text is free (~65k pairs/s). The recogniser's n-gram LMs and the Translator's MT task learn the
grammar far better from tens of thousands of sentences than from the 1,600 rendered train pairs
(measured in the README), so this writes a text manifest of its own.

Held-out evaluation stays held out:
- no sentence uses a held-out (adjective, noun) or (verb, noun) combination (`heldout_combos`),
  the combinations the `unseen_combo` half of the test splits is drawn from;
- no sentence equals (after `text_units.normalize_text`) a sentence of the manifests given as `exclude`
  (the corpus's dev and test splits), in either language.

Rows are manifest lines without audio, two per pair (one per language), so every reader of
manifests (`dragoman node lm`, `translator_data`) takes them as they are:
    {"pair_id": "text-000042", "lang": "zh", "text": ..., "translation": ..., "template": ...}
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable, Iterator

from dragoman.nodes.data.grammar import Grammar, heldout_combos
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import read_manifest, write_manifest
from dragoman.nodes.text_units import normalize_text


def _key(text: str) -> str:
    """Normalised sentence whatever its language (Han text has no letters to lower-case, so the
    English rules keep it as it is, less punctuation)."""
    return normalize_text(text, "en")


def excluded_sentences(manifests: Iterable[str | Path]) -> set[str]:
    """Normalised `text` and `translation` of every line of `manifests`."""
    out: set[str] = set()
    for path in manifests:
        for row in read_manifest(path):
            for key in ("text", "translation"):
                if row.get(key):
                    out.add(_key(str(row[key])))
    return out


def grammar_text_pairs(n_pairs: int, seed: int, exclude: set[str], max_draws: int | None = None) -> Iterator[dict]:
    """Yield up to `n_pairs` manifest rows pairs (zh row, then en row); stops early, with fewer,
    when `max_draws` grammar draws (default 20 per pair asked) find no more new sentences."""
    if n_pairs < 0:
        raise DragomanError(f"--pairs must be >= 0, got {n_pairs}")
    held = heldout_combos()
    draws = max_draws if max_draws is not None else 20 * n_pairs + 100
    kept = 0
    for pair in Grammar().unique_pairs(random.Random(seed), max_draws=draws):
        if kept >= n_pairs:
            return
        if pair.combos & held or _key(pair.zh) in exclude or _key(pair.en) in exclude:
            continue
        pair_id = f"text-{kept:06d}"
        yield {"pair_id": pair_id, "lang": "zh", "text": pair.zh, "translation": pair.en, "template": pair.template}
        yield {"pair_id": pair_id, "lang": "en", "text": pair.en, "translation": pair.zh, "template": pair.template}
        kept += 1


def write_text_pairs(out: str | Path, n_pairs: int, seed: int, exclude_manifests: Iterable[str | Path] = (),
                     fmt: str = "manifest") -> dict:
    """Write the pairs atomically; return a short report. `fmt` "manifest": two rows per pair as
    above; "pairs": one {"zh", "en", "template"} row per pair, the input of `dragoman data import
    pairs` (which renders them: more training speech that still avoids the test sentences)."""
    if fmt not in ("manifest", "pairs"):
        raise DragomanError(f"--format {fmt!r}: expected 'manifest' or 'pairs'")
    exclude_manifests = list(exclude_manifests)
    exclude = excluded_sentences(exclude_manifests)
    rows = list(grammar_text_pairs(n_pairs, seed, exclude))
    if fmt == "pairs":
        rows = [{"zh": zh["text"], "en": en["text"], "template": zh["template"]} for zh, en in zip(rows[::2], rows[1::2])]
    path = write_manifest(out, rows)
    return {"out": str(path), "pairs": len(rows) // (2 if fmt == "manifest" else 1), "asked": n_pairs,
            "excluded_sentences": len(exclude),
            "exclude_manifests": [str(p) for p in exclude_manifests], "seed": seed}
