"""Decoder nodes: semantic tokens (50 Hz) + 32 speaker tokens (+ emotion tokens) -> 16 kHz audio.

Exactly 320 samples per semantic token, so an utterance keeps its source timing. Two back ends
share one interface (ports, input checks, training data):

- `Decoder` (registry `decoder`, the shipped default): `MelDecoderNet` predicts a log-mel
  envelope, F0 and voicing on 100 Hz frames, and `HarmonicNoiseSynth` (no weights) renders
  them. Trains in ~15 minutes on two CPU cores with plain L1/BCE losses.
- `WaveDecoder` (registry `wave_decoder`): the BiCodec-style `WaveGeneratorNet` (ConvNeXt prenet
  + Snake generator, upsampling 8*5*4*2 = 320) trained adversarially (`codec_gan`): the
  architecture that scales with a GPU, too slow to train usefully on the project's CPUs.

Training data is a `codec_cache` built once from a manifest with the semantic tokenizer, speaker
encoder and emotion tokenizer checkpoints named in the data config ("default" = the committed
ones); each line is decoded from its own speaker tokens (resynthesis).

    dec = Decoder.default()
    wav = dec.run(semantic_tokens=[ids], speaker_tokens=[spk], emotion_tokens=[emo])["audio"][0]
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader

from dragoman.nodes import types as T
from dragoman.nodes.codec_cache import CropDataset, FrameCache, batched_rows, collate_crops, fingerprint, load_or_build
from dragoman.nodes.errors import CheckpointError, DragomanError
from dragoman.nodes.modules.codec_conditioning import frame_mask
from dragoman.nodes.modules.codec_features import FRAMES_PER_TOKEN, TOKEN_HOP, WIN, EnvelopeMel, decoder_targets
from dragoman.nodes.modules.codec_gan import (
    DiscriminatorConfig, MultiDiscriminator, MultiResolutionMelLoss, discriminator_loss, feature_matching_loss,
    generator_adversarial_loss,
)
from dragoman.nodes.modules.envelope_gan import EnvelopeAdversaryConfig, EnvelopeDiscriminator, pad_frames
from dragoman.nodes.modules.harmonic_synth import SILENCE_LEVEL, HarmonicNoiseSynth
from dragoman.nodes.modules.mel_decoder import MelDecoderConfig, MelDecoderLoss, MelDecoderNet
from dragoman.nodes.modules.wave_generator import WaveGeneratorConfig, WaveGeneratorNet
from dragoman.nodes.trainable import TrainableNode, pad_batch

TARGET_RATES = {"semantic": 1, "log_mel": FRAMES_PER_TOKEN, "log_f0": FRAMES_PER_TOKEN, "voiced": FRAMES_PER_TOKEN}


@dataclasses.dataclass
class CodecDataConfig:
    manifest: str = "???"
    cache: str = "???"
    semantic_tokenizer: str = "default"  # .nemo path or "default"
    speaker_encoder: str = "default"
    emotion_tokenizer: Optional[str] = "default"  # null: train without emotion tokens
    crop_tokens: int = 100  # 2 s windows
    batch_size: int = 16
    shuffle: bool = True
    num_workers: int = 0
    defer_setup: bool = True


def _restore(cls_path: str, spec: str | None):
    if not spec:
        return None, None
    module, name = cls_path.rsplit(".", 1)
    import importlib

    cls = getattr(importlib.import_module(module), name)
    path = cls.default_checkpoint() if spec == "default" else Path(spec)
    return cls.restore_from(path), str(path)


def build_decoder_cache(manifest: str, semantic, speaker, emotion=None, n_mels: int = 80, batch_size: int = 16,
                        win_length: int = WIN) -> FrameCache:
    """Run the token nodes over every manifest line and compute the decoder's targets."""
    from dragoman.nodes.audio.io import read_audio
    from dragoman.nodes.manifest import read_manifest

    rows = read_manifest(manifest)
    mel = EnvelopeMel(n_mels, win_length=win_length)
    items: list = [None] * len(rows)
    for idx, chunk in batched_rows(rows, batch_size, f"decoder targets {Path(manifest).name}"):
        wavs = [read_audio(r["audio_filepath"]) for r in chunk]
        tokens = semantic.run(audio=wavs)["semantic_tokens"]
        spk = speaker.run(audio=wavs)["speaker_tokens"]
        emo = emotion.run(audio=wavs)["emotion_tokens"] if emotion is not None else [None] * len(wavs)
        for i, wav, tok, s, e in zip(idx, wavs, tokens, spk, emo):
            log_mel, log_f0, voiced = decoder_targets(wav, mel)
            item = {"semantic": tok.to(torch.int16), "log_mel": log_mel.half(), "log_f0": log_f0.half(),
                    "voiced": voiced, "speaker": s.to(torch.int16), "length": torch.tensor(tok.shape[-1])}
            if e is not None:
                item["emotion"] = e.to(torch.int16)
            items[i] = item
    return FrameCache.from_items(items, TARGET_RATES, {"audio": [r["audio_filepath"] for r in rows]})


