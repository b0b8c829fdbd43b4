"""Codec training on tiny seeded configs: the GAN back end's loss falls in a few steps; the
SemanticTokenizer and the Decoder train through the packaged configs (caches built from tiny
token nodes) and end better than where they started."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.nodes.codec_cache import FrameCache, collate_crops
from dragoman.nodes.decoder import TARGET_RATES, Decoder, WaveDecoder, build_decoder_cache
from dragoman.nodes.training import load_train_config, train

SR = 16000
TINY_CONTENT = {"dim": 32, "heads": 2, "encoder_layers": 1, "kernel_size": 7}
TINY_SPEAKER = {"channels": 16, "res2_scale": 4, "se_bottleneck": 8, "pooled_channels": 32, "attention_hidden": 8,
                "embedding_dim": 16, "latent_dim": 16, "perceiver_heads": 2, "perceiver_layers": 1, "ref_seconds": 1.0}


def voice(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A vowel-like tone whose pitch glides, with a noise burst in the middle."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    track = f0 * (1 + 0.2 * np.sin(np.linspace(0, 3 * np.pi, n)))
    phase = 2 * np.pi * np.cumsum(track) / SR
    wav = sum(np.sin(k * phase) * np.exp(-((k * f0 - 700) / 900) ** 2) for k in range(1, 40))
    wav[n // 2 : n // 2 + 1600] = rng.standard_normal(1600) * 0.3
    return (0.15 * wav / np.abs(wav).max()).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A six-line manifest and tiny random token nodes saved as .nemo files."""
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
    from dragoman.nodes.semantic_tokenizer import SemanticTokenizer
    from dragoman.nodes.speaker_encoder import SpeakerEncoder

    root = tmp_path_factory.mktemp("codec")
    rows = []
    for i in range(6):
        path = root / f"u{i}.wav"
        sf.write(path, voice(0.8 + 0.2 * i, 110 + 40 * (i % 2), i), SR)
        rows.append({"audio_filepath": str(path), "duration": 0.8 + 0.2 * i, "speaker": f"s{i % 2}",
                     "emotion": ["neutral", "happy"][i % 2], "text": "a", "lang": "en"})
    manifest = root / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    torch.manual_seed(0)
    nodes = {
        "semantic": SemanticTokenizer({"content_net": TINY_CONTENT, "net": {"dim": 16, "blocks": 1, "recon_blocks": 1, "fsq_levels": [4, 4, 3]}}),
        "speaker": SpeakerEncoder({"net": TINY_SPEAKER}),
        "emotion": EmotionTokenizer({"net": {"channels": 8, "layers": 1}}),
    }
    paths = {}
    for name, node in nodes.items():
        paths[name] = root / f"{name}.nemo"
        node.save_to(str(paths[name]))
    return {"root": root, "manifest": manifest, "paths": paths, "nodes": nodes}


def test_wave_generator_gan_loss_falls_in_a_few_steps(corpus):
    import lightning.pytorch as pl

    n = corpus["nodes"]
    cache = build_decoder_cache(str(corpus["manifest"]), n["semantic"], n["speaker"], n["emotion"], n_mels=24)
    items = []
    for i in range(2):
        item = cache.item(i, 0, 20)
        from dragoman.nodes.audio.io import read_audio

        item["wav"] = read_audio(cache.meta["audio"][i])[: 20 * 320]
        items.append(item)
    batch = collate_crops(items, dict(TARGET_RATES, wav=320))
    torch.manual_seed(0)
    node = WaveDecoder({"net": {"codebook_size": 48, "dim": 16, "prenet_blocks": 1, "channels": 32, "conditioning": {"dim": 16}},
                        "discriminator": {"period_channels": 4, "scale_channels": 4, "periods": [2, 3], "scales": 2},
                        "optim": {"lr": 0.002}})
    mel = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, b, i):
            mel.append(float(outputs["mel"]))

    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Record()])
    trainer.fit(node, train_dataloaders=torch.utils.data.DataLoader([batch] * 8, batch_size=None))
    assert len(mel) == 8
    assert np.mean(mel[-3:]) < 0.8 * mel[0], mel


