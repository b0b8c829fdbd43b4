"""Length-bucketed batches: every item once, caps kept, less padding than fixed chunks; the token
cache built from buckets equals the one built item by item, in manifest order."""
import json
import random

import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.nodes import types as T
from dragoman.nodes.distributed import bucket_by_length
from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
from dragoman.nodes.translator_data import build_cache


def padded_cost(batches, lengths):
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("seed", range(5))
def test_buckets_cover_every_item_once_and_respect_both_caps(seed):
    rng = random.Random(seed)
    lengths = [rng.uniform(0.3, 12.0) for _ in range(rng.randrange(1, 200))]
    batches = bucket_by_length(lengths, key=float, max_total=30.0, max_items=8)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    longest = [max(lengths[i] for i in b) for b in batches]
    assert longest == sorted(longest, reverse=True)  # the biggest batch comes first
    for b in batches:
        assert len(b) <= 8
        assert len(b) * max(lengths[i] for i in b) <= 30.0
    # Greedy: a batch closed only because the next item would not fit.
    for b in batches[:-1]:
        assert len(b) == 8 or (len(b) + 1) * max(lengths[i] for i in b) > 30.0
    fixed = [list(range(k, min(k + 8, len(lengths)))) for k in range(0, len(lengths), 8)]
    assert padded_cost(batches, lengths) <= padded_cost(fixed, lengths)


def test_an_item_over_the_cap_gets_a_batch_of_its_own():
    assert bucket_by_length([5.0, 40.0, 6.0, 7.0], key=float, max_total=20.0) == [[1], [3, 2], [0]]
    assert bucket_by_length([1.0, 1.0, 1.0], key=float, max_items=2) == [[0, 1], [2]]
    assert bucket_by_length([], key=float, max_total=5.0) == []
    with pytest.raises(ValueError, match="max_total"):
        bucket_by_length([1.0], key=float, max_total=0)
    with pytest.raises(ValueError, match="max_items"):
        bucket_by_length([1.0], key=float, max_items=0)


def posing_as(kind, seed):
    """A real (tiny, randomly initialised) EmotionTokenizer whose token port is declared as
    another front node's: masked padding, FSQ codebook, utterance-level tokens."""

    class Posing(EmotionTokenizer):
        @classmethod
        def port_types(cls, cfg):
            inputs, outputs = super().port_types(cfg)
            return inputs, {"emotion_tokens": T.tokens(kind), "emotion": outputs["emotion"]}

    torch.manual_seed(seed)
    node = Posing({"net": {"channels": 8, "layers": 2, "num_tokens": 3, "fsq_levels": [5, 5, 5]}}).eval()
    with torch.no_grad():  # untrained latents sit near zero, i.e. all in one FSQ cell: spread them
        node.net.to_latent.weight.mul_(30.0)
    return node


def test_bucketed_token_cache_equals_one_by_one(tmp_path):
    rows = []
    for k in range(6):
        for lang, f0, amp in (("zh", 100 + 45 * k, 0.05 + 0.1 * k), ("en", 380 - 40 * k, 0.6 - 0.09 * k)):
            seconds = 0.4 + 0.23 * ((7 * k + len(lang)) % 6)
            t = np.arange(int(16000 * seconds)) / 16000
            path = tmp_path / f"{k}_{lang}.wav"
            wav = amp * np.sin(2 * np.pi * f0 * t) * (np.sin(2 * np.pi * 3 * t) > -0.3)
            sf.write(path, wav.astype(np.float32), 16000)
            rows.append({"audio_filepath": str(path), "duration": seconds, "text": f"{lang} {k}", "lang": lang,
                         "pair_id": k, "speaker": f"s{k % 2}", "emotion": "neutral"})
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    nodes = {"speaker": posing_as(T.SpeakerTokensType, 1), "content": posing_as(T.ContentTokensType, 2),
             "semantic": posing_as(T.SemanticTokensType, 3), "emotion": posing_as(T.EmotionTokensType, 4)}

    one = build_cache({"train": str(manifest)}, tmp_path / "one.pt", batch_size=1, **nodes)
    bucketed = build_cache({"train": str(manifest)}, tmp_path / "bucketed.pt", batch_size=5, max_seconds=4.0, **nodes)
    assert [r["text"] for r in bucketed["splits"]["train"]] == [r["text"] for r in rows]
    assert bucketed == one
    tokens = {tuple(r["speaker_tokens"]) for r in one["splits"]["train"]}
    assert len(tokens) > 4  # different clips got different tokens: the comparison can tell them apart