class _CodecDecoder(TrainableNode):
    """Ports, input checks and training data shared by both back ends."""

    optional_inputs = frozenset({"emotion_tokens"})

    @classmethod
    def port_types(cls, cfg):
        return (
            {"semantic_tokens": T.tokens(T.SemanticTokensType, 50.0), "speaker_tokens": T.tokens(T.SpeakerTokensType),
             "emotion_tokens": T.tokens(T.EmotionTokensType)},
            {"audio": T.audio(cfg.sample_rate)},
        )

    @property
    def codebook_size(self) -> int:
        return int(self.cfg.net.codebook_size)

    def codebooks(self) -> dict[str, int]:
        """Token kinds this node reads and their codebook sizes (checked across a graph)."""
        return {"semantic": self.codebook_size}

    def _prepare(self, semantic_tokens, speaker_tokens, emotion_tokens=None):
        """Lists of per-item tensors -> (tokens [B, T], lengths [B], speaker [B, S], emotion or None)."""
        for i, tok in enumerate(semantic_tokens):
            tok = torch.as_tensor(tok)
            if tok.dim() != 1 or tok.numel() == 0:
                raise DragomanError(f"{self.node_name}: item {i} has no semantic tokens (shape {tuple(tok.shape)}); nothing to decode")
            if tok.is_floating_point() or int(tok.min()) < 0 or int(tok.max()) >= self.codebook_size:
                raise DragomanError(f"{self.node_name}: item {i} semantic token ids must be integers in [0, {self.codebook_size})")
        tokens, lengths = pad_batch([torch.as_tensor(t).long().to(self.device) for t in semantic_tokens])
        speaker = torch.stack([torch.as_tensor(s).long() for s in speaker_tokens]).to(self.device)
        emotion = None
        if emotion_tokens is not None and all(e is not None for e in emotion_tokens):
            emotion = torch.stack([torch.as_tensor(e).long() for e in emotion_tokens]).to(self.device)
        try:
            self.net.conditioner.check(speaker, emotion)
        except ValueError as err:
            raise DragomanError(f"{self.node_name}: {err}") from None
        return tokens, lengths.to(self.device), speaker, emotion

    def decode(self, semantic_tokens, speaker_tokens, emotion_tokens=None) -> list[torch.Tensor]:
        return self.run(semantic_tokens=list(semantic_tokens), speaker_tokens=list(speaker_tokens),
                        emotion_tokens=None if emotion_tokens is None else list(emotion_tokens))["audio"]

    # -- training data -------------------------------------------------------------------------
    def load_cache(self, cfg) -> FrameCache:
        names = {"semantic_tokenizer": cfg.semantic_tokenizer, "speaker_encoder": cfg.speaker_encoder,
                 "emotion_tokenizer": cfg.emotion_tokenizer}
        paths = {k: (None if not v else str(_default_path(k) if v == "default" else v)) for k, v in names.items()}

        def build():
            semantic, _ = _restore("dragoman.nodes.semantic_tokenizer.SemanticTokenizer", cfg.semantic_tokenizer)
            speaker, _ = _restore("dragoman.nodes.speaker_encoder.SpeakerEncoder", cfg.speaker_encoder)
            emotion, _ = _restore("dragoman.nodes.emotion_tokenizer.EmotionTokenizer", cfg.emotion_tokenizer)
            if semantic.codebook_size != self.codebook_size:
                raise DragomanError(f"{self.node_name}: semantic tokenizer has {semantic.codebook_size} codes, "
                                    f"net.codebook_size is {self.codebook_size}")
            return build_decoder_cache(cfg.manifest, semantic, speaker, emotion, self.n_mels, win_length=self.win_length)

        # The envelope's analysis is part of what a cache holds: another window rebuilds it.
        expected = {**fingerprint(cfg.manifest, paths), "envelope": [self.n_mels, self.win_length]}
        return load_or_build(cfg.cache, expected, build)

    n_mels = 80
    win_length = WIN
    needs_audio = False

    def make_dataloader(self, cfg, train: bool):
        cache = self.load_cache(cfg)
        rates = dict(TARGET_RATES)
        audio = None
        if self.needs_audio:
            audio, rates["wav"] = cache.meta["audio"], TOKEN_HOP
        return DataLoader(CropDataset(cache, cfg.crop_tokens, train, audio), batch_size=cfg.batch_size,
                          shuffle=train and cfg.shuffle, num_workers=cfg.num_workers,
                          collate_fn=lambda b: collate_crops(b, rates), drop_last=train and len(cache) > cfg.batch_size)

    def _inputs(self, batch):
        emotion = batch.get("emotion")
        drop = None
        if emotion is not None and self.training and self.cfg.emotion_dropout > 0:
            drop = torch.rand(len(emotion), device=emotion.device) < self.cfg.emotion_dropout
        return batch["semantic"].long(), batch["lengths"], batch["speaker"].long(), \
            None if emotion is None else emotion.long(), drop


