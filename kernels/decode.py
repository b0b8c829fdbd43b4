"""Token-by-token generation for a transformers `Qwen2ForCausalLM` over a static KV cache.

Why not `model.generate`: UniSS writes 50 speech tokens per second of output plus the text, one
token at a time (DESIGN §8), and HF's loop spends much of each step outside the math: a
DynamicCache that grows by concatenation, a causal mask rebuilt per step, logits-processor and
stopping-criteria objects, output bookkeeping. Here the cache is allocated once, the step is a
fixed sequence of ops (`StaticQwen2.step`), and on CUDA that sequence is captured once in a CUDA
graph and replayed at every position, so a step costs one graph launch plus sampling.
On CPU the same loop runs the torch references; with a small model, whose step is mostly
per-op overhead, it measured 2.1-2.8x HF's tokens/s on the 2-core CI machine (`dragoman bench
decode`), falling towards 1x as the weights grow and both become bound by the same matmuls.

Greedy output equals HF `generate(do_sample=False)` on the same model (tests/kernels check it,
with and without a repetition penalty and with eos ids); sampling follows HF's processor order
(repetition penalty, temperature, top-k, top-p) with this package's seeded inverse-CDF draw.

Usage::

    decoder = StaticDecoder(model)
    ids = decoder.generate(prompt_ids, max_new_tokens=1500, sampling=SamplingConfig.uniss(),
                           eos_token_ids=(151645, 151643), seed=0)
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from dragoman.kernels.qwen2_forward import StaticQwen2
from dragoman.kernels.sampling import SamplingConfig, sample, seen_mask
from dragoman.nodes.errors import DragomanError

# Capacities are rounded up to this many tokens so that prompts of nearby lengths reuse one
# cache and one captured graph instead of reallocating and recapturing for each request.
_CAPACITY_STEP = 256


class _GraphStep:
    """`StaticQwen2.step` captured in a CUDA graph for one (batch, capacity) cache."""

    def __init__(self, model: StaticQwen2, batch: int):
        self.tokens = torch.zeros(batch, dtype=torch.long, device=model.device)
        # Warm-up and capture write keys/values at position capacity - 1; prefill and the
        # steps rewrite every position before attention reads it.
        self.position = torch.full((1,), model.capacity - 1, dtype=torch.long, device=model.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # compiles the Triton kernels and settles cuBLAS workspaces
                model.step(self.tokens, self.position)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = model.step(self.tokens, self.position)

    def __call__(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        self.tokens.copy_(tokens)
        self.position.fill_(position)
        self.graph.replay()
        return self.logits


class StaticDecoder:
    """Generate from a `Qwen2ForCausalLM` with a static KV cache (and a CUDA graph on GPU)."""

    def __init__(self, model: torch.nn.Module, cuda_graph: bool = True):
        self.model = StaticQwen2(model)
        self.use_graph = cuda_graph and self.model.device.type == "cuda"
        self._graph: _GraphStep | None = None

    def _prepare(self, batch: int, needed: int) -> None:
        """Make sure the cache (and graph) fit `batch` rows of `needed` tokens."""
        m = self.model
        if m.batch != batch or m.capacity < needed:
            capacity = -(-needed // _CAPACITY_STEP) * _CAPACITY_STEP
            self._graph = None
            m.allocate(batch, capacity)
        if self.use_graph and self._graph is None:
            self._graph = _GraphStep(m, batch)

    def _step(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        if self._graph is not None:
            return self._graph(tokens, position)
        where = torch.tensor([position], dtype=torch.long, device=self.model.device)
        return self.model.step(tokens, where)

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        sampling: SamplingConfig | None = None,
        eos_token_ids: Sequence[int] = (),
        pad_token_id: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> torch.Tensor:
        """Prompt [B, S] (equal lengths) -> [B, S + T] ids, T <= max_new_tokens, like HF.

        Generation stops when every row has produced one of `eos_token_ids` (rows that finish
        early are filled with `pad_token_id`, by default the first eos id) or after
        `max_new_tokens`. Sampling draws from `generator`, or from a fresh one seeded with
        `seed`, or from torch's default generator.
        """
        sampling = sampling or SamplingConfig()
        input_ids = self._check_prompt(input_ids, max_new_tokens)
        batch, length = input_ids.shape
        device = self.model.device
        if generator is None and seed is not None:
            generator = torch.Generator(device=device).manual_seed(int(seed))
        eos = torch.tensor(list(eos_token_ids), dtype=torch.long, device=device)
        if pad_token_id is None:
            pad_token_id = int(eos[0]) if eos.numel() else 0
        self._prepare(batch, length + max_new_tokens)

        logits = self.model.prefill(input_ids)
        penalised = sampling.repetition_penalty != 1.0
        seen = seen_mask(input_ids, self.model.vocab_size) if penalised else None
        rows = torch.arange(batch, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        out = torch.full((batch, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
        produced = 0
        while produced < max_new_tokens:
            tokens = sample(logits, sampling, seen, generator)
            if eos.numel():
                tokens = torch.where(finished, pad_token_id, tokens)
                finished |= torch.isin(tokens, eos)
            out[:, produced] = tokens
            produced += 1
            if seen is not None:
                seen[rows, tokens] = True
            if eos.numel() and bool(finished.all()):
                break
            if produced < max_new_tokens:
                logits = self._step(tokens, length + produced - 1)
        return torch.cat([input_ids, out[:, :produced]], dim=1)

    def _check_prompt(self, input_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.long, torch.int32):
            raise DragomanError("static decoder: input_ids must be an integer tensor [batch, length]")
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        if input_ids.dim() != 2 or input_ids.shape[1] == 0 or input_ids.shape[0] == 0:
            raise DragomanError(
                f"static decoder: input_ids {tuple(input_ids.shape)} must be a non-empty [batch, length]"
            )
        if max_new_tokens < 1:
            raise DragomanError(f"static decoder: max_new_tokens must be >= 1, got {max_new_tokens}")
        bad = (input_ids < 0) | (input_ids >= self.model.embed.shape[0])
        if bool(bad.any()):
            raise DragomanError(
                f"static decoder: input_ids hold ids outside the vocabulary of {self.model.embed.shape[0]}"
            )
        return input_ids.to(device=self.model.device, dtype=torch.long)
