"""Emotion agreement arithmetic and the EmotionTokenizer adapter (restored from a .nemo file)."""
import pytest
import torch

from dragoman.nodes.errors import DragomanError
from dragoman.nodes.eval.judges import EMOTION_CLASSIFIERS, agreement


def test_agreement_counts_matching_labels_and_ignores_missing_pairs():
    assert agreement(["happy", "sad", "sad", "angry"], ["happy", "sad", "happy", "angry"]) == pytest.approx(0.75)
    assert agreement(["happy", None, "sad"], ["happy", "sad", None]) == pytest.approx(1.0)
    assert agreement([None], ["sad"]) is None
    assert agreement([], []) is None


def test_emotion_tokenizer_adapter_round_trip(tmp_path):
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer

    torch.manual_seed(0)
    node = EmotionTokenizer()
    path = tmp_path / "emotion.nemo"
    node.save_to(str(path))
    classifier = EMOTION_CLASSIFIERS.create(f"emotion-tokenizer:{path}")
    assert classifier.independent is False  # trained on dragoman's corpus: flagged in the report
    wavs = [torch.randn(16000) * 0.1, torch.randn(24000) * 0.3, torch.zeros(8000) + 1e-3]
    labels = classifier.classify(wavs)
    assert labels == node.run(audio=wavs)["emotion"]
    assert all(label in node.cfg.labels for label in labels)


def test_emotion_tokenizer_adapter_needs_a_checkpoint(tmp_path):
    with pytest.raises(DragomanError, match="needs a checkpoint"):
        EMOTION_CLASSIFIERS.create("emotion-tokenizer")
    with pytest.raises(DragomanError):
        EMOTION_CLASSIFIERS.create(f"emotion-tokenizer:{tmp_path / 'missing.nemo'}")