def _default_path(name: str) -> Path:
    from dragoman.nodes.trainable import CHECKPOINT_DIR

    return CHECKPOINT_DIR / f"{name}.nemo"


@dataclasses.dataclass
class DecoderConfig:
    net: MelDecoderConfig = dataclasses.field(default_factory=MelDecoderConfig)
    f0_weight: float = 2.0
    voicing_weight: float = 0.5
    emotion_dropout: float = 0.1
    synth_seed: int = 0
    win_length: int = WIN  # analysis window of the log-mel targets, in samples (codec_features.WIN)
    silence_level: Optional[float] = SILENCE_LEVEL  # frames below it play exact zeros (harmonic_synth); null: never
    sample_rate: int = 16000
    optim: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adamw", "lr": 2e-3, "weight_decay": 0.01})
    # A discriminator on the predicted envelope (modules/envelope_gan.py); null: L1/BCE alone.
    adversary: Optional[EnvelopeAdversaryConfig] = None
    train_ds: Optional[CodecDataConfig] = None
    validation_ds: Optional[CodecDataConfig] = None


class Decoder(_CodecDecoder):
    node_name = "decoder"
    Config = DecoderConfig

    def __init__(self, cfg=None, trainer=None):
        from omegaconf import OmegaConf

        super().__init__(cfg, trainer)
        self.net = MelDecoderNet(_structured(MelDecoderConfig, OmegaConf.to_container(self.cfg.net)))
        self.n_mels = self.net.cfg.n_mels
        self.win_length = int(self.cfg.win_length)
        try:
            self.synth = HarmonicNoiseSynth(self.n_mels, seed=self.cfg.synth_seed, win_length=self.win_length,
                                            silence_level=self.cfg.silence_level)
        except ValueError as err:
            raise DragomanError(f"decoder: model.win_length: {err}") from None
        self.criterion = MelDecoderLoss(self.cfg.f0_weight, self.cfg.voicing_weight)
        self.adversary = None
        if self.cfg.get("adversary") is not None:
            try:
                self.adversary = EnvelopeAdversaryConfig(**OmegaConf.to_container(self.cfg.adversary))
            except ValueError as err:
                raise DragomanError(f"decoder: model.adversary: {err}") from None
            self.discriminator = EnvelopeDiscriminator(self.adversary)
            self.automatic_optimization = False

    def load_weights_from(self, source: "Decoder") -> None:
        """Start from `source`, which may have fewer ConvNeXt blocks per stage: the blocks both
        have are copied, every other weight must match, and each extra block starts with a zero
        layer scale, so it adds nothing and the deeper net computes exactly what `source` did
        (function-preserving deepening, Net2Net: Chen et al. 2016) before training moves it. A
        discriminator (`adversary`) is never copied: each adversarial run starts its own."""
        own, theirs = self.net.cfg, source.net.cfg
        if theirs.token_blocks > own.token_blocks or theirs.frame_blocks > own.frame_blocks:
            raise CheckpointError(f"init_from: the source decoder has {theirs.token_blocks}+{theirs.frame_blocks} blocks, "
                                  f"more than this config's {own.token_blocks}+{own.frame_blocks}")
        try:
            # The decoder's weights only: a discriminator always starts fresh (it may have another shape).
            weights = {k: v for k, v in source.state_dict().items() if not k.startswith("discriminator.")}
            missing, unexpected = self.load_state_dict(weights, strict=False)
        except RuntimeError as err:  # shapes differ: another width, codebook or mel count
            detail = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), str(err))
            raise CheckpointError(f"init_from: {detail}") from None
        grown = {f"token_blocks.{i}" for i in range(theirs.token_blocks, own.token_blocks)}
        grown |= {f"frame_blocks.{i}" for i in range(theirs.frame_blocks, own.frame_blocks)}
        stray = [k for k in missing if ".".join(k.split(".")[1:3]) not in grown and not k.startswith("discriminator.")]
        if unexpected or stray:
            raise CheckpointError(f"init_from: weights that do not fit this decoder: {(unexpected + stray)[:3]}")
        with torch.no_grad():
            for name in grown:
                self.net.get_submodule(name).scale.zero_()

    def for_inference(self) -> "Decoder":
        """What a `.nemo` should hold after training: this decoder without its discriminator
        (a training-time network, as HiFi-GAN ships only its generator). The Lightning
        checkpoints of the run keep it for `resume_from`."""
        if self.adversary is None:
            return self
        from omegaconf import OmegaConf, open_dict

        cfg = OmegaConf.create(OmegaConf.to_container(self.cfg))
        with open_dict(cfg):
            cfg.adversary = None
        plain = Decoder(cfg)
        plain.load_weights_from(self)
        return plain

    def infer(self, semantic_tokens, speaker_tokens, emotion_tokens=None):
        tokens, lengths, speaker, emotion = self._prepare(semantic_tokens, speaker_tokens, emotion_tokens)
        pred = self.net(tokens, lengths, speaker, emotion)
        voicing = torch.sigmoid(pred.voicing_logit)
        out = []
        for i, n in enumerate(pred.lengths.tolist()):
            wav = self.synth(pred.log_mel[i, :, :n], pred.log_f0[i, :n], voicing[i, :n])
            out.append(wav.clamp(-1.0, 1.0).cpu())
        return {"audio": out}

    def _losses(self, batch):
        tokens, lengths, speaker, emotion, drop = self._inputs(batch)
        pred = self.net(tokens, lengths, speaker, emotion, drop)
        out = self.criterion(pred, batch["log_mel"].float(), batch["log_f0"].float(), batch["voiced"].bool())
        return out, pred

    def configure_optimizers(self):
        if self.adversary is None:
            return super().configure_optimizers()
        opt, adv = dict(self.cfg.optim), self.adversary
        return [torch.optim.AdamW(self.net.parameters(), float(opt.get("lr", 2e-3)),
                                  weight_decay=float(opt.get("weight_decay", 0.01))),
                torch.optim.AdamW(self.discriminator.parameters(), adv.lr, betas=tuple(adv.betas))]

    def _adversarial_step(self, batch) -> dict[str, torch.Tensor]:
        """One discriminator update, then one generator update on L1/BCE + adversarial + feature matching."""
        opt_g, opt_d = self.optimizers()
        out, pred = self._losses(batch)
        mask = frame_mask(pred.lengths, pred.log_mel.shape[-1])
        real = pad_frames(batch["log_mel"].float(), mask)
        fake = pad_frames(pred.log_mel, mask)
        real_logits, _ = self.discriminator(real)
        fake_logits, _ = self.discriminator(fake.detach())
        d_loss = discriminator_loss([(real_logits, None)], [(fake_logits, None)])
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        real_out, fake_out = [self.discriminator(real)], [self.discriminator(fake)]
        adv, fm = generator_adversarial_loss(fake_out), feature_matching_loss(real_out, fake_out)
        g_loss = out["loss"] + self.adversary.adversarial_weight * adv + self.adversary.feature_weight * fm
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        return {**out, "g_loss": g_loss, "d_loss": d_loss, "adv": adv, "fm": fm}

    def training_step(self, batch, batch_idx):
        if self.adversary is not None:
            out = {k: v.detach() for k, v in self._adversarial_step(batch).items()}
        else:
            out = self._losses(batch)[0]
        self.log_dict({f"train_{k}": v for k, v in out.items()}, prog_bar=True, batch_size=len(batch["lengths"]))
        return out["loss"]

    def validation_step(self, batch, batch_idx):
        out = self._losses(batch)[0]
        self.log_dict({f"val_{k}": v for k, v in out.items()}, prog_bar=True, batch_size=len(batch["lengths"]), sync_dist=True)
        return out["loss"]


