"""Graph nodes over the released UniSS checkpoint: the front and back ends of `uniss_release.yaml`.

Each node has the ports of the default model's node it replaces, so a graph swaps one for the
other by changing `_target_`:

| node                       | replaces             | in -> out                                               |
|----------------------------|----------------------|---------------------------------------------------------|
| `uniss_speaker_encoder`    | `speaker_encoder`    | audio -> speaker_tokens (32 x 4096), speaker_embedding  |
| `uniss_semantic_tokenizer` | `semantic_tokenizer` | audio -> semantic_tokens (50 Hz, 8192)                  |
| `uniss_decoder`            | `decoder`            | semantic_tokens + speaker_tokens -> audio (16 kHz)      |
| `uniss_content_tokenizer`  | `content_tokenizer`  | audio -> content_tokens (12.5 Hz, 16384)                |

In a graph: `weights: DIR` names the release root; each node checks the whole layout (and the
vocabulary's id layout) and reads its own sub-folder. `config` may set `dtype` (auto: bf16 on
CUDA, fp32 on CPU) and the widths the release hard-codes (`widths`, `feature_layers`); keys the
release files define come from them. Alone: `UniSSDecoder.from_release(DIR).place("cuda")`.
The nodes are NeMo `ModelPT`s: `save_to("x.nemo")` keeps config and weights, so one stage can be
swapped or further trained without the directory.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from dragoman.nodes import types as T
from dragoman.nodes.errors import CheckpointError, DragomanError, GraphError
from dragoman.nodes.input_checks import check_waveforms
from dragoman.nodes.release import layout as L
from dragoman.nodes.release import weights as W
from dragoman.nodes.release.bicodec_decoder import BiCodecDecoder
from dragoman.nodes.release.bicodec_semantic import FEATURE_LAYERS, BiCodecSemanticTokenizer, normalize_utterance, \
    receptive_field, wav2vec2_state
from dragoman.nodes.release.bicodec_speaker import BiCodecSpeakerEncoder, SpeakerWidths, mel_frontend, reference_clip, \
    reference_length, volume_normalize
from dragoman.nodes.release.glm_tokenizer import CONV_STRIDE, GlmFeatureExtractor, WhisperVQEncoder, release_state
from dragoman.nodes.trainable import TrainableNode

# What a config without weights describes: facebook/wav2vec2-large-xlsr-53 (the released folder's config.json).
XLSR53 = {
    "model_type": "wav2vec2", "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
    "intermediate_size": 4096, "conv_dim": [512] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_bias": True, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
    "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
}


def _plain(node):
    """An OmegaConf node as plain Python containers (transformers' configs refuse ListConfig)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)


class ReleaseNode(TrainableNode):
    """Shared by the four nodes: building from the release root, device and dtype placement."""

    def __init__(self, cfg=None, trainer=None):
        super().__init__(cfg, trainer)
        W.pick_dtype(self.cfg.dtype, None)  # a bad dtype name fails at construction

    @classmethod
    def release_config(cls, root: Path) -> dict:
        """The node's config keys read from the release files."""
        raise NotImplementedError

    def load_release(self, root: Path) -> None:
        raise NotImplementedError

    @classmethod
    def from_release(cls, root: str | Path, config: Optional[Mapping[str, Any]] = None, where: str = ""):
        """Build from the release root: check the layout, read the configs, load the weights."""
        path = L.check_files(root)
        from_files = cls.release_config(path)
        L.check_vocabulary_once(path)
        user = dict(config or {})
        clash = sorted(set(user) & set(from_files))
        if clash:
            raise GraphError(f"{where or cls.node_name}: config key(s) {clash} come from {path}; remove them")
        with W.empty_init():
            node = cls({**user, **from_files})
        node.load_release(path)
        return node.eval()  # loaded for inference; Lightning switches to train mode when fine-tuning

    @classmethod
    def from_graph_spec(cls, spec, where: str, device: str | None = None):
        if spec.weights:
            if spec.restore_from:
                raise GraphError(f"{where}: give either weights (a UniSS release directory) or restore_from, not both")
            node = cls.from_release(spec.weights, spec.config, where)
        elif spec.restore_from or spec.config:
            node = super().from_graph_spec(spec, where)
        else:
            # A release-sized random network is never what a graph without weights meant.
            raise GraphError(f"{where}: no weights: give the released UniSS directory (`--weights DIR` or "
                             f"`weights: DIR`), a .nemo (`restore_from`), or a `config` for a random network")
        return node.place(device)

    def place(self, device: str | torch.device | None = None):
        """Move to `device` and cast the network: bf16 on CUDA, fp32 on CPU (`dtype: auto`)."""
        if device is not None:
            self.to(device)
        self.net.to(W.pick_dtype(self.cfg.dtype, self.device))
        return self

    @property
    def net_dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype


def _checked(node: str, item: int, check, *args) -> None:
    """Run a codec's id check; its ValueError becomes a one-line error naming node and item."""
    try:
        check(*args)
    except ValueError as err:
        raise DragomanError(f"{node}: item {item}: {err}") from None


# -- speaker -----------------------------------------------------------------------------------
@dataclasses.dataclass
class SpeakerEncoderConfig:
    mel_params: L.MelParams = dataclasses.field(default_factory=L.MelParams)
    speaker_encoder: L.SpeakerParams = dataclasses.field(default_factory=L.SpeakerParams)
    audio: L.AudioParams = dataclasses.field(default_factory=L.AudioParams)
    widths: SpeakerWidths = dataclasses.field(default_factory=SpeakerWidths)
    dtype: str = "auto"


class UniSSSpeakerEncoder(ReleaseNode):
    node_name = "uniss_speaker_encoder"
    Config = SpeakerEncoderConfig

    def __init__(self, cfg=None, trainer=None):
        super().__init__(cfg, trainer)
        c, sp = self.cfg, self.cfg.speaker_encoder
        if sp.fsq_num_quantizers != 1:
            raise CheckpointError(f"{self.node_name}: fsq_num_quantizers {sp.fsq_num_quantizers}; the release (and dragoman) use 1")
        if c.mel_params.sample_rate != c.audio.sample_rate:
            raise CheckpointError(f"{self.node_name}: mel sample_rate {c.mel_params.sample_rate} != audio sample_rate {c.audio.sample_rate}")
        self.mel = mel_frontend(**_plain(c.mel_params))
        with W.network_device():
            self.net = BiCodecSpeakerEncoder(sp.input_dim, sp.out_dim, sp.latent_dim, sp.token_num, _plain(sp.fsq_levels),
                                             SpeakerWidths(**_plain(c.widths)))

    @classmethod
    def port_types(cls, cfg):
        return ({"audio": T.audio(cfg.audio.sample_rate)},
                {"speaker_tokens": T.tokens(T.SpeakerTokensType), "speaker_embedding": T.speaker_embedding()})

    @classmethod
    def release_config(cls, root):
        codec = L.codec_config(root)
        return {"mel_params": codec["mel_params"], "speaker_encoder": codec["speaker_encoder"], "audio": L.audio_config(root)}

    def load_release(self, root):
        path = root / L.CODEC_DIR / "model.safetensors"
        state = W.fold_weight_norm(W.read_safetensors(path, ["speaker_encoder."]), str(path))
        W.load_strict(self.net, W.strip_prefix(state, "speaker_encoder."), f"{path} (speaker_encoder.*)")

    def references(self, audio) -> torch.Tensor:
        """Volume-normalised 6 s reference clips [B, 96000] (shorter audio tiled)."""
        a = self.cfg.audio
        wavs = check_waveforms(audio, self.node_name, expected_rate=a.sample_rate)
        length = reference_length(a.sample_rate, a.ref_segment_duration, a.latent_hop_length)
        clips = [reference_clip(volume_normalize(w) if a.volume_normalize else w, length) for w in wavs]
        return torch.stack([c.float() for c in clips]).to(self.device)

    def infer(self, audio):
        mel = self.mel(self.references(audio))
        ids, x_vector = self.net(mel.to(self.net_dtype))
        return {"speaker_tokens": [row.cpu() for row in ids], "speaker_embedding": [row.float().cpu() for row in x_vector]}

    def tokens_to_dvector(self, ids) -> torch.Tensor:
        """Global token ids ([B, 32] or a list of [32]) -> d-vectors [B, out_dim] (what the decoder uses)."""
        batch = torch.stack([torch.as_tensor(x) for x in ids]) if isinstance(ids, (list, tuple)) else torch.as_tensor(ids)
        for i, row in enumerate(batch):
            _checked(self.node_name, i, self.net.check_ids, row)
        with torch.inference_mode():
            return self.net.dvector(batch.long().to(self.device)).float().cpu()


# -- semantic ----------------------------------------------------------------------------------
@dataclasses.dataclass
class SemanticTokenizerConfig:
    wav2vec2: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(XLSR53))
    feature_normalize: bool = True
    feature_layers: list[int] = dataclasses.field(default_factory=lambda: list(FEATURE_LAYERS))
    encoder: L.EncoderParams = dataclasses.field(default_factory=L.EncoderParams)
    quantizer: L.QuantizerParams = dataclasses.field(default_factory=L.QuantizerParams)
    audio: L.AudioParams = dataclasses.field(default_factory=L.AudioParams)
    dtype: str = "auto"


