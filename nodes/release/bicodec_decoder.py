"""BiCodec's decoder: 50 Hz semantic tokens + 32 global tokens -> 16 kHz waveform.

Spark-TTS (arXiv 2503.01710, §3.1; UNISS_RELEASE items 11-13):
1. semantic ids -> codebook rows (un-normalised) -> weight-normed 1x1 out-projection;
2. global ids -> FSQ codes -> d-vector (`GlobalTokenDecoder`);
3. the prenet, a ConvNeXt decoder whose adaptive LayerNorms are conditioned on the d-vector;
   then the d-vector is added to every frame;
4. the wave generator, DAC's decoder (Kumar et al. 2023): a 7-tap conv, then per rate
   r in [8, 5, 4, 2] a Snake + transposed conv (kernel 2r, stride r) that halves the channels,
   followed by three residual units (Snake, 7-tap conv with dilation 1/3/9, Snake, 1x1 conv);
   a final Snake, 7-tap conv to one channel and tanh. 8*5*4*2 = 320 samples per token.

Snake is `dragoman.kernels.snake.snake` (Triton on CUDA, its torch reference elsewhere). The
released convolutions are weight-normed (`weight_g`/`weight_v`); `weights.fold_weight_norm`
turns them into the plain `weight` these modules hold. Attribute names equal the released tensor
names (`decoder.model.1.block.2.block.1.weight`, `prenet.*`, `quantizer.*`,
`speaker_encoder.quantizer.*`, `speaker_encoder.project.*`).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from dragoman.kernels.snake import snake
from dragoman.nodes.release.bicodec_semantic import FactorizedVQ
from dragoman.nodes.release.bicodec_speaker import GlobalTokenDecoder
from dragoman.nodes.release.convnext import FeatureDecoder


class Snake1d(nn.Module):
    """x + sin^2(alpha x) / alpha with one learned alpha per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return snake(x, self.alpha)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(dim),
            nn.Conv1d(dim, dim, kernel_size=7, dilation=dilation, padding=3 * dilation),
            Snake1d(dim),
            nn.Conv1d(dim, dim, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class DecoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(cin),
            nn.ConvTranspose1d(cin, cout, kernel_size=kernel_size, stride=stride, padding=(kernel_size - stride) // 2),
            ResidualUnit(cout, 1),
            ResidualUnit(cout, 3),
            ResidualUnit(cout, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class WaveGenerator(nn.Module):
    """[B, input_channel, T] -> [B, d_out, T * prod(rates)] in [-1, 1]."""

    def __init__(self, input_channel: int, channels: int, rates: Sequence[int], kernel_sizes: Sequence[int], d_out: int = 1):
        super().__init__()
        if len(rates) != len(kernel_sizes):
            raise ValueError(f"wave generator: {len(rates)} rates but {len(kernel_sizes)} kernel sizes")
        layers: list[nn.Module] = [nn.Conv1d(input_channel, channels, kernel_size=7, padding=3)]
        width = channels
        for kernel, rate in zip(kernel_sizes, rates):
            layers.append(DecoderBlock(width, width // 2, kernel, rate))
            width //= 2
        layers += [Snake1d(width), nn.Conv1d(width, d_out, kernel_size=7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class BiCodecDecoder(nn.Module):
    def __init__(self, quantizer: Mapping[str, Any], speaker: Mapping[str, Any], prenet: Mapping[str, Any],
                 decoder: Mapping[str, Any]):
        super().__init__()
        self.quantizer = FactorizedVQ(quantizer["input_dim"], quantizer["codebook_size"], quantizer["codebook_dim"])
        self.speaker_encoder = GlobalTokenDecoder(speaker["latent_dim"], speaker["token_num"], speaker["out_dim"],
                                                  speaker["fsq_levels"])
        prenet_args = {k: prenet[k] for k in ("input_channels", "vocos_dim", "vocos_intermediate_dim", "vocos_num_layers",
                                              "out_channels", "condition_dim", "sample_ratios", "use_tanh_at_final")}
        self.prenet = FeatureDecoder(**prenet_args)
        self.decoder = WaveGenerator(**decoder)

    def check_ids(self, semantic: torch.Tensor, global_ids: torch.Tensor) -> None:
        """ValueError unless one item's semantic ids [T] and global ids [32] can be decoded: an
        empty or out-of-range id would otherwise fail deep inside an embedding lookup (or, in
        the released inference, turn the id tensor into floats and crash: UNISS_RELEASE item 6)."""
        if semantic.dim() != 1 or semantic.numel() == 0:
            raise ValueError(f"no semantic tokens to decode (shape {tuple(semantic.shape)})")
        size = self.quantizer.codebook_size
        if int(semantic.min()) < 0 or int(semantic.max()) >= size:
            raise ValueError(f"semantic token ids must lie in [0, {size}), got {int(semantic.min())}..{int(semantic.max())}")
        self.speaker_encoder.check_ids(global_ids)

    def forward(self, semantic: torch.Tensor, global_ids: torch.Tensor) -> torch.Tensor:
        """semantic [B, T], global ids [B, 32] -> waveform [B, T * 320] (float32)."""
        dtype = self.decoder.model[0].weight.dtype
        latents = self.quantizer.detokenize(semantic).to(dtype)
        dvector = self.speaker_encoder.dvector(global_ids)
        x = self.prenet(latents, dvector) + dvector.unsqueeze(-1)
        return self.decoder(x).squeeze(1).float()
