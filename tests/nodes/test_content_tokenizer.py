"""ContentTokenizer on tiny configs: 12.5 Hz for any length, batched = one-by-one, .nemo round
trip, CTC decoding on hand-made log-probabilities, the recogniser learning, errors."""
import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.nodes.content_tokenizer import ContentTokenizer, speech_span
from dragoman.nodes.errors import AudioError, DragomanError, GraphError
from dragoman.nodes.phonemes import phonemize
from dragoman.nodes.text_units import BLANK, CharVocab, build_vocab, cer, ctc_greedy, normalize_text
from dragoman.nodes.trainable import pad_batch

VOCAB = [BLANK, " ", "'", "a", "b", "c", "d", "你", "好"]
TINY = {"vocab": VOCAB, "chunk_seconds": 2.0,
        "net": {"dim": 32, "heads": 2, "ff_mult": 2, "encoder_layers": 1, "head_layers": 1, "upsampled_layers": 1,
                "fsq_levels": [5, 5, 5], "dropout": 0.0}}
LETTER_HZ = {"a": 300, "b": 500, "c": 800, "d": 1200}


def spoken(word: str, seconds_per_letter: float = 0.16) -> np.ndarray:
    """A toy 'speech': each letter a tone of its own pitch, 20 ms gaps."""
    t = np.arange(int(16000 * seconds_per_letter)) / 16000
    gap = np.zeros(320)
    parts = [np.concatenate([0.3 * np.sin(2 * np.pi * LETTER_HZ[ch] * t) * np.hanning(t.size), gap]) for ch in word]
    return np.concatenate([gap, *parts]).astype(np.float32)


@pytest.fixture(scope="module")
def node():
    torch.manual_seed(0)
    return ContentTokenizer(TINY).eval()


@pytest.mark.parametrize("seconds", [0.025, 0.5, 1.0, 3.3, 7.77])
def test_token_rate_is_12_5_hz_for_any_length(node, seconds):
    n = int(seconds * 16000)
    tokens = node.run(audio=[torch.randn(n) * 0.1])["content_tokens"][0]
    frames = (n - 400) // 160 + 1
    assert len(tokens) == math.ceil(frames / 8)
    assert abs(len(tokens) - seconds * 12.5) <= 1
    assert int(tokens.min()) >= 0 and int(tokens.max()) < node.codebook_size == 125


