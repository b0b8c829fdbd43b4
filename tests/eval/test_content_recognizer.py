"""`dragoman eval`'s default recogniser is the ContentTokenizer, found through its entry point."""
import torch

from dragoman.nodes.content_tokenizer import ContentTokenizer
from dragoman.nodes.eval.recognizers import DEFAULT_RECOGNIZER, RECOGNIZERS, check_batch_invariance

TINY = {"vocab": ["<blank>", " ", "a", "b", "你"], "chunk_seconds": 2.0,
        "net": {"dim": 32, "heads": 2, "ff_mult": 2, "encoder_layers": 1, "head_layers": 1, "upsampled_layers": 1,
                "fsq_levels": [5, 5, 5], "dropout": 0.0}}


def test_default_recognizer_is_registered_and_loads_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    node = ContentTokenizer(TINY)
    node.save_to(str(tmp_path / "ct.nemo"))
    assert DEFAULT_RECOGNIZER == "content-tokenizer" and RECOGNIZERS.has(DEFAULT_RECOGNIZER)
    recognizer = RECOGNIZERS.create(f"{DEFAULT_RECOGNIZER}:{tmp_path / 'ct.nemo'}")
    wavs = [torch.randn(n) * 0.1 for n in (16000, 7000, 11000)]
    texts = recognizer.transcribe(wavs, "en")
    assert texts == node.transcribe(wavs, "en") and all(isinstance(t, str) for t in texts)
    assert check_batch_invariance(recognizer, wavs, "en") == []
