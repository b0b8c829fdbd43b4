"""BiCodec's semantic tokenizer: 16 kHz audio -> 50 Hz tokens of an 8192-code factorised VQ.

Spark-TTS (arXiv 2503.01710, §3.1) quantises self-supervised features, not audio: wav2vec2
(XLS-R 53, 1024-dim, 320-sample hop) hidden states 11, 14 and 16 are averaged (the middle layers
carry the most phonetic content), encoded by a ConvNeXt stack, projected to 8 dimensions and
matched to an 8192-entry codebook. UNISS_RELEASE items 12-14 fix the details honoured here:

- the processor normalises each utterance to zero mean and unit variance (`do_normalize`);
- `hidden_states[k]` is the input of transformer layer k, i.e. the output of layer k-1 *before*
  the final LayerNorm of the stable-layer-norm model; only the first 16 layers run;
- the factorised VQ: weight-normed 1x1 conv to 8 dims, L2-normalised codes and codebook, nearest
  by cosine; decoding looks up the UN-normalised codebook row and applies the 1x1 out-conv;
- wav2vec2 ships as `pytorch_model.bin` of `Wav2Vec2ForPreTraining`: keys prefixed `wav2vec2.`,
  pretraining heads (`quantizer.*`, `project_q.*`, `project_hid.*`) ignored, positional conv
  weight-normed over dim 2 (`weight_g` [1,1,K]).

The wav2vec2 network itself is `transformers`' `Wav2Vec2Model`, built from the folder's
config.json; dragoman runs its layers directly so the result does not depend on how a
transformers version collects `hidden_states`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dragoman.nodes.errors import CheckpointError
from dragoman.nodes.release.convnext import FeatureEncoder
from dragoman.nodes.release.weights import fold_weight_norm, strip_prefix

# Spark-TTS's choice of wav2vec2 hidden states (indices into `hidden_states`, 0 = embeddings).
FEATURE_LAYERS = (11, 14, 16)
WAV2VEC2_PREFIX = "wav2vec2."
PRETRAINING_HEADS = ("quantizer.", "project_q.", "project_hid.")


class FactorizedVQ(nn.Module):
    """Low-dimensional VQ with L2-normalised (cosine) lookup. Runs in fp32: with 8192 codes of
    8 dims, bf16 rounding of the projection would flip nearest neighbours."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int):
        super().__init__()
        self.in_project = nn.Conv1d(input_dim, codebook_dim, kernel_size=1)
        self.out_project = nn.Conv1d(codebook_dim, input_dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)
        # Training statistic (EMA of code use); stored in the release, unused at inference.
        self.register_buffer("cluster_size", torch.zeros(codebook_size))

    @property
    def codebook_size(self) -> int:
        return self.codebook.weight.shape[0]

    def tokenize(self, z: torch.Tensor) -> torch.Tensor:
        """latents [B, input_dim, T] -> ids [B, T]."""
        z_e = F.conv1d(z.float(), self.in_project.weight.float(), self.in_project.bias.float())
        codes = F.normalize(z_e.transpose(1, 2), dim=-1)
        book = F.normalize(self.codebook.weight.float(), dim=-1)
        return (codes @ book.t()).argmax(dim=-1)

    def detokenize(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, T] -> latents [B, input_dim, T] (fp32)."""
        rows = F.embedding(ids, self.codebook.weight.float()).transpose(1, 2)
        return F.conv1d(rows, self.out_project.weight.float(), self.out_project.bias.float())


def build_wav2vec2(config: Mapping[str, Any], num_layers: int) -> nn.Module:
    """`Wav2Vec2Model` from a config.json dict, positional-conv weight norm removed (the folded
    weight loads as a plain tensor) and only the layers feature extraction reaches."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(**{k: v for k, v in config.items() if not k.startswith("_")})
    if cfg.num_hidden_layers < num_layers:
        raise CheckpointError(f"wav2vec2 config has {cfg.num_hidden_layers} layers; features need hidden state {num_layers}")
    model = Wav2Vec2Model(cfg)
    conv = model.encoder.pos_conv_embed.conv
    if hasattr(conv, "parametrizations"):
        torch.nn.utils.parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
    model.encoder.layers = model.encoder.layers[:num_layers]
    model.encoder.layer_norm = nn.Identity()  # features are taken before it
    return model


