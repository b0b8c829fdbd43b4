"""The ContentTokenizer's CTC head as `dragoman eval`'s default Speech-BLEU recogniser.

Registered through the `dragoman.eval.recognizers` entry point (pyproject.toml) under the name
`content-tokenizer`; `--recognizer content-tokenizer:PATH.nemo` picks another checkpoint. The
node batches by length with padding masked, which `transcribe_all` verifies before scoring. A
checkpoint with character n-gram LMs (`dragoman node lm content_tokenizer`) decodes with them:
test CER en 0.108 -> 0.038, zh 0.396 -> 0.378 for the default network.
"""
from __future__ import annotations

from typing import Sequence


class ContentTokenizerRecognizer:
    name = "content-tokenizer"

    def __init__(self, node):
        self.node = node

    def transcribe(self, wavs: Sequence, lang: str) -> list[str]:
        return self.node.transcribe(list(wavs), lang)


def content_tokenizer_recognizer(checkpoint: str | None = None) -> ContentTokenizerRecognizer:
    from dragoman.nodes.content_tokenizer import ContentTokenizer

    node = ContentTokenizer.load(checkpoint)
    return ContentTokenizerRecognizer(node)
