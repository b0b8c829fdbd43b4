"""`node eval codec` plumbing on tiny random nodes: every metric present and in range, the token
rate exact, voice-swap partners always another speaker."""
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.nodes.codec_eval import evaluate_codec, swap_partners

SR = 16000


def test_swap_partners_pick_the_next_other_speaker():
    assert swap_partners(["a", "a", "b", "c", "c"]) == [2, 2, 3, 0, 0]
    assert swap_partners(["a", "a"]) == [None, None]


@pytest.fixture
def tiny_defaults(monkeypatch):
    """Replace each node's committed default checkpoint by a tiny random node."""
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.decoder import Decoder
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
    from dragoman.nodes.semantic_tokenizer import SemanticTokenizer
    from dragoman.nodes.speaker_encoder import SpeakerEncoder

    torch.manual_seed(0)
    content = {"dim": 32, "heads": 2, "encoder_layers": 1, "kernel_size": 7}
    nodes = {
        SemanticTokenizer: SemanticTokenizer({"content_net": content, "net": {"dim": 16, "blocks": 1, "recon_blocks": 1, "fsq_levels": [4, 4, 3]}}),
        SpeakerEncoder: SpeakerEncoder({"net": {"channels": 16, "res2_scale": 4, "se_bottleneck": 8, "pooled_channels": 32,
                                                "attention_hidden": 8, "embedding_dim": 16, "latent_dim": 16,
                                                "perceiver_heads": 2, "perceiver_layers": 1, "ref_seconds": 1.0}}),
        EmotionTokenizer: EmotionTokenizer({"net": {"channels": 8, "layers": 1}}),
        ContentTokenizer: ContentTokenizer({"net": content, "vocab": ["<blank>", " ", "a", "b", "c", "你"]}),
        Decoder: Decoder({"net": {"codebook_size": 48, "dim": 16, "token_blocks": 1, "frame_blocks": 1, "n_mels": 24,
                                  "conditioning": {"dim": 16}}}),
    }
    for cls, node in nodes.items():
        monkeypatch.setattr(cls, "default", classmethod(lambda c, map_location=None, _n=node: _n))
    return nodes


def write_manifest(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i, (speaker, lang, n) in enumerate([("s1", "en", 12000), ("s1", "zh", 16321), ("s2", "en", 9000), ("s2", "zh", 14000)]):
        t = np.arange(n) / SR
        wav = 0.2 * np.sin(2 * np.pi * (110 + 60 * i) * t * (1 + 0.1 * t)) + 0.01 * rng.standard_normal(n)
        path = tmp_path / f"{i}.wav"
        sf.write(path, wav.astype(np.float32), SR)
        rows.append({"audio_filepath": str(path), "duration": n / SR, "text": "ab" if lang == "en" else "你",
                     "lang": lang, "speaker": speaker, "emotion": "neutral"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_codec_eval_reports_every_metric(tiny_defaults, tmp_path):
    result = evaluate_codec(str(write_manifest(tmp_path)), batch_size=2)
    samples = [12000, 16321, 9000, 14000]
    assert result["token_rate_hz"] == pytest.approx(sum(math.ceil(n / 320) for n in samples) / (sum(samples) / SR))
    assert result["utterances"] == 4 and result["voice_swap_utterances"] == 4
    for key in ("cer_ratio", "spk_sim_ratio", "emotion_agreement", "voice_swap_ok", "decode_rtf", "spk_same_baseline"):
        assert isinstance(result[key], float) and math.isfinite(result[key]), key
    assert 0.0 <= result["voice_swap_ok"] <= 1.0 and 0.0 <= result["emotion_agreement"] <= 1.0
    assert result["f0_corr"] is None or -1.0 <= result["f0_corr"] <= 1.0
    assert result["speaker_judge"] in ("resemblyzer", "mfcc-stats")


def test_codec_eval_refuses_a_semantic_tokenizer_of_another_codebook(tiny_defaults, tmp_path):
    from dragoman.nodes.errors import DragomanError
    from dragoman.nodes.semantic_tokenizer import SemanticTokenizer

    other = SemanticTokenizer({"content_net": {"dim": 32, "heads": 2, "encoder_layers": 1, "kernel_size": 7},
                               "net": {"dim": 16, "blocks": 1, "recon_blocks": 1, "fsq_levels": [4, 4]}})
    other.save_to(str(tmp_path / "s16.nemo"))
    with pytest.raises(DragomanError, match=r"reads 48 semantic codes.*s16.nemo writes 16"):
        evaluate_codec(str(write_manifest(tmp_path)), batch_size=2, semantic_checkpoint=str(tmp_path / "s16.nemo"))