class UniSSSemanticTokenizer(ReleaseNode):
    node_name = "uniss_semantic_tokenizer"
    Config = SemanticTokenizerConfig

    def __init__(self, cfg=None, trainer=None):
        super().__init__(cfg, trainer)
        c = self.cfg
        with W.network_device():
            self.net = BiCodecSemanticTokenizer(_plain(c.wav2vec2), _plain(c.encoder), _plain(c.quantizer), _plain(c.feature_layers))

    @classmethod
    def port_types(cls, cfg):
        hop = math.prod(cfg.wav2vec2.get("conv_stride", XLSR53["conv_stride"]))
        return ({"audio": T.audio(cfg.audio.sample_rate)},
                {"semantic_tokens": T.tokens(T.SemanticTokensType, cfg.audio.sample_rate / hop)})

    @classmethod
    def release_config(cls, root):
        codec = L.codec_config(root)
        w2v, normalize = L.wav2vec2_config(root)
        return {"wav2vec2": w2v, "feature_normalize": normalize, "encoder": codec["encoder"],
                "quantizer": codec["quantizer"], "audio": L.audio_config(root)}

    def load_release(self, root):
        bin_path = root / L.WAV2VEC2_DIR / "pytorch_model.bin"
        layers = max(self.net.wav2vec2.layers)
        W.load_strict(self.net.wav2vec2.model, wav2vec2_state(W.read_torch_pickle(bin_path), layers, str(bin_path)), str(bin_path))
        path = root / L.CODEC_DIR / "model.safetensors"
        state = W.fold_weight_norm(W.read_safetensors(path, ["encoder.", "quantizer."]), str(path))
        for part in ("encoder", "quantizer"):
            W.load_strict(getattr(self.net, part), W.strip_prefix(state, f"{part}."), f"{path} ({part}.*)")

    def infer(self, audio):
        a = self.cfg.audio
        wavs = check_waveforms(audio, self.node_name, expected_rate=a.sample_rate,
                               min_samples=receptive_field(self.cfg.wav2vec2))
        out = []
        for wav in wavs:  # one at a time, as the release does: no padding reaches the features
            wav = volume_normalize(wav) if a.volume_normalize else wav
            wav = normalize_utterance(wav) if self.cfg.feature_normalize else wav.float()
            out.append(self.net(wav[None].to(self.device))[0].cpu())
        return {"semantic_tokens": out}


