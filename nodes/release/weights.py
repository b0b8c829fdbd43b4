"""Reading the released weight files into dragoman's modules.

- safetensors subsets by key prefix (each node reads only its part of BiCodec's file);
- the wav2vec2 pickle `pytorch_model.bin` through `torch.load(weights_only=True)`: plain tensors
  only, no code runs (UNISS_RELEASE item 14);
- old-style weight norm: BiCodec's convolutions and wav2vec2's positional convolution are stored as
  `weight_g` / `weight_v` (items 11, 14). The effective weight `g * v / ||v||` (norm over every
  dimension except the one `g` keeps) is folded in at load time, exactly what the official loader's
  `remove_weight_norm()` leaves behind, so inference runs plain convolutions;
- strict loading with one-line errors naming missing, unexpected and mis-shaped tensors;
- `empty_init()`: networks built inside it allocate on the meta device and take the loaded
  tensors by assignment, so building the 315M-parameter wav2vec2 or Whisper stack costs no random
  initialisation and no second copy of the weights;
- the dtype rule: bf16 on CUDA, fp32 on CPU (`dtype: auto`).
"""
from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Iterable, Iterator

import torch

from dragoman.nodes.errors import CheckpointError

_EMPTY = contextvars.ContextVar("dragoman_release_empty_init", default=False)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@contextlib.contextmanager
def empty_init() -> Iterator[None]:
    """Within this block, `network_device()` puts new networks on the meta device."""
    token = _EMPTY.set(True)
    try:
        yield
    finally:
        _EMPTY.reset(token)


def network_device():
    """The context a node builds its large networks in: meta inside `empty_init()`, else the
    default device (random initialisation, for configs without weights)."""
    return torch.device("meta") if _EMPTY.get() else contextlib.nullcontext()


def pick_dtype(name: str, device: str | torch.device | None) -> torch.dtype:
    if name == "auto":
        on_cuda = device is not None and torch.device(device).type == "cuda"
        return torch.bfloat16 if on_cuda else torch.float32
    if name not in DTYPES:
        raise CheckpointError(f"dtype {name!r}: expected 'auto' or one of {sorted(DTYPES)}")
    return DTYPES[name]


def read_safetensors(path: Path, prefixes: Iterable[str]) -> dict[str, torch.Tensor]:
    """The tensors of `path` whose names start with one of `prefixes` (all when empty), on CPU."""
    from safetensors import SafetensorError, safe_open

    prefixes = tuple(prefixes)
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = [k for k in handle.keys() if not prefixes or k.startswith(prefixes)]
            return {k: handle.get_tensor(k) for k in names}
    except (SafetensorError, OSError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path}: cannot read safetensors ({first})") from None


def read_torch_pickle(path: Path) -> dict[str, torch.Tensor]:
    """A pickled state dict, refusing anything but tensors and plain containers."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle and zip errors come in many types; all mean "unusable file"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path}: cannot load as a plain tensor state dict ({first})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a flat state dict of tensors")
    return state


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def weight_norm_dim(g: torch.Tensor, v: torch.Tensor) -> int:
    """The dimension old-style weight norm kept: the one where `g` has `v`'s size (g is
    [out,1,1] for Conv1d, [in,1,1] for ConvTranspose1d, [1,1,k] for wav2vec2's dim-2 norm)."""
    if g.dim() != v.dim():
        raise ValueError(f"weight_g {tuple(g.shape)} and weight_v {tuple(v.shape)} differ in rank")
    kept = [d for d in range(v.dim()) if g.shape[d] == v.shape[d] and v.shape[d] != 1]
    others = [d for d in range(v.dim()) if g.shape[d] != 1 and d not in kept]
    if len(kept) > 1 or others:
        raise ValueError(f"weight_g {tuple(g.shape)} does not match weight_v {tuple(v.shape)}")
    if kept:
        return kept[0]
    return next(d for d in range(v.dim()) if v.shape[d] == 1)


def fold_weight_norm(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """Replace every `X.weight_g` / `X.weight_v` pair by `X.weight = g * v / ||v||` (in fp32, cast
    back to v's dtype)."""
    out = {k: v for k, v in state.items() if not k.endswith((".weight_g", ".weight_v"))}
    for key in sorted(k for k in state if k.endswith(".weight_g")):
        base = key[: -len("_g")]
        v_key = base + "_v"
        if v_key not in state:
            raise CheckpointError(f"{where}: {key} has no matching {v_key}")
        g, v = state[key].float(), state[v_key].float()
        try:
            dim = weight_norm_dim(g, v)
        except ValueError as err:
            raise CheckpointError(f"{where}: {base}: {err}") from None
        others = [d for d in range(v.dim()) if d != dim]
        norm = v.pow(2).sum(dim=others, keepdim=True).sqrt() if others else v.abs()
        out[base] = (v * (g / norm)).to(state[v_key].dtype)
    orphans = sorted(k for k in state if k.endswith(".weight_v") and k[: -len("_v")] + "_g" not in state)
    if orphans:
        raise CheckpointError(f"{where}: {orphans[0]} has no matching weight_g")
    return out


def _listed(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load every tensor of `module` from `state`, nothing missing, nothing left over, shapes
    equal. Modules built inside `empty_init()` take the tensors by assignment."""
    expected = module.state_dict(keep_vars=True)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        raise CheckpointError(f"{where}: missing {len(missing)} tensor(s): {_listed(missing)}")
    if unexpected:
        raise CheckpointError(f"{where}: {len(unexpected)} unexpected tensor(s): {_listed(unexpected)}")
    bad = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
           for k in sorted(expected) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if bad:
        raise CheckpointError(f"{where}: {len(bad)} tensor(s) of the wrong shape: {_listed(bad, 2)}")
    on_meta = any(t.is_meta for t in expected.values())
    # Assigned tensors keep the file's dtype: cast to the module's, as copying into it would.
    converted = {k: state[k].to(expected[k].dtype) for k in expected}
    module.load_state_dict(converted, strict=True, assign=on_meta)
    left = sorted(n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta)
    if left:
        raise CheckpointError(f"{where}: tensor(s) not provided by the file: {_listed(left)}")
