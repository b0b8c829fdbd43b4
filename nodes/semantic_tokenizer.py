"""SemanticTokenizer node: waveform -> semantic tokens at exactly 50 Hz (the Decoder's input).

UniSS's BiCodec semantic tokens are the Translator's speech output; this node makes its training
targets. A clip of N samples gives ceil(N / 320) tokens, whatever N (short clips are padded):
token j describes samples [320 j, 320 j + 320).

Features (why: `dragoman.nodes.modules.semantic_net`): the ContentTokenizer's Conformer encoder,
frozen and copied into this node (only its feature path: front end, two subsampling convs, the
encoder), 25 Hz frames repeated to 50 Hz, plus speaker-normalised prosody. The copy makes a
`.nemo` self-contained and pins the features the tokens were trained on: retraining the content
tokenizer later cannot silently change what a semantic token means. It still runs ContentNet's
code, so a change to that network's feature path (front end, subsampling, Conformer blocks)
needs this node (and the Decoder after it) retrained; the checkpoint test catches that.

    python examples/train_semantic_tokenizer.py      # content_init: the content tokenizer .nemo
    SemanticTokenizer.default().run(audio=[wav])["semantic_tokens"]
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from dragoman.nodes import types as T
from dragoman.nodes.codec_cache import CropDataset, FrameCache, batched_rows, collate_crops, fingerprint, load_or_build
from dragoman.nodes.errors import GraphError
from dragoman.nodes.input_checks import check_waveforms
from dragoman.nodes.modules.codec_features import TOKEN_HOP, pad_to_tokens, prosody_tokens_features, tokens_for_samples
from dragoman.nodes.modules.content_net import ContentNet, ContentNetConfig
from dragoman.nodes.modules.fsq import codebook_usage
from dragoman.nodes.modules.semantic_net import PROSODY_DIM, SemanticNet, SemanticNetConfig
from dragoman.nodes.trainable import TrainableNode, pad_batch

TOKEN_RATE = 50.0
# The ContentNet modules `features()` runs; every other child is dropped from the copy.
CONTENT_FEATURE_PATH = ("frontend", "sub1", "sub2", "encoder")
# 25 Hz content frames are 640 samples apart: two semantic tokens per frame.
CONTENT_HOP = 640


@dataclasses.dataclass
class FeatureDataConfig:
    manifest: str = "???"
    cache: str = "???"
    crop_tokens: int = 200
    batch_size: int = 32
    shuffle: bool = True
    num_workers: int = 0
    defer_setup: bool = True  # the cache is built with this node's own (copied) encoder


@dataclasses.dataclass
class SemanticTokenizerConfig:
    net: SemanticNetConfig = dataclasses.field(default_factory=SemanticNetConfig)
    content_net: dict[str, Any] = dataclasses.field(default_factory=dict)  # ContentNetConfig of the copy
    content_init: Optional[str] = None  # content_tokenizer .nemo (or "default") to copy the encoder from
    content_source: Optional[str] = None  # where the copy came from (provenance only)
    sample_rate: int = 16000
    optim: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adamw", "lr": 2e-3, "weight_decay": 0.01})
    train_ds: Optional[FeatureDataConfig] = None
    validation_ds: Optional[FeatureDataConfig] = None


def content_feature_net(cfg: dict) -> ContentNet:
    """A ContentNet with only its feature path (the rest set to None, so not saved)."""
    net = ContentNet(ContentNetConfig(**cfg))
    for name, _ in list(net.named_children()):
        if name not in CONTENT_FEATURE_PATH:
            setattr(net, name, None)
    return net


class SemanticTokenizer(TrainableNode):
    node_name = "semantic_tokenizer"
    Config = SemanticTokenizerConfig
    token_rate = TOKEN_RATE

    def __init__(self, cfg=None, trainer=None):
        from omegaconf import DictConfig, OmegaConf

        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg or {})
        state = None
        if raw.get("content_init"):
            from dragoman.nodes.content_tokenizer import ContentTokenizer

            path = ContentTokenizer.default_checkpoint() if raw["content_init"] == "default" else raw["content_init"]
            source = ContentTokenizer.restore_from(path)
            raw["content_net"] = OmegaConf.to_container(source.cfg.net, resolve=True)
            state = {k: v for k, v in source.net.state_dict().items() if k.split(".")[0] in CONTENT_FEATURE_PATH}
            raw["content_source"], raw["content_init"] = str(path), None
        if not raw.get("content_net"):
            raise GraphError("semantic_tokenizer: config needs `content_net` (or `content_init`: a content_tokenizer .nemo)")
        net = dict(raw.get("net") or {})
        net["content_dim"] = int(raw["content_net"].get("dim", ContentNetConfig.dim))
        raw["net"] = net
        super().__init__(raw, trainer)
        self.net = SemanticNet(SemanticNetConfig(**OmegaConf.to_container(self.cfg.net)))
        self.content = content_feature_net(OmegaConf.to_container(self.cfg.content_net))
        if state is not None:
            self.content.load_state_dict(state)
        self.content.requires_grad_(False).eval()
        self._val_ids: list[torch.Tensor] = []

    @classmethod
    def port_types(cls, cfg):
        return {"audio": T.audio(cfg.sample_rate)}, {"semantic_tokens": T.tokens(T.SemanticTokensType, TOKEN_RATE)}

    @property
    def codebook_size(self) -> int:
        return self.net.codebook_size

    def train(self, mode: bool = True):
        """The copied content encoder stays in eval mode (no dropout, no SpecAugment): frozen."""
        super().train(mode)
        self.content.eval()
        return self

    # -- features ----------------------------------------------------------------------------
    def features(self, wavs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Raw 50 Hz features [content_dim + 3, ceil(N / 320)] per waveform (what is cached)."""
        padded = [pad_to_tokens(w.to(self.device, torch.float32)) for w in wavs]
        counts = [tokens_for_samples(w.shape[-1]) for w in wavs]
        # The content front end needs one 25 ms window; shorter clips get zeros appended.
        win = self.content.frontend.win
        batch, lengths = pad_batch([torch.nn.functional.pad(p, (0, max(0, win - p.shape[-1]))) for p in padded])
        with torch.no_grad():
            content, frames = self.content.features(batch, lengths)  # [B, F25, C]
        out = []
        for i, n in enumerate(counts):
            index = (torch.arange(n, device=content.device) * TOKEN_HOP // CONTENT_HOP).clamp(max=int(frames[i]) - 1)
            prosody = prosody_tokens_features(padded[i].cpu(), n).to(content.device)
            out.append(torch.cat([content[i, index].T, prosody], dim=0))
        return out

    def encode_features(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        batch, lengths = _pad_time(feats)
        x = self.net.normalise(batch[:, : -PROSODY_DIM], batch[:, -PROSODY_DIM:])
        _, ids = self.net.encode(x, lengths.to(x.device))
        return [row[: int(n)].cpu() for row, n in zip(ids, lengths)]

    def infer(self, audio):
        wavs = check_waveforms(audio, self.node_name, expected_rate=self.cfg.sample_rate)
        return {"semantic_tokens": self.encode_features(self.features(wavs))}

    def tokenize(self, wavs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.run(audio=list(wavs))["semantic_tokens"]

    # -- training ----------------------------------------------------------------------------
    def build_cache(self, manifest: str, batch_size: int = 16) -> FrameCache:
        from dragoman.nodes.audio.io import read_audio
        from dragoman.nodes.manifest import read_manifest

        rows = read_manifest(manifest)
        items: list[dict | None] = [None] * len(rows)
        was_training = self.training
        self.eval()
        with torch.inference_mode():
            for idx, chunk in batched_rows(rows, batch_size, f"semantic features {Path(manifest).name}"):
                feats = self.features([read_audio(r["audio_filepath"]) for r in chunk])
                for i, f in zip(idx, feats):
                    items[i] = {"features": f.cpu().half(), "length": torch.tensor(f.shape[-1])}
        self.train(was_training)
        return FrameCache.from_items(items, {"features": 1}, {})

    def make_dataloader(self, cfg, train: bool):
        expected = fingerprint(cfg.manifest, {"content": self.cfg.content_source})
        cache = load_or_build(cfg.cache, expected, lambda: self.build_cache(cfg.manifest))
        return DataLoader(CropDataset(cache, cfg.crop_tokens, train), batch_size=cfg.batch_size,
                          shuffle=train and cfg.shuffle, num_workers=cfg.num_workers,
                          collate_fn=lambda b: collate_crops(b, {"features": 1}), drop_last=train)

    def _losses(self, batch):
        feats = batch["features"].float()
        x = self.net.normalise(feats[:, : -PROSODY_DIM], feats[:, -PROSODY_DIM:])
        return self.net.loss(x, batch["lengths"])

    def training_step(self, batch, batch_idx):
        out = self._losses(batch)
        self.log_dict({f"train_{k}": out[k] for k in ("loss", "content", "prosody")}, prog_bar=True,
                      batch_size=len(batch["lengths"]))
        return out["loss"]

    def validation_step(self, batch, batch_idx):
        out = self._losses(batch)
        self._val_ids += [row[: int(n)].cpu() for row, n in zip(out["ids"], batch["lengths"])]
        self.log_dict({f"val_{k}": out[k] for k in ("loss", "content", "prosody")}, prog_bar=True,
                      batch_size=len(batch["lengths"]), sync_dist=True)
        return out["loss"]

    def on_validation_epoch_end(self):
        if self._val_ids:
            usage = codebook_usage(torch.cat(self._val_ids), self.codebook_size)
            self.log_dict({"val_code_perplexity": usage["perplexity"], "val_used_codes": float(usage["used_codes"])})
        self._val_ids = []


def _pad_time(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[C, T_i] tensors -> ([B, C, T_max] zero padded, lengths [B])."""
    lengths = torch.tensor([x.shape[-1] for x in items])
    out = items[0].new_zeros(len(items), items[0].shape[0], int(lengths.max()))
    for i, x in enumerate(items):
        out[i, :, : x.shape[-1]] = x
    return out, lengths