# -- decoder -----------------------------------------------------------------------------------
@dataclasses.dataclass
class DecoderConfig:
    quantizer: L.QuantizerParams = dataclasses.field(default_factory=L.QuantizerParams)
    speaker_encoder: L.SpeakerParams = dataclasses.field(default_factory=L.SpeakerParams)
    prenet: L.PrenetParams = dataclasses.field(default_factory=L.PrenetParams)
    decoder: L.WaveGeneratorParams = dataclasses.field(default_factory=L.WaveGeneratorParams)
    audio: L.AudioParams = dataclasses.field(default_factory=L.AudioParams)
    dtype: str = "auto"


class UniSSDecoder(ReleaseNode):
    node_name = "uniss_decoder"
    Config = DecoderConfig

    def __init__(self, cfg=None, trainer=None):
        super().__init__(cfg, trainer)
        c = self.cfg
        with W.network_device():
            self.net = BiCodecDecoder(_plain(c.quantizer), _plain(c.speaker_encoder), _plain(c.prenet), _plain(c.decoder))

    @classmethod
    def port_types(cls, cfg):
        rate = cfg.audio.sample_rate / math.prod(cfg.decoder.rates)
        return ({"semantic_tokens": T.tokens(T.SemanticTokensType, rate), "speaker_tokens": T.tokens(T.SpeakerTokensType)},
                {"audio": T.audio(cfg.audio.sample_rate)})

    @classmethod
    def release_config(cls, root):
        codec = L.codec_config(root)
        keys = ("quantizer", "speaker_encoder", "prenet", "decoder")
        return {**{k: codec[k] for k in keys}, "audio": L.audio_config(root)}

    def load_release(self, root):
        path = root / L.CODEC_DIR / "model.safetensors"
        prefixes = ["quantizer.", "speaker_encoder.quantizer.", "speaker_encoder.project.", "prenet.", "decoder."]
        W.load_strict(self.net, W.fold_weight_norm(W.read_safetensors(path, prefixes), str(path)), f"{path} (decoder part)")

    def infer(self, semantic_tokens, speaker_tokens):
        out = []
        for i, (semantic, speaker) in enumerate(zip(semantic_tokens, speaker_tokens)):
            semantic, speaker = torch.as_tensor(semantic).long(), torch.as_tensor(speaker).long()
            _checked(self.node_name, i, self.net.check_ids, semantic, speaker)
            # One item at a time: convolutions over right-padding would change the last samples.
            out.append(self.net(semantic[None].to(self.device), speaker[None].to(self.device))[0].cpu())
        return {"audio": out}


