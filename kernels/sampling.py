"""Token sampling over large vocabularies: a fused Triton logits pass, then top-k / top-p / draw.

What is fused (one read of the logits row, one kernel launch per call plus a tiny merge): the
repetition penalty over the generated history (HF semantics: score / p if score > 0 else
score * p, once per distinct id), the temperature, and the online max / argmax / log-sum-exp of
the processed row. With those, greedy decoding is done after the pass (the argmax), and the
probabilities exp(x - lse) of any candidate tokens are exactly normalised over the whole
vocabulary (180,407 ids for UniSS) without a second pass.

What stays in torch: the top-k / top-p cut and the draw, run on a short candidate list. A top-p
cut is a prefix of the tokens sorted by probability; its end is found among the 1,024 most
probable tokens (`torch.topk`, no full sort) whenever their mass reaches top_p, the usual case
for a trained LM whose mass sits on few ids, and otherwise by a full sort (a flat random-init
model takes that branch; the kept set is the same either way). Sorting 180k values inside the
kernel would make it far larger for a cut that `topk` finds on a short list.

Draws are inverse-CDF with one uniform number per row from the caller's torch.Generator, so a
seed fixes the tokens on a device, and the Triton and torch paths draw the same tokens (barring
a uniform that lands within float rounding of a CDF step).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from dragoman.kernels.dispatch import use_triton
from dragoman.nodes.errors import DragomanError

# Candidates examined before falling back to a full sort for top-p (see module docstring).
_TOP_P_CANDIDATES = 1024


@dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen; the defaults are greedy, like HF `generate`'s.

    `repetition_penalty` applies in greedy mode too (as in HF); `top_k = 0` and `top_p = 1.0`
    switch those filters off. `uniss()` gives the released UniSS inference settings (DESIGN §5).
    """

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise DragomanError(f"sampling: temperature must be > 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise DragomanError(f"sampling: top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise DragomanError(f"sampling: top_k must be >= 0 (0 = off), got {self.top_k}")
        if not self.repetition_penalty > 0:
            raise DragomanError(
                f"sampling: repetition_penalty must be > 0, got {self.repetition_penalty}"
            )

    @classmethod
    def uniss(cls) -> SamplingConfig:
        """UniSS's released defaults: temperature 0.7, top_p 0.8, repetition penalty 1.1."""
        return cls(do_sample=True, temperature=0.7, top_p=0.8, repetition_penalty=1.1)


@triton.jit
def _logits_pass_kernel(
    logits_ptr, seen_ptr, out_ptr, part_max_ptr, part_sum_ptr, part_arg_ptr,
    vocab, penalty, temperature,
    stride_logits, stride_seen, stride_out, stride_part,
    HAS_PENALTY: tl.constexpr, STORE: tl.constexpr, BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    cols = chunk * BLOCK + tl.arange(0, BLOCK)
    mask = cols < vocab
    x = tl.load(logits_ptr + row * stride_logits + cols, mask=mask, other=float("-inf")).to(tl.float32)
    if HAS_PENALTY:
        seen = tl.load(seen_ptr + row * stride_seen + cols, mask=mask, other=0) != 0
        x = tl.where(seen, tl.where(x < 0, x * penalty, x / penalty), x)
    x = x / temperature
    if STORE:
        tl.store(out_ptr + row * stride_out + cols, x, mask=mask)
    block_max = tl.max(x, axis=0)
    block_arg = tl.argmax(x, axis=0, tie_break_left=True)
    # A block of -inf only (masked tail, or banned ids) must not turn the sum into NaN.
    safe_max = tl.where(block_max == float("-inf"), 0.0, block_max)
    block_sum = tl.sum(tl.exp(x - safe_max), axis=0)
    tl.store(part_max_ptr + row * stride_part + chunk, block_max)
    tl.store(part_sum_ptr + row * stride_part + chunk, block_sum)
    tl.store(part_arg_ptr + row * stride_part + chunk, chunk * BLOCK + block_arg)


@triton.jit
def _logits_merge_kernel(
    part_max_ptr, part_sum_ptr, part_arg_ptr, lse_ptr, arg_ptr,
    n_chunks, stride_part, BLOCK_C: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    c = tl.arange(0, BLOCK_C)
    mask = c < n_chunks
    pmax = tl.load(part_max_ptr + row * stride_part + c, mask=mask, other=float("-inf"))
    psum = tl.load(part_sum_ptr + row * stride_part + c, mask=mask, other=0.0)
    parg = tl.load(part_arg_ptr + row * stride_part + c, mask=mask, other=0)
    row_max = tl.max(pmax, axis=0)
    safe_max = tl.where(row_max == float("-inf"), 0.0, row_max)
    scaled = tl.where(pmax == float("-inf"), 0.0, psum * tl.exp(pmax - safe_max))
    tl.store(lse_ptr + row, safe_max + tl.log(tl.sum(scaled, axis=0)))
    # Ties across chunks go to the lowest id, as torch.argmax does.
    first = tl.min(tl.where(mask & (pmax == row_max), parg, 2147483647), axis=0)
    tl.store(arg_ptr + row, first.to(tl.int64))


def logits_pass_triton(
    logits: torch.Tensor,
    seen: torch.Tensor | None,
    penalty: float = 1.0,
    temperature: float = 1.0,
    store: bool = True,
    block: int = 2048,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Launch the fused pass and the merge; same contract as `logits_pass_reference`.

    `store=False` skips writing the processed row (greedy decoding only needs the argmax).
    """
    batch, vocab = _check(logits, seen)
    if logits.stride(-1) != 1:
        logits = logits.contiguous()
    has_penalty = seen is not None and penalty != 1.0
    seen_u8 = seen.view(torch.uint8) if has_penalty else logits
    if has_penalty and seen_u8.stride(-1) != 1:
        seen_u8 = seen_u8.contiguous()
    n_chunks = triton.cdiv(vocab, block)
    dev = logits.device
    out = torch.empty((batch, vocab), dtype=torch.float32, device=dev) if store else None
    part_max = torch.empty((batch, n_chunks), dtype=torch.float32, device=dev)
    part_sum = torch.empty_like(part_max)
    part_arg = torch.empty((batch, n_chunks), dtype=torch.int32, device=dev)
    _logits_pass_kernel[(batch, n_chunks)](
        logits, seen_u8, out if store else logits, part_max, part_sum, part_arg,
        vocab, float(penalty), float(temperature),
        logits.stride(0), seen_u8.stride(0), out.stride(0) if store else 0, part_max.stride(0),
        HAS_PENALTY=has_penalty, STORE=store, BLOCK=block, num_warps=8 if block >= 2048 else 4,
    )
    lse = torch.empty(batch, dtype=torch.float32, device=dev)
    arg = torch.empty(batch, dtype=torch.int64, device=dev)
    _logits_merge_kernel[(batch,)](
        part_max, part_sum, part_arg, lse, arg, n_chunks, part_max.stride(0),
        BLOCK_C=max(2, triton.next_power_of_2(n_chunks)),
    )
    return out, lse, arg


def _penalise(x: torch.Tensor, seen: torch.Tensor | None, penalty: float) -> torch.Tensor:
    """HF's repetition penalty on fp32 logits: seen ids get score / p if > 0, else score * p."""
    if seen is None or penalty == 1.0:
        return x
    return torch.where(seen, torch.where(x < 0, x * penalty, x / penalty), x)


def logits_pass_reference(
    logits: torch.Tensor,
    seen: torch.Tensor | None,
    penalty: float = 1.0,
    temperature: float = 1.0,
    store: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """logits [B, V] (any float dtype), seen [B, V] bool -> (processed fp32, lse [B], argmax [B])."""
    _check(logits, seen)
    x = _penalise(logits.to(torch.float32), seen, penalty)
    if temperature != 1.0:
        x = x / temperature
    return (x if store else None), torch.logsumexp(x, dim=-1), x.argmax(dim=-1)


def logits_pass(
    logits: torch.Tensor,
    seen: torch.Tensor | None,
    penalty: float = 1.0,
    temperature: float = 1.0,
    store: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Penalty + temperature + max/argmax/log-sum-exp in one pass; Triton on CUDA, torch elsewhere."""
    if use_triton(logits, seen):
        return logits_pass_triton(logits, seen, penalty, temperature, store)
    return logits_pass_reference(logits, seen, penalty, temperature, store)


def _check(logits: torch.Tensor, seen: torch.Tensor | None) -> tuple[int, int]:
    if logits.dim() != 2:
        raise ValueError(f"sampling: logits {tuple(logits.shape)} must be [batch, vocab]")
    if seen is not None and (seen.shape != logits.shape or seen.dtype != torch.bool):
        raise ValueError(f"sampling: seen must be a bool mask shaped like logits {tuple(logits.shape)}")
    return logits.shape[0], logits.shape[1]


def seen_mask(ids: torch.Tensor, vocab: int) -> torch.Tensor:
    """[B, N] token ids -> [B, vocab] bool mask of the ids each row has seen (duplicates once)."""
    mask = torch.zeros((ids.shape[0], vocab), dtype=torch.bool, device=ids.device)
    if ids.numel():
        mask.scatter_(1, ids.long(), True)
    return mask


def _draw(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw per row; a zero-probability entry is never picked (right-side search)."""
    cdf = probs.cumsum(dim=-1)
    target = (uniform * cdf[:, -1]).unsqueeze(1)
    return torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)


def candidates(
    x: torch.Tensor, lse: torch.Tensor, top_k: int, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate ids [B, M], most probable first, and their probabilities, zeroed where cut.

    x are processed logits [B, V] and lse their log-sum-exp. Probabilities are normalised over
    the whole vocabulary, or over the top-k survivors when top_k > 0 (as HF's top-p sees them);
    `_draw` renormalises over what is kept.
    """
    vocab = x.shape[1]
    if top_k > 0:
        values, ids = torch.topk(x, min(top_k, vocab), dim=-1)
        # HF's top-p runs on the softmax of the top-k survivors only.
        probs = torch.softmax(values, dim=-1)
    else:
        values, ids = torch.topk(x, min(_TOP_P_CANDIDATES, vocab), dim=-1)
        probs = torch.exp(values - lse[:, None])
        if ids.shape[1] < vocab and top_p < 1.0 and bool((probs.sum(-1) < top_p).any()):
            values, ids = torch.sort(x, dim=-1, descending=True)
            probs = torch.exp(values - lse[:, None])
    if top_p < 1.0:
        # Keep a token while the mass strictly above it is below top_p (HF: drop where the
        # ascending cumulative mass <= 1 - top_p); the most probable token always stays.
        above = probs.cumsum(dim=-1) - probs
        keep = above < top_p
        keep[:, 0] = True
        probs = probs * keep
    return ids, probs


def sample_processed(
    x: torch.Tensor, lse: torch.Tensor, config: SamplingConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """Draw one token per row from processed logits x [B, V] (fp32) with their log-sum-exp."""
    uniform = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=torch.float32)
    if config.top_k > 0 or config.top_p < 1.0:
        ids, probs = candidates(x, lse, config.top_k, config.top_p)
        return ids.gather(1, _draw(probs, uniform).unsqueeze(1)).squeeze(1)
    return _draw(torch.exp(x - lse[:, None]), uniform)


def greedy(logits: torch.Tensor, seen: torch.Tensor | None = None, penalty: float = 1.0) -> torch.Tensor:
    """argmax of the penalised logits per row (HF greedy: the penalty applies, temperature not).

    On CPU this skips the log-sum-exp that only sampling needs (17 us of a ~200 us step of a
    2-layer model); on CUDA it is the fused pass without writing the processed row.
    """
    if use_triton(logits, seen):
        return logits_pass_triton(logits, seen, penalty, store=False)[2]
    _check(logits, seen)
    if seen is None or penalty == 1.0:
        return logits.argmax(dim=-1)
    return _penalise(logits.to(torch.float32), seen, penalty).argmax(dim=-1)


def sample(
    logits: torch.Tensor,
    config: SamplingConfig,
    seen: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next token per row [B] from logits [B, V] under `config` (greedy when not do_sample)."""
    if not config.do_sample:
        return greedy(logits, seen, config.repetition_penalty)
    x, lse, _ = logits_pass(logits, seen, config.repetition_penalty, config.temperature)
    return sample_processed(x, lse, config, generator)
