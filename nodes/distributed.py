"""Fitting work onto many devices: Lightning strategies from a node's config, the trained
weights gathered for the `.nemo`, and length-bucketed batches under a memory cap.

Nothing here launches processes or reduces tensors by hand: DDP and FSDP are Lightning's
(`trainer.strategy=ddp|fsdp`, `trainer.devices`, `trainer.num_nodes`), and the launcher is
Lightning's too (it re-runs the command once per local device, or joins the processes that
torchrun / SLURM started). What a config string cannot say is which layers FSDP should shard
one by one; a node says it with `fsdp_wrap_modules()` (the Translator: its Qwen2 decoder
layers), and `trainer_kwargs` turns `strategy: fsdp` into an `FSDPStrategy` with that policy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

# Options of the optional `fsdp:` block of a training config that go straight to Lightning's
# FSDPStrategy; `activation_checkpointing: true` reuses the wrap classes (recompute each layer).
# Checkpoints stay "full" (gathered on rank zero): resumable on any number of devices, and what
# `save_trained` loads into the `.nemo`.
FSDP_OPTIONS = ("sharding_strategy", "cpu_offload", "activation_checkpointing")


def fsdp_strategy(node_cls: type, options: Mapping[str, Any] | None = None):
    """Lightning's FSDPStrategy for `node_cls`: each of its `fsdp_wrap_modules()` layers becomes
    its own FSDP unit (gathered just before its forward, freed after), so peak memory holds one
    layer's full weights instead of the whole model's. A node without the hook is one unit."""
    from lightning.pytorch.strategies import FSDPStrategy

    from dragoman.nodes.errors import DragomanError

    options = dict(options or {})
    unknown = sorted(set(options) - set(FSDP_OPTIONS))
    if unknown:
        raise DragomanError(f"fsdp: unknown option(s) {unknown}; known: {list(FSDP_OPTIONS)}")
    layers = set(node_cls.fsdp_wrap_modules()) if hasattr(node_cls, "fsdp_wrap_modules") else set()
    kwargs: dict[str, Any] = {k: v for k, v in options.items() if k != "activation_checkpointing"}
    if layers:
        kwargs["auto_wrap_policy"] = layers
        if options.get("activation_checkpointing"):
            kwargs["activation_checkpointing_policy"] = layers
    elif options.get("activation_checkpointing"):
        raise DragomanError(f"fsdp: {node_cls.__name__} names no layers to checkpoint (no fsdp_wrap_modules)")
    return FSDPStrategy(**kwargs)


def trainer_kwargs(node_cls: type, cfg) -> dict[str, Any]:
    """`cfg.trainer` as Trainer keyword arguments; `strategy: fsdp` becomes the node's FSDP
    strategy (options from the config's optional `fsdp:` block). DDP and the rest are strings
    Lightning understands as they are."""
    from omegaconf import OmegaConf

    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    if kwargs.get("strategy") == "fsdp":
        options = cfg.get("fsdp")
        kwargs["strategy"] = fsdp_strategy(node_cls, OmegaConf.to_container(options, resolve=True) if options else None)
    return kwargs


def make_trainer(node_cls: type, cfg, **extra):
    """The Lightning Trainer of a training config; a setting Lightning rejects (FSDP on CPU, more
    devices than the machine has) is a one-line error before any process starts."""
    import lightning.pytorch as pl
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from dragoman.nodes.errors import DragomanError

    try:
        return pl.Trainer(**trainer_kwargs(node_cls, cfg), **extra)
    except (MisconfigurationException, RuntimeError, ValueError) as err:
        raise DragomanError(f"trainer config: {str(err).strip().splitlines()[0]}") from None


def resume_checkpoint(cfg) -> str | None:
    """The `resume_from` checkpoint for `trainer.fit(ckpt_path=...)`: a Lightning `.ckpt` file
    (weights, optimizer and scheduler state, loop counters) or `last` (the newest one that this
    run's ModelCheckpoint wrote). A missing file is a one-line error before any process starts."""
    from dragoman.nodes.errors import CheckpointError

    path = cfg.get("resume_from")
    if path in (None, "", "last"):
        return path or None
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such checkpoint to resume from (a Lightning .ckpt, or `last`)")
    return str(path)


def save_trained(trainer, node, node_cls: type, cfg, path: str | Path) -> None:
    """Write the trained `.nemo` once. Under FSDP every rank holds a shard, so all ranks take
    part in gathering the full state dict and rank zero loads it into an unwrapped copy of the
    node to save; under DDP (or one device) every rank already holds the full weights."""
    from lightning.pytorch.strategies import FSDPStrategy

    target = Path(path)
    if isinstance(trainer.strategy, FSDPStrategy):
        state = trainer.strategy.lightning_module_state_dict()  # collective: every rank calls it
        if trainer.is_global_zero:
            plain = node_cls(cfg.model)
            plain.load_state_dict(state)
            _save(plain, target)
    elif trainer.is_global_zero:
        _save(node, target)
    trainer.strategy.barrier("dragoman-save")


def _save(node, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(node, "for_inference"):  # drop training-only networks (the Decoder's discriminator)
        node = node.for_inference()
    node.save_to(str(target))


def bucket_by_length(items: Sequence, key: Callable[[Any], float], max_total: float | None = None,
                     max_items: int | None = None) -> list[list[int]]:
    """Indices of `items` grouped into batches of similar length, longest batch first.

    A batch costs `len(batch) * longest item` — what padding allocates — and closes before that
    would pass `max_total` (e.g. seconds of audio) or its size would pass `max_items`. An item
    longer than `max_total` on its own gets a batch of one rather than being dropped. Sorting
    first keeps padding small; longest first means a cap that is too high fails on the first
    batch, not hours into a run. Every index appears exactly once.
    """
    if max_total is not None and max_total <= 0:
        raise ValueError(f"max_total must be positive, got {max_total}")
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be at least 1, got {max_items}")
    order = sorted(range(len(items)), key=lambda i: -float(key(items[i])))  # stable: ties keep input order
    batches: list[list[int]] = []
    longest = 0.0
    for i in order:
        length = float(key(items[i]))
        if batches:
            batch = batches[-1]
            fits_count = max_items is None or len(batch) < max_items
            fits_cost = max_total is None or (len(batch) + 1) * longest <= max_total
            if fits_count and fits_cost:
                batch.append(i)
                continue
        batches.append([i])
        longest = length
    return batches
