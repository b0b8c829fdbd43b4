"""Training any trainable node with a plain Lightning Trainer, from one config.

Config layout (NeMo style; `nodes/conf/<node>.yaml` holds each node's defaults):

    node: emotion_tokenizer          # registry name
    model: {...}                     # the node's Config (train_ds / validation_ds inside)
    trainer: {max_epochs: 20, accelerator: cpu, devices: 1, strategy: auto, ...}   # Trainer kwargs
    exp: {dir: runs, name: emotion_tokenizer}
    save_to: runs/emotion_tokenizer.nemo
    init_from: null                  # a .nemo to fine-tune from (weights only; node.load_weights_from)
    resume_from: null                # a Lightning .ckpt (or `last`): weights + optimizer + loop state
    fsdp: {...}                      # optional, with trainer.strategy=fsdp (dragoman.nodes.distributed)

Several devices or nodes: `trainer.strategy=ddp|fsdp trainer.devices=N trainer.num_nodes=M`
(Lightning's launcher and samplers; see dragoman.nodes.distributed and docs/scaling.md).
Used by `dragoman train` and by the `examples/train_<node>.py` Hydra scripts, so both train the
same way. Writes TensorBoard logs, the last/best Lightning checkpoints, `curves.png`, and the
`.nemo` file.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent / "conf"


def load_train_config(node: str, config: str | None = None, overrides: list[str] = ()) -> DictConfig:
    """Defaults of `node` (or the YAML file `config`), with dotted `key=value` overrides."""
    from dragoman.nodes.errors import DragomanError

    path = Path(config) if config else CONF_DIR / f"{node}.yaml"
    if not path.is_file():
        raise DragomanError(f"{path}: no training config for node '{node}'")
    cfg = OmegaConf.load(path)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except Exception as err:
        raise DragomanError(f"bad override in {list(overrides)} ({str(err).splitlines()[0]})") from None
    return cfg


class CurvesPlot:
    """A Lightning callback that redraws every logged scalar to a PNG after each validation."""

    def __new__(cls, path: Path):
        import lightning.pytorch as pl

        class _Curves(pl.Callback):
            def __init__(self):
                self.history: dict[str, list[tuple[int, float]]] = {}

            def _record(self, trainer):
                for key, value in trainer.callback_metrics.items():
                    if value.numel() == 1 and not key.endswith("_step"):
                        self.history.setdefault(key, []).append((trainer.current_epoch, float(value)))

            def on_validation_epoch_end(self, trainer, pl_module):
                if trainer.is_global_zero and not trainer.sanity_checking:
                    self._record(trainer)
                    plot_curves(self.history, path)

            def on_train_epoch_end(self, trainer, pl_module):
                if trainer.is_global_zero and not trainer.val_dataloaders:
                    self._record(trainer)
                    plot_curves(self.history, path)

        return _Curves()


def plot_curves(history: dict[str, list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({key.split("_", 1)[-1] for key in history})  # loss, acc, ... across train/val
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(4.5 * max(1, len(groups)), 3.2), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for key, points in sorted(history.items()):
            if key.split("_", 1)[-1] == group:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(group)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train(cfg: DictConfig):
    """Build the node from `cfg.model`, fit it, save the `.nemo`; returns the trained node."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from dragoman.nodes.distributed import make_trainer, resume_checkpoint, save_trained
    from dragoman.nodes.registry import resolve_node_class

    cls = resolve_node_class(cfg.node, where="training config")
    if hasattr(cls, "prepare_training_config"):
        cfg = cls.prepare_training_config(cfg)  # e.g. the translator's vocabulary from its token cache
    run_dir = Path(cfg.exp.dir) / cfg.exp.name
    pl.seed_everything(int(cfg.get("seed", 0)), workers=True)
    logger = TensorBoardLogger(save_dir=str(run_dir), name="tb", version="")
    monitor = cfg.get("monitor")
    checkpoint = ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), save_last=True,
                                 monitor=monitor, mode=cfg.get("monitor_mode", "min"), save_top_k=1 if monitor else 0)
    resume = resume_checkpoint(cfg)
    trainer = make_trainer(cls, cfg, logger=logger, callbacks=[checkpoint, CurvesPlot(run_dir / "curves.png")],
                           default_root_dir=str(run_dir))
    node = cls(cfg.model, trainer=trainer)
    if cfg.get("init_from"):
        node.load_weights_from(cls.restore_from(cfg.init_from))
    trainer.fit(node, ckpt_path=resume)
    if cfg.get("save_to"):
        save_trained(trainer, node, cls, cfg, cfg.save_to)
    return node