def test_long_input_is_chunked_without_changing_the_token_count(node):
    wav = torch.randn(int(5.3 * 16000)) * 0.1  # chunk_seconds=2 -> three chunks
    tokens = node.run(audio=[wav])["content_tokens"][0]
    assert len(tokens) == math.ceil(((wav.numel() - 400) // 160 + 1) / 8)
    first_chunk = node.run(audio=[wav[: 25 * 1280]])["content_tokens"][0]
    assert torch.equal(tokens[:25], first_chunk)


def test_batched_equals_one_by_one(node):
    torch.manual_seed(1)
    wavs = [torch.randn(n) * 0.2 for n in (16000, 4100, 9000, 30000)]
    langs = ["en", "zh", None, "en"]
    batch = node.run(audio=wavs, language=langs)
    for i, (w, lang) in enumerate(zip(wavs, langs)):
        alone = node.run(audio=[w], language=[lang])
        assert torch.equal(alone["content_tokens"][0], batch["content_tokens"][i])
        assert alone["transcript"][0] == batch["transcript"][i]
    assert node.transcribe(wavs, lang="en") == [node.transcribe([w], lang="en")[0] for w in wavs]
    feats = node.encoder_features(wavs)
    for w, f in zip(wavs, feats):
        torch.testing.assert_close(node.encoder_features([w])[0], f, atol=1e-5, rtol=1e-5)
        assert f.shape == (math.ceil(((w.numel() - 400) // 160 + 1) / 4), 32)


def test_edge_augmentation_re_places_the_speech_in_fresh_silence():
    """The speech span comes back intact, with 0..lead_s of silence in front and 0..trail_s
    behind whatever the recording had (shorter edges too); hiss lands at the level drawn from
    noise_dbfs; off by default."""
    gen = torch.Generator().manual_seed(0)
    speech = [torch.rand(n, generator=gen) - 0.5 for n in (1600, 4000, 2400)]
    items = [torch.cat([torch.zeros(lead), s, torch.zeros(trail)]) for s, lead, trail in zip(speech, (0, 8000, 320), (9600, 0, 4800))]
    wav, lengths = pad_batch(items)
    plain = ContentTokenizer(TINY)
    assert plain._augment_edges(wav, lengths)[0] is wav
    torch.manual_seed(0)
    node = ContentTokenizer(dict(TINY, edges={"prob": 1.0, "lead_s": 0.1, "trail_s": 0.2}))
    out, out_lengths = node._augment_edges(wav, lengths)
    for s, row, n in zip(speech, out, out_lengths.tolist()):
        assert len(s) <= n <= len(s) + 0.3 * 16000
        start = int(torch.nonzero(row[:n]).flatten()[0])
        assert start <= 0.1 * 16000 and torch.equal(row[start : start + len(s)], s)
        assert not row[start + len(s) :].any()
    assert int(out_lengths[0]) < len(items[0]) and int(out_lengths[1]) < len(items[1])  # long edges shortened
    hiss = ContentTokenizer(dict(TINY, edges={"noise_prob": 1.0, "noise_dbfs": [-40.0, -40.0]}))
    noisy, same = hiss._augment_edges(torch.zeros(2, 16000), torch.tensor([16000, 16000]))
    assert torch.equal(same, torch.tensor([16000, 16000]))
    assert float(noisy.pow(2).mean().sqrt()) == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize("edges, match", [
    ({"noise_dbfs": [-40.0]}, "noise_dbfs must be"), ({"noise_dbfs": [-30.0, -60.0]}, "noise_dbfs must be"),
    ({"noise_dbfs": [-20.0, 6.0]}, "noise_dbfs must be"), ({"prob": 1.5}, "prob must be in"),
    ({"lead_s": -0.1}, "lead_s must be"),
])
def test_bad_edge_settings_are_one_line_errors(edges, match):
    with pytest.raises(GraphError, match=f"model.edges: .*{match}") as err:
        ContentTokenizer(dict(TINY, edges=edges))
    assert "\n" not in str(err.value)


def test_speech_span_finds_the_loud_part():
    wav = torch.cat([torch.zeros(1000), 0.5 * torch.ones(3200), 1e-4 * torch.ones(800), torch.zeros(900)])
    assert speech_span(wav, 16000) == (960, 4320)  # whole 10 ms frames around samples 1000-4200
    assert speech_span(torch.zeros(500), 16000) == (0, 500)


def test_recognize_tokens_reads_the_same_head(node):
    wavs = [torch.randn(12000) * 0.3, torch.randn(20000) * 0.3]
    out = node.run(audio=wavs)
    assert node.recognize_tokens(out["content_tokens"]) == out["transcript"]


def test_nemo_round_trip_keeps_weights_and_alphabet(node, tmp_path):
    node.save_to(str(tmp_path / "content.nemo"))
    restored = ContentTokenizer.restore_from(tmp_path / "content.nemo")
    assert list(restored.cfg.vocab) == VOCAB
    wav = [torch.randn(11000) * 0.2]
    assert torch.equal(restored.run(audio=wav)["content_tokens"][0], node.run(audio=wav)["content_tokens"][0])


def test_ctc_greedy_decoding_of_hand_made_log_probs(node):
    ids = {ch: VOCAB.index(ch) for ch in VOCAB[1:]}
    # frames: a a - a b ' ' 你 你 c : repeats merge, a blank separates a doubled letter
    path = [ids["a"], ids["a"], 0, ids["a"], ids["b"], ids[" "], ids["你"], ids["你"], ids["c"]]
    log_probs = torch.full((1, len(path), len(VOCAB)), -10.0)
    log_probs[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
    assert ctc_greedy(path) == [ids["a"], ids["a"], ids["b"], ids[" "], ids["你"], ids["c"]]
    units = node._greedy(log_probs, torch.tensor([len(path)]), [None])[0]
    assert node.vocab.decode(units) == "aab你c"
    assert node.vocab.decode(units, "en") == "aab 你c"
    # English mask: 你 is not allowed; the frame falls back to the best allowed unit (blank here)
    en = node.vocab.decode(node._greedy(log_probs, torch.tensor([len(path)]), ["en"])[0], "en")
    assert en == "aab c"
    zh = node.vocab.decode(node._greedy(log_probs, torch.tensor([len(path)]), ["zh"])[0], "zh")
    assert zh == "你"


def test_text_units_normalise_like_speech_bleu():
    assert normalize_text("Hello, it’s ME!", "en") == "hello it's me"
    assert normalize_text("你好，世界。 ", "zh") == "你好世界"
    vocab = CharVocab(build_vocab([{"text": "Hi there", "lang": "en"}, {"text": "你好", "lang": "zh"}]))
    assert vocab.units[:2] == [BLANK, " "] and "你" in vocab.units and "h" in vocab.units
    assert vocab.decode(vocab.encode("Hi there", "en"), "en") == "hi there"
    assert vocab.decode(vocab.encode("hi 你好 there", "en")) == "hi你好there"
    assert cer(["abd"], ["abc"]) == pytest.approx(1 / 3)
    assert cer(["", "ab"], ["ab", "ab"]) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def toy_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("content")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        word = "".join(rng.choice(list("abcd"), size=rng.integers(2, 5)))
        path = root / f"u{i}.wav"
        sf.write(path, spoken(word), 16000)
        rows.append({"audio_filepath": str(path), "duration": len(spoken(word)) / 16000, "text": word, "lang": "en",
                     "speaker": f"s{i % 2}"})
    path = root / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_training_steps_reduce_the_ctc_loss_and_build_the_alphabet(toy_manifest):
    torch.manual_seed(0)
    cfg = {k: v for k, v in TINY.items() if k != "vocab"}
    cfg.update(train_ds={"manifest": str(toy_manifest), "batch_size": 12}, adversary_weight=0.5, aux_ctc_weight=0.3)
    node = ContentTokenizer(cfg)
    assert list(node.cfg.vocab) == [BLANK, " ", "a", "b", "c", "d"] and list(node.cfg.speakers) == ["s0", "s1"]
    batch = next(iter(node._train_dl))
    optimizer = torch.optim.AdamW(node.parameters(), lr=3e-3)
    node.train()
    losses = []
    for _ in range(30):
        loss, logs, _ = node._losses(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(logs["ctc"].detach()))
    assert {"adv", "aux_ctc", "latent_excess"} <= set(logs)
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_phoneme_targets_for_the_auxiliary_head(toy_manifest):
    assert phonemize("Does he like to cook?", "en") == tuple("dʌzhiːlaɪktəkʊk")
    zh = phonemize("他喜欢做饭吗？", "zh")
    assert zh[:4] == ("t", "h", "ɑ", "5") and sum(ch.isdigit() for ch in zh) == 6  # one tone per syllable
    cfg = {k: v for k, v in TINY.items() if k != "vocab"}
    cfg.update(train_ds={"manifest": str(toy_manifest), "batch_size": 6}, aux_ctc_weight=0.3, aux_units="phones")
    node = ContentTokenizer(cfg)
    assert node.cfg.phones[0] == BLANK and len(node.cfg.phones) > 3
    batch = next(iter(node._train_dl))
    rows = node._train_dl.dataset.rows
    assert node.net.aux_chars.out_features == 2 * len(node.cfg.phones)
    loss, logs, out = node._losses(batch)
    assert out["aux_log_probs"].shape[-1] == len(node.cfg.phones) and torch.isfinite(logs["aux_ctc"])
    first = [node.cfg.phones[i] for i in batch[5][0, : batch[6][0]].tolist()]
    assert tuple(first) in {phonemize(r["text"], "en") for r in rows}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_unit_alignment_fills_every_cache_record_from_the_phoneme_head(toy_manifest, node):
    from dragoman.nodes.errors import DragomanError
    from dragoman.nodes.manifest import read_manifest
    from dragoman.nodes.speech_units import align_records, split_units, units_phones

    cfg = {k: v for k, v in TINY.items() if k != "vocab"}
    cfg.update(train_ds={"manifest": str(toy_manifest), "batch_size": 6}, aux_ctc_weight=0.3, aux_units="phones")
    phoneme_node = ContentTokenizer(cfg)
    rows = read_manifest(toy_manifest)
    records = [{"text": r["text"], "lang": "en", "semantic_tokens": [0] * int(r["duration"] * 50)} for r in rows]
    counts = align_records(records, rows, phoneme_node, batch_size=5)
    assert counts["aligned"] + counts["fallback"] == len(rows)
    for r in records:
        assert r["unit_phones"] == units_phones(split_units(r["text"]))
        assert r["unit_bounds"][0] == 0 and len(r["unit_bounds"]) == len(split_units(r["text"]))
        assert r["unit_bounds"] == sorted(r["unit_bounds"]) and r["unit_bounds"][-1] <= len(r["semantic_tokens"])
    with pytest.raises(DragomanError, match="do not match the token cache"):
        align_records(records[1:], rows, phoneme_node)
    with pytest.raises(DragomanError, match="auxiliary phoneme head"):
        align_records(records, rows, node)


def test_bad_input_is_a_one_line_error(node):
    with pytest.raises(AudioError, match="too short"):
        node.run(audio=[torch.zeros(100)])
    with pytest.raises(AudioError, match="mono 1-D"):
        node.run(audio=[torch.zeros(2, 16000)])
    with pytest.raises(AudioError, match="NaN"):
        node.run(audio=[torch.full((16000,), float("nan"))])
    with pytest.raises(AudioError, match="expects 16000 Hz"):
        node.transcribe([torch.zeros(16000)], sample_rate=8000)
    with pytest.raises(DragomanError, match="bad content token ids"):
        node.recognize_tokens([torch.tensor([0, 1, 10_000])])
    with pytest.raises(GraphError, match="no `vocab`"):
        ContentTokenizer({"net": TINY["net"]})
    silent = node.run(audio=[torch.zeros(16000)])  # documented: silence is tokenised
    assert len(silent["content_tokens"][0]) == 13


def test_packaged_config_trains_with_lightning_and_saves(toy_manifest, tmp_path):
    from dragoman.nodes.training import load_train_config, train

    net = [f"model.net.{k}={v}" for k, v in TINY["net"].items() if k != "fsq_levels"]
    cfg = load_train_config("content_tokenizer", overrides=[
        f"model.train_ds.manifest={toy_manifest}", f"model.validation_ds.manifest={toy_manifest}",
        "model.train_ds.num_workers=0", "model.validation_ds.num_workers=0", "model.train_ds.batch_size=8",
        *net, "model.net.fsq_levels=[5,5,5]", "model.optim.sched.warmup_steps=2",
        "trainer.max_epochs=2", "trainer.enable_progress_bar=false", f"exp.dir={tmp_path}",
        f"save_to={tmp_path}/c.nemo"])
    train(cfg)
    restored = ContentTokenizer.restore_from(tmp_path / "c.nemo")
    assert list(restored.cfg.vocab) == [BLANK, " ", "a", "b", "c", "d"]
    assert (tmp_path / "content_tokenizer" / "curves.png").is_file()


def test_head_only_fine_tuning_keeps_the_tokens_and_the_checkpoints_alphabet(toy_manifest, tmp_path):
    from dragoman.nodes.training import load_train_config, train

    torch.manual_seed(0)
    base = ContentTokenizer(dict(TINY, aux_ctc_weight=0.3))
    base.save_to(str(tmp_path / "base.nemo"))
    other = tmp_path / "other.jsonl"  # a manifest with a letter the checkpoint's alphabet lacks
    other.write_text(toy_manifest.read_text().replace('"text": "a', '"text": "e'))
    cfg = load_train_config("content_tokenizer", overrides=[
        f"model.train_ds.manifest={other}", f"model.validation_ds.manifest={toy_manifest}",
        "model.train_ds.num_workers=0", "model.validation_ds.num_workers=0", "model.train_ds.batch_size=8",
        "model.train_head_only=true", "model.optim.sched.warmup_steps=2", "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false", f"exp.dir={tmp_path}", f"init_from={tmp_path}/base.nemo",
        f"save_to={tmp_path}/head.nemo"])
    train(cfg)
    tuned = ContentTokenizer.restore_from(tmp_path / "head.nemo").eval()
    assert list(tuned.cfg.vocab) == list(base.cfg.vocab)  # the checkpoint's units, not the manifest's
    wavs = [torch.from_numpy(spoken(w)).float() for w in ("abca", "dcb")]
    assert all(torch.equal(a, b) for a, b in zip(base.eval().tokenize(wavs), tuned.tokenize(wavs)))
    assert not torch.equal(base.net.to_chars.weight, tuned.net.to_chars.weight)
    assert torch.equal(base.net.to_latent.weight, tuned.net.to_latent.weight)