def wav2vec2_state(raw: Mapping[str, torch.Tensor], num_layers: int, where: str) -> dict[str, torch.Tensor]:
    """The released `Wav2Vec2ForPreTraining` pickle -> `Wav2Vec2Model` keys: drop the prefix and
    the pretraining heads, fold the positional conv's weight norm, keep the layers that run and
    drop the final encoder LayerNorm (hidden states are taken before it)."""
    unknown = sorted(k for k in raw if not k.startswith((WAV2VEC2_PREFIX, *PRETRAINING_HEADS)))
    if unknown:
        raise CheckpointError(f"{where}: unexpected tensor(s) {unknown[:3]} (not a Wav2Vec2ForPreTraining state dict)")
    state = fold_weight_norm(strip_prefix(dict(raw), WAV2VEC2_PREFIX), where)
    kept = {}
    for key, value in state.items():
        if key.startswith("encoder.layer_norm."):
            continue
        if key.startswith("encoder.layers.") and int(key.split(".")[2]) >= num_layers:
            continue
        kept[key] = value
    return kept


class Wav2Vec2Features(nn.Module):
    """Normalised 16 kHz audio [B, N] -> mean of the chosen hidden states [B, T, hidden]."""

    def __init__(self, config: Mapping[str, Any], layers: Sequence[int] = FEATURE_LAYERS):
        super().__init__()
        self.layers = tuple(int(i) for i in layers)
        if not self.layers or min(self.layers) < 1:
            raise CheckpointError(f"wav2vec2 feature layers {list(layers)} must be >= 1 (0 is the embedding)")
        self.model = build_wav2vec2(config, max(self.layers))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        m = self.model
        frames = m.feature_extractor(wav).transpose(1, 2)
        hidden = m.feature_projection(frames)[0]
        hidden = hidden + m.encoder.pos_conv_embed(hidden)
        total = torch.zeros_like(hidden)
        for index, layer in enumerate(m.encoder.layers, start=1):
            out = layer(hidden)
            hidden = out[0] if isinstance(out, tuple) else out
            if index in self.layers:
                total = total + hidden
        return total / len(self.layers)


def normalize_utterance(wav: torch.Tensor) -> torch.Tensor:
    """Wav2Vec2FeatureExtractor's `do_normalize`: zero mean, unit variance (population), eps 1e-7."""
    wav = wav.float()
    return (wav - wav.mean()) / torch.sqrt(wav.var(unbiased=False) + 1e-7)


def receptive_field(config: Mapping[str, Any]) -> int:
    """Samples the conv feature extractor needs for one frame (400 for the release's kernels
    [10,3,3,3,3,2,2] and strides [5,2,2,2,2,2,2]: a 320-sample hop, 50 Hz)."""
    field = 1
    for k, s in reversed(list(zip(config.get("conv_kernel", (10, 3, 3, 3, 3, 2, 2)),
                                  config.get("conv_stride", (5, 2, 2, 2, 2, 2, 2))))):
        field = (field - 1) * s + k
    return field


class BiCodecSemanticTokenizer(nn.Module):
    """Normalised audio [1, N] -> semantic ids [1, T]; attribute names as in the release
    (`encoder.*`, `quantizer.*` from BiCodec's file; `wav2vec2` from the pickle)."""

    def __init__(self, wav2vec2_config: Mapping[str, Any], encoder: Mapping[str, Any], quantizer: Mapping[str, Any],
                 feature_layers: Sequence[int] = FEATURE_LAYERS):
        super().__init__()
        self.wav2vec2 = Wav2Vec2Features(wav2vec2_config, feature_layers)
        self.encoder = FeatureEncoder(**encoder)
        self.quantizer = FactorizedVQ(quantizer["input_dim"], quantizer["codebook_size"], quantizer["codebook_dim"])

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        features = self.wav2vec2(wav.to(self.encoder.project.weight.dtype))
        return self.quantizer.tokenize(self.encoder(features.transpose(1, 2)))
