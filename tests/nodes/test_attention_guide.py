"""Guided attention (nodes/attention_guide.py): spans, the reconstructed heads against HF's eager
attention, the penalty's shape, and that training on it makes a head diagonal."""
import random

import pytest
import torch

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.attention_guide import (AlignLossConfig, AttentionCapture, diagonal_penalty, layer_inputs,
                                            span_attention)
from dragoman.nodes.translator import Translator
from dragoman.nodes.translator_data import build_sequence, collate_rows, pack

TINY_LM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 1024}
COUNTS = {"num_global": 16, "num_semantic": 24, "num_glm": 20, "num_emotion": 6}
TEXTS = {"zh": "我们去公园", "en": "we go to the park"}


def translator(seed=0, **extra):
    torch.manual_seed(seed)
    chars = sorted({c for t in TEXTS.values() for c in t})
    return Translator({"lm": TINY_LM, "tokens": COUNTS, "text_chars": chars, **extra})


def utterance(lang, rng, n_sem):
    return {"lang": lang, "text": TEXTS[lang], "pair_id": "p0", "speech_s": 1.5, "hq": True,
            "speaker_tokens": [rng.randrange(16) for _ in range(32)], "content_tokens": [rng.randrange(20) for _ in range(7)],
            "emotion_tokens": [rng.randrange(6) for _ in range(2)], "semantic_tokens": [rng.randrange(24) for _ in range(n_sem)]}


@pytest.fixture
def pair():
    rng = random.Random(0)
    return utterance("zh", rng, 17), utterance("en", rng, 23)


RATE = {"zh": 4.0, "en": 10.0}


@pytest.mark.parametrize("task", ["tts", "quality", "performance"])
def test_spans_point_at_the_text_and_its_speech_after_packing(pair, task):
    node = translator()
    zh, en = pair
    said = zh if task == "tts" else en
    first = build_sequence("asr", zh, zh, node.tokenizer, RATE)  # packed first: shifts the second's span
    seq = build_sequence(task, zh, en, node.tokenizer, RATE)
    assert first.align is None and seq.align is not None
    row = pack([seq, first], 4096, node.tokenizer.pad_id)
    assert len(row) == 1 and len(row[0]["align"]) == 1
    ids = row[0]["input_ids"]
    t0, t1, s0, s1 = row[0]["align"][0]
    assert node.tokenizer.decode(ids[t0:t1]) == said["text"]
    assert ids[s0:s1] == node.tokenizer.convert_tokens_to_ids([U.semantic_token(t) for t in said["semantic_tokens"]])
    assert node.tokenizer.decode(ids[s0 - 1:s0]) == U.START_SEMANTIC


def test_direct_and_text_tasks_have_no_span(pair):
    node = translator()
    zh, en = pair
    for task in ("direct", "asr", "s2tt", "mt"):
        assert build_sequence(task, zh, en, node.tokenizer, RATE).align is None
    batch = collate_rows(pack([build_sequence("asr", zh, zh, node.tokenizer, RATE)], 4096, 0), 0)
    assert batch["align"].tolist() == [[[-1, -1, -1, -1]]]


def test_span_attention_equals_hf_eager_attention_renormalised(pair):
    """The guided head rebuilt from the captured layer input = HF's own attention probabilities
    (eager implementation), restricted to the text span and renormalised, in a packed row."""
    node = translator(seed=1).eval()
    zh, en = pair
    seqs = [build_sequence("asr", zh, zh, node.tokenizer, RATE), build_sequence("tts", en, en, node.tokenizer, RATE)]
    batch = collate_rows(pack(seqs, 4096, 0), 0)
    (t0, t1, s0, s1), = batch["align"][0].tolist()
    segment = batch["segment_ids"][0]
    start = int((segment == segment[s0]).nonzero()[0])
    ids = batch["input_ids"][:, start:start + int((segment == segment[s0]).sum())]
    node.lm.config._attn_implementation = "eager"
    with torch.no_grad(), layer_inputs(node.lm) as seen:
        eager = node.lm(ids, output_attentions=True).attentions
    queries, keys = torch.arange(s0 - 1 - start, s1 - 1 - start), torch.arange(t0 - start, t1 - start)
    for i, layer in enumerate(node.lm.model.layers):
        hidden, cos, sin = seen[i]
        ours = span_attention(layer.self_attn, hidden[0], cos[0], sin[0], queries, keys, [0, 3])
        ref = eager[i][0][[0, 3]][:, queries][:, :, keys]
        torch.testing.assert_close(ours, ref / ref.sum(-1, keepdim=True), atol=1e-5, rtol=1e-4)