@dataclasses.dataclass
class WaveDecoderConfig:
    net: WaveGeneratorConfig = dataclasses.field(default_factory=WaveGeneratorConfig)
    discriminator: DiscriminatorConfig = dataclasses.field(default_factory=DiscriminatorConfig)
    mel_weight: float = 45.0  # HiFi-GAN's weights
    feature_weight: float = 2.0
    emotion_dropout: float = 0.1
    sample_rate: int = 16000
    optim: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adamw", "lr": 2e-4, "betas": [0.8, 0.99]})
    train_ds: Optional[CodecDataConfig] = None
    validation_ds: Optional[CodecDataConfig] = None


class WaveDecoder(_CodecDecoder):
    node_name = "wave_decoder"
    Config = WaveDecoderConfig
    needs_audio = True

    def __init__(self, cfg=None, trainer=None):
        from omegaconf import OmegaConf

        super().__init__(cfg, trainer)
        self.net = WaveGeneratorNet(_structured(WaveGeneratorConfig, OmegaConf.to_container(self.cfg.net)))
        self.discriminator = MultiDiscriminator(DiscriminatorConfig(**OmegaConf.to_container(self.cfg.discriminator)))
        self.mel_loss = MultiResolutionMelLoss(self.cfg.sample_rate)
        self.automatic_optimization = False

    def infer(self, semantic_tokens, speaker_tokens, emotion_tokens=None):
        tokens, lengths, speaker, emotion = self._prepare(semantic_tokens, speaker_tokens, emotion_tokens)
        wav, samples = self.net(tokens, lengths, speaker, emotion)
        return {"audio": [w[: int(n)].cpu() for w, n in zip(wav, samples)]}

    def configure_optimizers(self):
        opt = dict(self.cfg.optim)
        lr, betas = float(opt.get("lr", 2e-4)), tuple(opt.get("betas", (0.8, 0.99)))
        return [torch.optim.AdamW(self.net.parameters(), lr, betas=betas),
                torch.optim.AdamW(self.discriminator.parameters(), lr, betas=betas)]

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        tokens, lengths, speaker, emotion, drop = self._inputs(batch)
        real = batch["wav"].float()
        fake, _ = self.net(tokens, lengths, speaker, emotion, drop)
        d_loss = discriminator_loss(self.discriminator(real), self.discriminator(fake.detach()))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        mel = self.mel_loss(fake, real)
        real_out, fake_out = self.discriminator(real), self.discriminator(fake)
        adv, fm = generator_adversarial_loss(fake_out), feature_matching_loss(real_out, fake_out)
        g_loss = self.cfg.mel_weight * mel + adv + self.cfg.feature_weight * fm
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        logs = {"g_loss": g_loss, "d_loss": d_loss, "mel": mel, "adv": adv, "fm": fm}
        self.log_dict({f"train_{k}": v for k, v in logs.items()}, prog_bar=True, batch_size=len(lengths))
        return {k: v.detach() for k, v in logs.items()}

    def validation_step(self, batch, batch_idx):
        tokens, lengths, speaker, emotion, _ = self._inputs(batch)
        fake, _ = self.net(tokens, lengths, speaker, emotion)
        mel = self.mel_loss(fake, batch["wav"].float())
        self.log_dict({"val_loss": mel, "val_mel": mel}, prog_bar=True, batch_size=len(lengths), sync_dist=True)
        return mel


def _structured(schema, raw: dict):
    """A nested network config dataclass from a plain dict (OmegaConf already checked the keys)."""
    from dragoman.nodes.modules.codec_conditioning import ConditioningConfig

    raw = dict(raw)
    raw["conditioning"] = ConditioningConfig(**raw.get("conditioning", {}))
    return schema(**raw)