def test_decoder_adversary_trains_both_networks_and_the_envelope_loss_falls(corpus):
    """With `adversary`, each step updates the discriminator and then the generator (manual
    optimisation); the reconstruction terms still fall and both networks move."""
    import lightning.pytorch as pl

    n = corpus["nodes"]
    cache = build_decoder_cache(str(corpus["manifest"]), n["semantic"], n["speaker"], n["emotion"], n_mels=24)
    batch = collate_crops([cache.item(i, 0, 20) for i in range(3)], TARGET_RATES)
    torch.manual_seed(0)
    node = Decoder({"net": {"codebook_size": 48, "dim": 16, "token_blocks": 1, "frame_blocks": 1, "n_mels": 24,
                            "conditioning": {"dim": 16}},
                    "optim": {"lr": 0.01}, "adversary": {"channels": 4, "layers": 2, "lr": 0.002}})
    start_g = [p.detach().clone() for p in node.net.parameters()]
    start_d = [p.detach().clone() for p in node.discriminator.parameters()]
    logs = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, b, i):
            logs.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Record()])
    trainer.fit(node, train_dataloaders=torch.utils.data.DataLoader([batch] * 16, batch_size=None))
    assert len(logs) == 16 and {"train_d_loss", "train_adv", "train_fm", "train_mel"} <= set(logs[0])
    assert np.mean([x["train_mel"] for x in logs[-3:]]) < 0.8 * logs[0]["train_mel"]
    assert all(not torch.equal(a, b) for a, b in zip(start_g, node.net.parameters()) if b.requires_grad)
    assert sum(not torch.equal(a, b) for a, b in zip(start_d, node.discriminator.parameters())) == len(start_d)


def _data_overrides(corpus, run_dir, cache_name):
    p = corpus["paths"]
    out = []
    for split in ("train_ds", "validation_ds"):
        out += [f"model.{split}.manifest={corpus['manifest']}", f"model.{split}.cache={run_dir}/{cache_name}_{split}.pt",
                f"model.{split}.batch_size=3"]
    return out, p


def test_decoder_trains_through_its_config_and_beats_its_start(corpus, tmp_path):
    overrides, p = _data_overrides(corpus, tmp_path, "dec")
    for split in ("train_ds", "validation_ds"):
        overrides += [f"model.{split}.semantic_tokenizer={p['semantic']}", f"model.{split}.speaker_encoder={p['speaker']}",
                      f"model.{split}.emotion_tokenizer={p['emotion']}"]
    overrides += ["model.net.codebook_size=48", "model.net.dim=16", "model.net.token_blocks=1", "model.net.frame_blocks=1",
                  "model.net.n_mels=24", "model.net.conditioning.dim=16", "model.optim.lr=0.01", "trainer.max_epochs=12",
                  "trainer.enable_progress_bar=false", f"exp.dir={tmp_path}", f"save_to={tmp_path}/dec.nemo"]
    cfg = load_train_config("decoder", overrides=overrides)
    trained = train(cfg)
    torch.manual_seed(0)
    fresh = Decoder(cfg.model)
    batch = next(iter(trained.make_dataloader(cfg.model.validation_ds, train=False)))
    trained.eval()
    fresh.eval()
    with torch.no_grad():
        before, after = fresh._losses(batch)[0], trained._losses(batch)[0]
    assert float(after["mel"]) < 0.6 * float(before["mel"])
    assert float(after["voicing"]) < float(before["voicing"])
    restored = Decoder.restore_from(tmp_path / "dec.nemo")
    cache = FrameCache.load(tmp_path / "dec_train_ds.pt")
    audio = restored.decode([cache.item(0)["semantic"]], [cache.item(0)["speaker"]], [cache.item(0)["emotion"]])[0]
    assert audio.shape == (int(cache.lengths[0]) * 320,)


def test_semantic_tokenizer_trains_through_its_config(corpus, tmp_path):
    from dragoman.nodes.semantic_tokenizer import SemanticTokenizer

    overrides, _ = _data_overrides(corpus, tmp_path, "sem")
    overrides += ["model.content_init=null"] + [f"+model.content_net.{k}={v}" for k, v in TINY_CONTENT.items()]
    overrides += ["model.net.dim=16", "model.net.blocks=1", "model.net.recon_blocks=1", "model.net.fsq_levels=[4,4,3]",
                  "model.optim.lr=0.01", "trainer.max_epochs=10", "trainer.enable_progress_bar=false",
                  f"exp.dir={tmp_path}", f"save_to={tmp_path}/sem.nemo"]
    cfg = load_train_config("semantic_tokenizer", overrides=[o.lstrip("+") for o in overrides])
    trained = train(cfg)
    torch.manual_seed(0)
    fresh = SemanticTokenizer(cfg.model)
    fresh.content.load_state_dict(trained.content.state_dict())  # same frozen features
    batch = next(iter(trained.make_dataloader(cfg.model.validation_ds, train=False)))
    with torch.no_grad():
        before, after = fresh._losses(batch)["loss"], trained._losses(batch)["loss"]
    assert float(after) < 0.7 * float(before)
    tokens = SemanticTokenizer.restore_from(tmp_path / "sem.nemo").run(audio=[torch.from_numpy(voice(1.0, 120, 9))])
    assert tokens["semantic_tokens"][0].shape == (50,)
