"""Under DDP, Lightning swaps a DistributedSampler into every training loader: each node's loader
must survive that and split into disjoint shards with the same number of steps per rank (a rank
with an extra step waits forever in the all-reduce). FSDP shards the Translator one decoder
layer at a time; on CPU the strategy is built and its policy checked, a real run needs GPUs."""
import json
import random

import numpy as np
import pytest
import soundfile as sf
import torch
# What Lightning's data connector does to a module's training loader: ask for it with the
# arguments of every DataLoader and BatchSampler made in the hook recorded, then re-build it
# around a DistributedSampler.
from lightning.fabric.utilities.data import _replace_dunder_methods
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities.data import _update_dataloader
from omegaconf import OmegaConf

from dragoman.nodes.distributed import fsdp_strategy, make_trainer, trainer_kwargs
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.training import load_train_config
from dragoman.nodes.translator import Translator

TINY_LM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 1024}
COUNTS = {"num_global": 16, "num_semantic": 24, "num_glm": 20, "num_emotion": 6}
TEXTS = {"zh": ["红色的花", "我们去公园", "天气很好", "他在看书", "猫在睡觉"],
         "en": ["red flowers", "we go to the park", "the weather is fine", "he reads", "the cat sleeps"]}


def token_cache(path):
    """A token cache as `translator_data.build_cache` writes it, with random speech tokens."""
    rng = random.Random(0)

    def record(lang, k):
        return {"lang": lang, "text": TEXTS[lang][k], "pair_id": f"p{k}", "speech_s": 1.0 + 0.1 * k, "hq": True,
                "speaker_tokens": [rng.randrange(16) for _ in range(32)],
                "content_tokens": [rng.randrange(20) for _ in range(5 + k)],
                "emotion_tokens": [rng.randrange(6) for _ in range(2)],
                "semantic_tokens": [rng.randrange(24) for _ in range(8 + 2 * k)]}

    splits = {"train": [record(lang, k) for k in range(5) for lang in ("zh", "en")],
              "dev": [record(lang, k) for k in range(2) for lang in ("zh", "en")]}
    chars = sorted({c for recs in splits.values() for r in recs for c in r["text"]})
    torch.save({"splits": splits, "mean_rate": {"zh": 4.0, "en": 10.0}, "token_counts": COUNTS, "text_chars": chars},
               path)
    return path