# -- content -----------------------------------------------------------------------------------
@dataclasses.dataclass
class ContentTokenizerConfig:
    whisper: L.WhisperVQParams = dataclasses.field(default_factory=L.WhisperVQParams)
    features: L.WhisperFeatureParams = dataclasses.field(default_factory=L.WhisperFeatureParams)
    dtype: str = "auto"


class UniSSContentTokenizer(ReleaseNode):
    node_name = "uniss_content_tokenizer"
    Config = ContentTokenizerConfig

    def __init__(self, cfg=None, trainer=None):
        super().__init__(cfg, trainer)
        w = self.cfg.whisper
        with W.network_device():
            self.net = WhisperVQEncoder(**_plain(w))
        self.frontend = GlmFeatureExtractor(_plain(self.cfg.features), w.pooling_kernel_size)

    @classmethod
    def port_types(cls, cfg):
        f = cfg.features
        rate = f.sampling_rate / (f.hop_length * CONV_STRIDE * cfg.whisper.pooling_kernel_size)
        return {"audio": T.audio(f.sampling_rate)}, {"content_tokens": T.tokens(T.ContentTokensType, rate)}

    @classmethod
    def release_config(cls, root):
        whisper, features = L.glm_config(root)
        return {"whisper": whisper, "features": features}

    def load_release(self, root):
        path = root / L.GLM_DIR / "model.safetensors"
        state = release_state(W.read_safetensors(path, []), len(self.net.layers))
        W.load_strict(self.net, state, str(path))

    def infer(self, audio):
        wavs = check_waveforms(audio, self.node_name, expected_rate=self.frontend.sample_rate)
        out = []
        for wav in wavs:
            ids = []
            for piece in self.frontend.pieces(wav):  # 30 s pieces, each padded alone as the release does
                features, frame_mask = self.frontend(piece)
                tokens, keep = self.net(features.to(self.device), frame_mask.to(self.device))
                ids.append(tokens[0][keep[0]].cpu())
            out.append(torch.cat(ids))
        return {"content_tokens": out}
