"""EmotionTokenizer node: waveform -> a few emotion/style tokens + an emotion label.

Trained with cross-entropy on the manifest's `emotion` field through the classifier that reads
only the quantised tokens (see `dragoman.nodes.modules.emotion_net`). Train with
`python examples/train_emotion_tokenizer.py`; use alone as
`EmotionTokenizer.restore_from("x.nemo").run(audio=[wav])`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader

from dragoman.nodes import types as T
from dragoman.nodes.audio.dataset import LabelledAudioDataset, collate_labelled
from dragoman.nodes.modules.emotion_net import EmotionNet, EmotionNetConfig
from dragoman.nodes.trainable import TrainableNode, pad_batch


@dataclasses.dataclass
class AudioDataConfig:
    manifest: str = "???"
    batch_size: int = 16
    shuffle: bool = True
    num_workers: int = 0
    max_seconds: Optional[float] = None


@dataclasses.dataclass
class EmotionTokenizerConfig:
    net: EmotionNetConfig = dataclasses.field(default_factory=EmotionNetConfig)
    labels: list[str] = dataclasses.field(default_factory=lambda: ["neutral", "happy", "sad", "angry"])
    sample_rate: int = 16000
    optim: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adamw", "lr": 2e-3, "weight_decay": 0.01})
    train_ds: Optional[AudioDataConfig] = None
    validation_ds: Optional[AudioDataConfig] = None


class EmotionTokenizer(TrainableNode):
    node_name = "emotion_tokenizer"
    Config = EmotionTokenizerConfig

    def __init__(self, cfg=None, trainer=None):
        super().__init__(cfg, trainer)
        net_cfg = EmotionNetConfig(**{k: (list(v) if k == "fsq_levels" else v) for k, v in self.cfg.net.items()})
        if len(self.cfg.labels) != net_cfg.num_emotions:
            from dragoman.nodes.errors import GraphError

            raise GraphError(f"emotion_tokenizer: {len(self.cfg.labels)} labels but net.num_emotions={net_cfg.num_emotions}")
        self.net = EmotionNet(net_cfg)

    @classmethod
    def port_types(cls, cfg):
        return (
            {"audio": T.audio(cfg.sample_rate)},
            {"emotion_tokens": T.tokens(T.EmotionTokensType), "emotion": T.text()},
        )

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor):
        return self.net(wav, lengths)

    def infer(self, audio):
        wav, lengths = pad_batch([a.to(self.device, torch.float32) for a in audio])
        logits, ids = self.net(wav, lengths)
        labels = [self.cfg.labels[i] for i in logits.argmax(dim=-1).tolist()]
        return {"emotion_tokens": [row.cpu() for row in ids], "emotion": labels}

    # -- training ----------------------------------------------------------------------------
    def make_dataloader(self, cfg, train: bool):
        dataset = LabelledAudioDataset(cfg.manifest, "emotion", list(self.cfg.labels), cfg.max_seconds)
        return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=train and cfg.shuffle,
                          num_workers=cfg.num_workers, collate_fn=collate_labelled)

    def _step(self, batch):
        wav, lengths, labels = batch
        logits, _ = self.net(wav, lengths)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        acc = (logits.argmax(-1) == labels).float().mean()
        return loss, acc

    def training_step(self, batch, batch_idx):
        loss, acc = self._step(batch)
        self.log_dict({"train_loss": loss, "train_acc": acc}, prog_bar=True, batch_size=len(batch[2]))
        return loss

    def validation_step(self, batch, batch_idx):
        loss, acc = self._step(batch)
        self.log_dict({"val_loss": loss, "val_acc": acc}, prog_bar=True, batch_size=len(batch[2]), sync_dist=True)
        return loss