def test_penalty_is_zero_on_the_diagonal_and_grows_away_from_it():
    w = diagonal_penalty(40, 10, sigma=0.2)
    assert w.shape == (40, 10)
    assert w[0, 0] < 0.05 and w[-1, -1] < 0.05 and w[20, 5] < 0.05
    assert w[0, -1] > 0.99 and w[-1, 0] > 0.99
    assert torch.all(w[0, 1:] >= w[0, :-1])  # the first frame: worse the later the character


def test_captured_loss_is_low_for_a_diagonal_head_and_training_makes_one(pair):
    """Optimising the guide alone on a tiny model drives the guided head from spread attention
    to the diagonal band (mean penalty falls below a third of its start)."""
    node = translator(seed=2, align_loss={"weight": 1.0, "heads": [1], "layers": [1]})
    zh, en = pair
    batch = collate_rows(pack([build_sequence("tts", zh, zh, node.tokenizer, RATE),
                               build_sequence("performance", zh, en, node.tokenizer, RATE)], 4096, 0), 0)
    capture = AttentionCapture(node.lm, AlignLossConfig(heads=[1], layers=[1]))
    opt = torch.optim.Adam(node.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        with capture.capturing(batch["align"]):
            node(batch["input_ids"], batch["position_ids"], batch["segment_ids"])
        loss = capture.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] / 3
    # The translator's own step adds it to the token loss and logs both.
    total, acc, align = node._loss(batch)
    assert align is not None and float(align) == pytest.approx(losses[-1], rel=0.5)


def test_bad_heads_or_layers_are_named():
    node = translator()
    with pytest.raises(ValueError, match="outside the model's 2 layers x 4 heads"):
        AttentionCapture(node.lm, AlignLossConfig(heads=[4]))


def test_scheduled_sampling_replaces_only_speech_history_inputs(pair):
    """With the model made to always draw semantic token 5, a share of 1 turns every speech input
    token into it; prompt, text and labels stay; a share of 0 leaves the batch as it was."""
    zh, en = pair
    node = translator(seed=3, scheduled_sampling=1.0)
    five = node.tokenizer.convert_tokens_to_ids(U.semantic_token(5))
    column = node.writable_ids().tolist().index(five)

    def always_five(input_ids, position_ids, segment_ids):
        logits = torch.zeros(*input_ids.shape, len(node.writable_ids()))
        logits[..., column] = 50.0
        return logits

    node.forward = always_five
    batch = collate_rows(pack([build_sequence("tts", zh, zh, node.tokenizer, RATE),
                               build_sequence("asr", en, en, node.tokenizer, RATE)], 4096, 0), 0)
    torch.manual_seed(0)
    out = node._own_history(batch)
    (t0, t1, s0, s1), = batch["align"][0].tolist()
    speech = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    speech[0, s0:s1] = True
    drew_five = out["input_ids"][speech] == five
    assert drew_five.all()  # the model's draws
    assert torch.equal(out["input_ids"][~speech], batch["input_ids"][~speech])
    assert torch.equal(out["labels"], batch["labels"])
    node.cfg.scheduled_sampling = 0.0
    assert node._own_history(batch) is batch


def test_batched_loss_equals_the_per_span_reference(pair):
    """All spans of a batch in one gathered attention = each span's own `span_attention`."""
    zh, en = pair
    node = translator(seed=4).eval()
    seqs = [build_sequence(t, zh, en, node.tokenizer, RATE) for t in ("tts", "quality", "performance", "asr")]
    seqs += [build_sequence("tts", en, en, node.tokenizer, RATE)]
    batch = collate_rows(pack(seqs, 160, 0), 0)  # short rows: spans spread over several rows
    assert batch["input_ids"].shape[0] > 1
    cfg = AlignLossConfig(heads=[0, 2], layers=[0, 1])
    capture = AttentionCapture(node.lm, cfg)
    with torch.no_grad(), layer_inputs(node.lm) as seen, capture.capturing(batch["align"]):
        node(batch["input_ids"], batch["position_ids"], batch["segment_ids"])
    total, count = 0.0, 0
    for b, k in (batch["align"][..., 0] >= 0).nonzero().tolist():
        t0, t1, s0, s1 = batch["align"][b, k].tolist()
        for i, layer in enumerate(node.lm.model.layers):
            hidden, cos, sin = seen[i]
            probs = span_attention(layer.self_attn, hidden[b], cos[b], sin[b], torch.arange(s0 - 1, s1 - 1),
                                   torch.arange(t0, t1), [0, 2])
            total += float((probs * diagonal_penalty(s1 - s0, t1 - t0, 0.2)).sum())
            count += probs.shape[0] * probs.shape[1]
    assert float(capture.loss()) == pytest.approx(total / count, rel=1e-5)