def text_pairs(path):
    """A text manifest as `dragoman data text` writes it (one sentence has a character the cache lacks)."""
    rows = [{"pair_id": "t0", "lang": "zh", "text": "红色的猫"}, {"pair_id": "t0", "lang": "en", "text": "red cats!"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def translator_training_config(cache, tmp_path, extra=()):
    cfg = load_train_config("translator", overrides=[
        f"cache={cache}", f"text_pairs={text_pairs(tmp_path / 'text.jsonl')}", "model.train_ds.text_mt_per_epoch=2",
        *[f"model.lm.{k}={v}" for k, v in TINY_LM.items()], "model.train_ds.max_tokens_per_row=96",
        "model.train_ds.rows_per_batch=2", "model.validation_ds.rows_per_batch=2", f"exp.dir={tmp_path}", *extra])
    return Translator.prepare_training_config(cfg)


def translator_node(tmp_path):
    cfg = translator_training_config(token_cache(tmp_path / "cache.pt"), tmp_path)
    assert "!" in cfg.model.text_chars  # the vocabulary covers the text pairs too
    return Translator(cfg.model)


def audio_manifest(tmp_path, n=14):
    rows = []
    for i in range(n):
        path = tmp_path / f"clip{i}.wav"
        wav = 0.2 * np.sin(2 * np.pi * (120 + 20 * i) * np.arange(4000 + 300 * i) / 16000)
        sf.write(path, wav.astype(np.float32), 16000)
        rows.append({"audio_filepath": str(path), "duration": (4000 + 300 * i) / 16000, "emotion": "happy",
                     "speaker": f"s{i % 3}", "text": "ab", "lang": "en"})
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def emotion_node(tmp_path):
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer

    return EmotionTokenizer({"net": {"channels": 8, "layers": 1},
                             "train_ds": {"manifest": str(audio_manifest(tmp_path)), "batch_size": 3}})


def content_node(tmp_path):
    from dragoman.nodes.content_tokenizer import ContentTokenizer

    return ContentTokenizer({"net": {"dim": 32, "heads": 2, "encoder_layers": 1, "fsq_levels": [5, 5, 5]},
                             "train_ds": {"manifest": str(audio_manifest(tmp_path)), "batch_size": 3, "bucket": 2}})


def shards(node, world=2):
    """The node's training loader and the batches of dataset indices each rank would train on,
    as Lightning sets them up (`_request_dataloader`, then `_prepare_dataloader`)."""
    with _replace_dunder_methods(torch.utils.data.DataLoader, "dataset"), \
            _replace_dunder_methods(torch.utils.data.BatchSampler):
        loader = node.train_dataloader()
    out = []
    for rank in range(world):
        sampler = torch.utils.data.DistributedSampler(loader.dataset, num_replicas=world, rank=rank, shuffle=True,
                                                      seed=0)
        sharded = _update_dataloader(loader, sampler, mode=RunningStage.TRAINING)
        next(iter(sharded))  # the re-built loader still loads and collates
        assert type(sharded.batch_sampler) is type(loader.batch_sampler)  # and still batches its own way
        out.append([list(batch) for batch in sharded.batch_sampler])
    return loader, out


@pytest.mark.parametrize("make_node", [translator_node, emotion_node, content_node],
                         ids=["translator_packed_rows", "emotion_audio", "content_bucketed_audio"])
def test_training_loader_splits_into_equal_disjoint_shards(make_node, tmp_path):
    loader, per_rank = shards(make_node(tmp_path))
    assert len(per_rank[0]) == len(per_rank[1]) > 0
    seen = [i for rank in per_rank for batch in rank for i in batch]
    n = len(loader.dataset)
    assert set(seen) == set(range(n))
    assert len(seen) - n < 2  # DistributedSampler repeats at most one item to even out the shards


def test_content_tokenizer_trains_on_two_ddp_processes(tmp_path):
    """The whole path, Lightning's own sampler injection included, with 2 gloo processes: a rank
    left with a step more than the other would wait in the all-reduce until the timeout."""
    import subprocess
    import sys

    from dragoman.nodes.content_tokenizer import ContentTokenizer

    manifest = audio_manifest(tmp_path)
    overrides = [f"model.{split}.{k}={v}" for split in ("train_ds", "validation_ds")
                 for k, v in {"manifest": manifest, "batch_size": 3, "num_workers": 0}.items()]
    overrides += ["model.train_ds.bucket=2", "model.aux_ctc_weight=0", "model.net.dim=32", "model.net.heads=2",
                  "model.net.encoder_layers=1", "model.net.head_layers=1", "model.net.fsq_levels=[5,5,5]",
                  "trainer.max_epochs=2", "trainer.accelerator=cpu", "trainer.strategy=ddp", "trainer.devices=2",
                  "trainer.enable_progress_bar=false", f"exp.dir={tmp_path}", f"save_to={tmp_path}/content.nemo"]
    out = subprocess.run([sys.executable, "-m", "dragoman.graphs.cli", "train", "content_tokenizer", *overrides],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    # Each rank buckets its 7 of the 14 clips into ceil(7 / 3) = 3 batches an epoch (one process
    # reading them all would take 5 steps).
    last = torch.load(tmp_path / "content_tokenizer" / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 2 * 3
    assert ContentTokenizer.restore_from(tmp_path / "content.nemo").cfg.train_ds.bucket == 2


def test_fsdp_wraps_each_translator_decoder_layer(tmp_path):
    from lightning.pytorch.strategies import FSDPStrategy
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

    cfg = translator_training_config(token_cache(tmp_path / "cache.pt"), tmp_path, extra=[
        "trainer.strategy=fsdp", "trainer.precision=bf16-mixed", "fsdp.sharding_strategy=SHARD_GRAD_OP",
        "fsdp.activation_checkpointing=true"])
    kwargs = trainer_kwargs(Translator, cfg)
    strategy = kwargs["strategy"]
    assert isinstance(strategy, FSDPStrategy) and kwargs["precision"] == "bf16-mixed"
    assert strategy.sharding_strategy.name == "SHARD_GRAD_OP"
    node = Translator(cfg.model)
    # The policy FSDP applies when it wraps the model (the root is always one more unit).
    chosen = strategy.kwargs["auto_wrap_policy"]._run_policy(node, set(), {})
    layers = [m for m in node.modules() if isinstance(m, Qwen2DecoderLayer)]
    assert len(layers) == 3 and set(chosen) == set(layers)
    checkpointed = strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._run_policy(node, set(), {})
    assert set(checkpointed) == set(layers)


def test_fsdp_on_cpu_is_a_one_line_error(tmp_path):
    cfg = translator_training_config(token_cache(tmp_path / "cache.pt"), tmp_path, extra=["trainer.strategy=fsdp"])
    with pytest.raises(DragomanError, match="trainer config: .*requires a GPU") as err:
        make_trainer(Translator, cfg, logger=False)
    assert "\n" not in str(err.value)


def test_fsdp_options_are_checked():
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer

    with pytest.raises(DragomanError, match="unknown option"):
        fsdp_strategy(Translator, {"shard_everything": True})
    with pytest.raises(DragomanError, match="names no layers"):
        fsdp_strategy(EmotionTokenizer, {"activation_checkpointing": True})
    cfg = OmegaConf.create({"trainer": {"strategy": "ddp", "devices": 2}})
    assert trainer_kwargs(EmotionTokenizer, cfg) == {"strategy": "ddp", "devices": 2}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="FSDP needs CUDA devices")
def test_fsdp_bf16_training_on_gpus_saves_a_full_translator(tmp_path):
    import subprocess
    import sys

    cache = token_cache(tmp_path / "cache.pt")
    devices = min(2, torch.cuda.device_count())
    overrides = [f"cache={cache}", *[f"model.lm.{k}={v}" for k, v in TINY_LM.items()],
                 "model.train_ds.max_tokens_per_row=96", "model.train_ds.rows_per_batch=2",
                 "model.validation_ds.rows_per_batch=2", "model.optim.sched.warmup_steps=1", "trainer.max_epochs=6",
                 "trainer.accelerator=gpu", f"trainer.devices={devices}", "trainer.strategy=fsdp",
                 "trainer.precision=bf16-mixed", "trainer.enable_progress_bar=false", f"exp.dir={tmp_path}",
                 f"save_to={tmp_path}/translator.nemo"]
    out = subprocess.run([sys.executable, "-m", "dragoman.graphs.cli", "train", "translator", *overrides],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    trained = Translator.restore_from(tmp_path / "translator.nemo")
    cfg = translator_training_config(cache, tmp_path)
    torch.manual_seed(0)
    fresh = Translator(cfg.model)
    batch = next(iter(fresh.val_dataloader()))
    with torch.no_grad():
        assert trained._loss(batch)[0] < fresh._loss(batch)[0]
