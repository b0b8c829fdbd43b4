"""SpeakerEncoder node: waveform -> speaker embedding + 32 global speaker tokens (who).

The network is `dragoman.nodes.modules.speaker_net.SpeakerNet`. Training (speaker labels from
the manifest's `speaker` field) uses an additive angular margin softmax twice with one set of
class centres: on the pooled embedding, and on the d-vector rebuilt from the quantised tokens,
plus a cosine pull of that d-vector towards the (detached) embedding — so the tokens alone
reconstruct the voice the embedding describes. Speed perturbation turns each training speaker
into `len(speed_factors)` speakers (more voices to separate, the classic VoxCeleb recipe), and
training uses random `train_seconds` crops (tiled when shorter) where inference uses the tiled
`ref_seconds` reference.

    node = SpeakerEncoder.default()
    out = node.run(audio=[wav])            # speaker_tokens [32] ids, speaker_embedding [E]
    node.tokens_to_dvector(out["speaker_tokens"])   # [B, E] for a decoder

Refused input (one-line AudioError): silence, clips under `min_seconds`, non-1-D tensors.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Any, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from dragoman.nodes import types as T
from dragoman.nodes.audio.dataset import LabelledAudioDataset, collate_labelled
from dragoman.nodes.errors import DragomanError, GraphError
from dragoman.nodes.input_checks import check_waveforms
from dragoman.nodes.manifest import read_manifest
from dragoman.nodes.modules.fsq import codebook_usage
from dragoman.nodes.modules.margin_softmax import AdditiveAngularMargin
from dragoman.nodes.modules.speaker_net import SpeakerNet, SpeakerNetConfig, cosine_distance, cut_or_tile, speed_perturb
from dragoman.nodes.trainable import TrainableNode


@dataclasses.dataclass
class SpeakerDataConfig:
    manifest: str = "???"
    batch_size: int = 32
    shuffle: bool = True
    num_workers: int = 0
    max_seconds: Optional[float] = None


@dataclasses.dataclass
class SpeakerEncoderConfig:
    net: SpeakerNetConfig = dataclasses.field(default_factory=SpeakerNetConfig)
    speakers: list[str] = dataclasses.field(default_factory=list)  # training classes; from train_ds when empty
    speed_factors: list[float] = dataclasses.field(default_factory=lambda: [1.0])  # first: natural speed
    train_seconds: float = 2.0
    margin: float = 0.2
    scale: float = 30.0
    dvector_weight: float = 1.0  # margin loss on the token-rebuilt d-vector
    reconstruction_weight: float = 1.0  # cosine distance d-vector -> embedding
    min_seconds: float = 0.3
    sample_rate: int = 16000
    optim: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adamw", "lr": 2e-3, "weight_decay": 0.01})
    train_ds: Optional[SpeakerDataConfig] = None
    validation_ds: Optional[SpeakerDataConfig] = None


class SpeakerEncoder(TrainableNode):
    node_name = "speaker_encoder"
    Config = SpeakerEncoderConfig

    def __init__(self, cfg=None, trainer=None):
        from omegaconf import DictConfig, OmegaConf

        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg or {})
        if not raw.get("speakers"):
            manifest = (raw.get("train_ds") or {}).get("manifest")
            if manifest and manifest != "???":
                raw["speakers"] = sorted({str(r["speaker"]) for r in read_manifest(manifest) if r.get("speaker")})
        super().__init__(raw, trainer)
        self.net = SpeakerNet(SpeakerNetConfig(**OmegaConf.to_container(self.cfg.net)))
        if not self.cfg.speed_factors or self.cfg.speed_factors[0] != 1.0:
            raise GraphError(f"speaker_encoder: speed_factors must start with 1.0 (the natural speed), got {list(self.cfg.speed_factors)}")
        classes = len(self.cfg.speakers) * len(self.cfg.speed_factors)
        if self.cfg.train_ds is not None and classes < 2:
            raise GraphError("speaker_encoder: training needs at least two speakers in `speakers` or the train manifest")
        self.margin_loss = AdditiveAngularMargin(self.net.cfg.embedding_dim, max(classes, 1), self.cfg.margin, self.cfg.scale)
        self._val_ids: list[torch.Tensor] = []

    @classmethod
    def port_types(cls, cfg):
        return (
            {"audio": T.audio(cfg.sample_rate)},
            {"speaker_tokens": T.tokens(T.SpeakerTokensType), "speaker_embedding": T.speaker_embedding()},
        )

    @property
    def codebook_size(self) -> int:
        return self.net.fsq.codebook_size

    def forward(self, clips: torch.Tensor):
        return self.net(clips)

    # -- inference ---------------------------------------------------------------------------
    def _encode(self, audio: Sequence[torch.Tensor], sample_rate: int | None = None) -> dict[str, torch.Tensor]:
        wavs = check_waveforms(audio, self.node_name, expected_rate=self.cfg.sample_rate, sample_rate=sample_rate,
                               min_samples=int(self.cfg.min_seconds * self.cfg.sample_rate), allow_silent=False)
        return self.net(self.net.reference([w.to(self.device) for w in wavs]))

    def infer(self, audio):
        out = self._encode(audio)
        return {"speaker_tokens": [row.cpu() for row in out["ids"]],
                "speaker_embedding": [row.cpu() for row in out["embedding"]]}

    def embed(self, wavs: Sequence[torch.Tensor], batch_size: int = 32, sample_rate: int | None = None,
              from_tokens: bool = False) -> torch.Tensor:
        """[B, E] embeddings (or, with from_tokens, the d-vectors rebuilt from the 32 tokens)."""
        key = "dvector" if from_tokens else "embedding"
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return torch.cat([self._encode(wavs[i : i + batch_size], sample_rate)[key].cpu()
                                  for i in range(0, len(wavs), batch_size)])
        finally:
            self.train(was_training)

    def tokens_to_dvector(self, ids) -> torch.Tensor:
        """Speaker token ids ([B, 32] tensor or a list of [32] tensors) -> d-vectors [B, E]."""
        batch = torch.stack([torch.as_tensor(x) for x in ids]) if isinstance(ids, (list, tuple)) else torch.as_tensor(ids)
        try:
            with torch.inference_mode():
                return self.net.tokens_to_dvector(batch.long().to(self.device)).cpu()
        except ValueError as err:
            raise DragomanError(f"{self.node_name}: bad speaker token ids ({err})") from None

    # -- training ----------------------------------------------------------------------------
    def make_dataloader(self, cfg, train: bool):
        dataset = LabelledAudioDataset(cfg.manifest, "speaker", list(self.cfg.speakers), cfg.max_seconds)
        return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=train and cfg.shuffle,
                          num_workers=cfg.num_workers, collate_fn=collate_labelled, drop_last=train)

    def _training_clips(self, wav: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):
        """Random crops (tiled when short), one random speed factor per batch -> shifted labels."""
        samples = int(self.cfg.train_seconds * self.cfg.sample_rate)
        clips = []
        for w, n in zip(wav, lengths.tolist()):
            start = random.randint(0, max(0, n - samples))
            clips.append(cut_or_tile(w[:n], samples, start))
        k = random.randrange(len(self.cfg.speed_factors))
        clips = speed_perturb(torch.stack(clips), float(self.cfg.speed_factors[k]), self.cfg.sample_rate)
        return clips, labels + k * len(self.cfg.speakers)

    def _losses(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
        out = self.net(clips)
        emb_loss, emb_acc = self.margin_loss(out["embedding"], labels)
        dvec_loss, dvec_acc = self.margin_loss(out["dvector"], labels)
        recon = cosine_distance(out["dvector"], out["embedding"].detach())
        loss = emb_loss + self.cfg.dvector_weight * dvec_loss + self.cfg.reconstruction_weight * recon
        return loss, {"emb_loss": emb_loss, "acc": emb_acc, "dvec_acc": dvec_acc, "recon": recon, "ids": out["ids"]}

    def training_step(self, batch, batch_idx):
        wav, lengths, labels = batch
        loss, logs = self._losses(*self._training_clips(wav, lengths, labels))
        logs.pop("ids")
        self.log_dict({"train_loss": loss} | {f"train_{k}": v for k, v in logs.items()}, prog_bar=True,
                      batch_size=len(labels))
        return loss

    def validation_step(self, batch, batch_idx):
        wav, lengths, labels = batch
        clips = self.net.reference([w[:n] for w, n in zip(wav, lengths.tolist())])
        loss, logs = self._losses(clips, labels)
        self._val_ids.append(logs.pop("ids").cpu())
        self.log_dict({"val_loss": loss} | {f"val_{k}": v for k, v in logs.items()}, prog_bar=True,
                      batch_size=len(labels), sync_dist=True)
        return loss

    def on_validation_epoch_end(self):
        if self._val_ids:
            usage = codebook_usage(torch.cat(self._val_ids), self.codebook_size)
            self.log_dict({"val_code_perplexity": usage["perplexity"], "val_used_codes": float(usage["used_codes"])})
        self._val_ids = []
