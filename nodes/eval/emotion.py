"""Emotion agreement: does an emotion classifier give the output the source's label?

A classifier has `name`, `independent` (False when it was trained on the same corpus as the
system under test, which flatters the system) and `classify(wavs) -> list[str]` on 16 kHz mono
tensors. The source's label is the manifest's `emotion` field when every scored line has one,
otherwise the classifier's own label for the source audio (then the metric is "same emotion as
the source according to the classifier", which needs no labels).

Registered: `emotion-tokenizer:PATH.nemo`, dragoman's EmotionTokenizer node restored from a
checkpoint. It is trained on dragoman's corpus, so it is marked not independent.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from dragoman.nodes.errors import DragomanError
from dragoman.nodes.eval.plugins import Registry

EMOTION_CLASSIFIERS = Registry("emotion classifier", "dragoman.eval.emotion_classifiers")


class EmotionClassifier(Protocol):
    name: str
    independent: bool

    def classify(self, wavs: Sequence) -> list[str]: ...


def agreement(source_labels: Sequence[str | None], output_labels: Sequence[str | None]) -> float | None:
    """Share of utterances whose output label equals the source label (pairs with a missing
    label are left out); None when no pair is complete."""
    pairs = [(s, o) for s, o in zip(source_labels, output_labels) if s is not None and o is not None]
    if not pairs:
        return None
    return sum(s == o for s, o in pairs) / len(pairs)


class EmotionTokenizerClassifier:
    """The EmotionTokenizer node's label head (NeMo loads lazily, on construction)."""

    independent = False

    def __init__(self, checkpoint: str | None):
        if not checkpoint:
            raise DragomanError("emotion classifier 'emotion-tokenizer' needs a checkpoint: emotion-tokenizer:PATH.nemo")
        from dragoman.nodes.emotion_tokenizer import EmotionTokenizer

        self.node = EmotionTokenizer.restore_from(checkpoint)
        self.name = f"emotion-tokenizer:{checkpoint}"

    def classify(self, wavs: Sequence) -> list[str]:
        return list(self.node.run(audio=list(wavs))["emotion"])


EMOTION_CLASSIFIERS.register("emotion-tokenizer", EmotionTokenizerClassifier)
