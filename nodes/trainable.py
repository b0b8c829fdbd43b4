"""Trainable nodes: NeMo `ModelPT`s (hence LightningModules) with typed ports.

What a subclass provides: `Config` (a dataclass: network settings, `optim`, `train_ds`,
`validation_ds`), `node_name`, `port_types`, `infer(**inputs)` (batched inference on lists of
tensors), `training_step`/`validation_step`, and `make_dataloader(cfg, train)`.

What this base adds on top of ModelPT:
- configs merged onto the dataclass, so a typo in a key is an error, not a silent default;
- `restore_from` that registers dragoman with NeMo's target allow-list (explicitly, here and in
  `register_with_nemo`), loads weights with `torch.load(weights_only=True)` whatever the
  environment says, and turns a missing/corrupt/foreign `.nemo` into one-line CheckpointErrors;
- `default()` for the committed default checkpoint of each node, `from_graph_spec` for graphs;
- `run(**inputs)` = eval mode + inference mode + device placement around `infer`.
"""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import ClassVar, Mapping

import torch
from nemo.core.classes import ModelPT
from nemo.core.connectors.save_restore_connector import SaveRestoreConnector
from omegaconf import DictConfig, OmegaConf

from dragoman.nodes.base import PortsMixin, make_config
from dragoman.nodes.errors import CheckpointError, GraphError
from dragoman.nodes.nemo_interop import register_with_nemo

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
# Keys ModelPT writes into every config it saves; they are bookkeeping, not node settings.
_NEMO_KEYS = ("target", "nemo_version")


class SafeSaveRestoreConnector(SaveRestoreConnector):
    """NeMo's connector, but weights are always loaded without unpickling arbitrary objects."""

    @staticmethod
    def _load_state_dict_from_disk(model_weights, map_location="cpu"):
        return torch.load(model_weights, map_location=map_location, weights_only=True)


class TrainableNode(PortsMixin, ModelPT):
    Config: ClassVar[type]

    def __init__(self, cfg: Mapping | DictConfig | None = None, trainer=None):
        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg or {})
        for key in _NEMO_KEYS:
            raw.pop(key, None)
        merged = make_config(self.Config, raw, owner=self.node_name or type(self).__name__)
        super().__init__(cfg=OmegaConf.create(OmegaConf.to_container(merged)), trainer=trainer)

    # -- data -------------------------------------------------------------------------------
    def make_dataloader(self, cfg: DictConfig, train: bool):
        raise NotImplementedError(f"{type(self).__name__} does not define its training data")

    def setup_training_data(self, train_data_config):
        if train_data_config is not None:
            self._train_dl = self.make_dataloader(train_data_config, train=True)

    def setup_validation_data(self, val_data_config):
        if val_data_config is not None:
            self._validation_dl = self.make_dataloader(val_data_config, train=False)

    @classmethod
    def list_available_models(cls):
        return []

    # -- inference --------------------------------------------------------------------------
    def infer(self, **inputs) -> dict[str, list]:
        raise NotImplementedError

    def run(self, **inputs) -> dict[str, list]:
        self.check_inputs(inputs)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return self.infer(**inputs)
        finally:
            self.train(was_training)

    # -- checkpoints ------------------------------------------------------------------------
    def load_weights_from(self, source: "TrainableNode") -> None:
        """Start training from `source`'s weights (the training config's `init_from`): the same
        architecture, strictly. Nodes whose vocabulary can change between runs override this."""
        self.load_state_dict(source.state_dict())

    @classmethod
    def restore_from(cls, restore_path, override_config_path=None, map_location=None, strict=True,
                     return_config=False, save_restore_connector=None, trainer=None, validate_access_integrity=True):
        register_with_nemo()
        path = Path(restore_path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        if not tarfile.is_tarfile(path):
            raise CheckpointError(f"{path}: not a .nemo archive (expected a tar file)")
        try:
            restored = super().restore_from(
                str(path), override_config_path=override_config_path, map_location=map_location or torch.device("cpu"),
                strict=strict, return_config=return_config,
                save_restore_connector=save_restore_connector or SafeSaveRestoreConnector(), trainer=trainer,
                validate_access_integrity=validate_access_integrity,
            )
        except CheckpointError:
            raise
        except Exception as err:  # NeMo raises a mix of types for truncated or foreign archives
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise CheckpointError(f"{path}: cannot restore {cls.__name__} ({first})") from None
        finally:
            # NeMo clears its global "being restored" flag only when a restore succeeds; left set,
            # every later ModelPT in the process would skip its data-loader setup.
            cls._set_model_restore_state(is_being_restored=False)
        if not return_config and not isinstance(restored, cls):
            raise CheckpointError(f"{path}: holds a {type(restored).__name__}, not a {cls.__name__}")
        return restored

    @classmethod
    def default_checkpoint(cls) -> Path:
        return CHECKPOINT_DIR / f"{cls.node_name}.nemo"

    @classmethod
    def default(cls, map_location=None):
        """The trained default checkpoint committed with dragoman."""
        path = cls.default_checkpoint()
        if not path.is_file():
            raise CheckpointError(
                f"{cls.node_name}: no trained default checkpoint at {path} (train one with "
                f"examples/train_{cls.node_name}.py)"
            )
        return cls.restore_from(path, map_location=map_location)

    @classmethod
    def load(cls, spec=None, map_location=None):
        """A checkpoint named the way configs and command lines name one: None, "" or "default"
        is the committed default (`default`), anything else a .nemo path (`restore_from`)."""
        if not spec or str(spec) == "default":
            return cls.default(map_location=map_location)
        return cls.restore_from(spec, map_location=map_location)

    @classmethod
    def from_graph_spec(cls, spec, where: str, device: str | None = None):
        """Build a node for a graph: `restore_from` (a .nemo path or `default`), or a fresh
        network from `config` (random weights: for tests and for training from scratch)."""
        if spec.weights:
            raise GraphError(f"{where}: {cls.__name__} does not load weight directories; use restore_from")
        if spec.restore_from:
            node = cls.load(spec.restore_from, map_location=device)
            if spec.config:
                raise GraphError(f"{where}: give either restore_from or config, not both (config is inside the checkpoint)")
        else:
            node = cls(spec.config)
        return node.to(device) if device else node


def pad_batch(items: list[torch.Tensor], pad_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D tensors of different lengths into [B, T_max] plus their lengths [B]."""
    if not items:
        raise ValueError("empty batch")
    lengths = torch.tensor([int(x.shape[-1]) for x in items], dtype=torch.long)
    out = items[0].new_full((len(items), int(lengths.max())), pad_value)
    for i, x in enumerate(items):
        out[i, : x.shape[-1]] = x
    return out, lengths


def unpad(batch: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    return [batch[i, : int(n)] for i, n in enumerate(lengths)]
