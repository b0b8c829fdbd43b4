"""Start a fresh Translator's codebook embedding rows from the codes' FSQ grid coordinates.

Why: the default translator learns 15,360 content-token rows, 1,000 semantic rows and 4,096
speaker rows from ~2 h of speech, where most codes occur a few dozen times. With independent
random rows, nothing tells the model that two codes in neighbouring FSQ cells sound alike, and it
learnt to ignore its input: after ~2,200 phase-2 steps, scoring the ASR target after another
utterance's content tokens cost only 0.05 nats/token more than after its own
(examples/translator_source_reliance.py, dev). FSQ (Mentzer et al. 2023) quantises each latent
dimension on a fixed grid, so a code's digits ARE its position in the encoder's latent space. A
fixed random projection of those coordinates gives neighbouring codes neighbouring rows from the
first step; training then refines every row freely (it is only an initialisation, and with tied
embeddings the output rows of semantic tokens start structured the same way).
"""
from __future__ import annotations

import math

import torch

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.modules.fsq import FSQ

# codebook name -> (token-count key of TokenCounts, token-name function)
CODEBOOKS = {
    "glm": ("num_glm", U.glm_token),
    "semantic": ("num_semantic", U.semantic_token),
    "global": ("num_global", U.global_token),
    "emotion": ("num_emotion", U.emotion_token),
}


def fsq_coordinates(levels: list[int]) -> torch.Tensor:
    """[prod(levels), len(levels)] grid coordinates of every code index, as the quantiser itself
    decodes them (`FSQ.indices_to_codes`)."""
    fsq = FSQ(levels)
    return fsq.indices_to_codes(torch.arange(fsq.codebook_size))


def _codes_expected(name: str, counts) -> tuple[str, int]:
    """(token-count key, vocabulary size) of codebook `name`; refuses unknown names."""
    if name not in CODEBOOKS:
        raise DragomanError(f"translator: code_levels names unknown codebook {name!r} (known: {sorted(CODEBOOKS)})")
    key = CODEBOOKS[name][0]
    return key, int(counts[key])


def levels_fitting(code_levels: dict, counts) -> dict:
    """The packaged config names the FSQ levels of the committed tokenizers; a cache built with
    other tokenizers (other codebook sizes) keeps random rows for those codebooks, and says so."""
    kept = {}
    for name, levels in code_levels.items():
        _, expected = _codes_expected(name, counts)
        if math.prod(levels) != expected:
            print(f"translator: code_levels.{name} {list(levels)} do not match this cache's {expected} codes; "
                  f"those rows start random")
            continue
        kept[name] = list(levels)
    return kept


@torch.no_grad()
def init_code_rows(weight: torch.Tensor, tokenizer, code_levels: dict, counts: dict, seed: int = 0) -> None:
    """Overwrite the embedding rows of each codebook named in `code_levels` in place. Each row is
    coords @ P with P Gaussian, scaled so a row's expected norm equals the rows around it."""
    generator = torch.Generator().manual_seed(seed)
    hidden = weight.shape[1]
    row_norm = float(weight.norm(dim=1).mean())
    for name, levels in code_levels.items():
        key, expected = _codes_expected(name, counts)
        levels = [int(v) for v in levels]
        if math.prod(levels) != expected:
            raise DragomanError(f"translator: code_levels.{name} {levels} give {math.prod(levels)} codes but the "
                                f"vocabulary has {counts[key]} ({key})")
        coords = fsq_coordinates(levels)
        projection = torch.randn(len(levels), hidden, generator=generator)
        rows = coords @ projection
        rows *= row_norm / rows.norm(dim=1).mean().clamp_min(1e-8)
        token = CODEBOOKS[name][1]
        ids = torch.tensor(tokenizer.convert_tokens_to_ids([token(k) for k in range(len(coords))]))
        if bool((ids == getattr(tokenizer, "unk_id", -1)).any()):
            raise DragomanError(f"translator: the vocabulary lacks some {name} tokens")
        weight[ids] = rows.to(weight.dtype)
