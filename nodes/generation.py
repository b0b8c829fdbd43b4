"""Generation requests and the controlled decode loop that executes them.

A `GenerationRequest` is what the CoT prompter hands the Translator: the prompt as token names,
continuations to force when the model writes a given token (quality mode's translation header
after the transcript's `<|end_content|>`), a token budget, and the sampling settings. The loop
runs on `dragoman.kernels`' static KV cache (`StaticQwen2`: Triton on GPU, torch on CPU) so
forced tokens are simply fed through the cache like sampled ones.

Safety rules applied here (DESIGN §5, issue 7): a budget proportional to the source length set by
the prompter; a repetition guard that stops a degenerate loop (early checkpoints collapse into
repeated tokens — DESIGN §6) and reports it; eos ids from the tokenizer.
"""
from __future__ import annotations

import dataclasses

import torch

from dragoman.nodes.errors import DragomanError


@dataclasses.dataclass
class Sampling:
    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 0
    repetition_penalty: float = 1.1
    seed: int = 0


@dataclasses.dataclass
class GenerationRequest:
    prompt: list[str]                              # token names (UniSS scheme) — see uniss_tokens
    max_new_tokens: int
    sampling: Sampling = dataclasses.field(default_factory=Sampling)
    force_after: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # once per trigger
    prompt_text: str = ""                          # plain text after `prompt`, encoded by the translator's tokenizer
    prompt_suffix: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class GenerationResult:
    text: str               # decoded output: special tokens dropped, UniSS tokens kept
    ids: list[int]
    stopped_by: str         # "eos", "budget" or "repetition"
    prompt_tokens: int


def repetition_stop(ids: list[int], max_period: int = 8, min_span: int = 120) -> bool:
    """True when the last `min_span` tokens are one short pattern (period <= max_period) repeated.
    120 tokens = 2.4 s of 50 Hz speech: a real pause is shorter than that in this corpus, while a
    collapsed decoder repeats forever."""
    if len(ids) < min_span:
        return False
    tail = ids[-min_span:]
    for period in range(1, max_period + 1):
        if all(tail[i] == tail[i - period] for i in range(period, min_span)):
            return True
    return False


class ControlledDecoder:
    """Runs GenerationRequests for one `Qwen2ForCausalLM` + tokenizer (batch 1 per request)."""

    def __init__(self, lm: torch.nn.Module, tokenizer, allowed_ids: torch.Tensor | None = None,
                 semantic_ids: set[int] | None = None, units_ids=None):
        from dragoman.kernels.qwen2_forward import StaticQwen2

        from dragoman.nodes import uniss_tokens as U

        # Ids outside `allowed_ids` are never sampled (the translator only trained those rows), so
        # the output layer computes just those rows and the loop samples a row: `self.rows[row]`
        # is its id (None: every id is a row). Same draws as masking the rest to -inf, ~2x
        # faster steps for the default model (README "Kernels and decoding").
        self.rows = None if allowed_ids is None else torch.unique(allowed_ids.long())
        self.static = StaticQwen2(lm, output_ids=self.rows)
        if self.rows is not None:
            self.rows = self.rows.to(self.static.device)
            self.row_of = torch.full((int(lm.lm_head.weight.shape[0]),), -1, dtype=torch.long, device=self.static.device)
            self.row_of[self.rows] = torch.arange(len(self.rows), device=self.static.device)
        self.tokenizer = tokenizer
        # With `semantic_ids` the model interleaves its text with its speech (speech_units.py):
        # inside a speech section the loop copies the next unit of that text into place, written
        # as `units_ids(units)` gives them (their characters by default, or their phonemes).
        self.semantic_ids = semantic_ids
        self.units_ids = units_ids or (lambda units: [tokenizer.encode_text(u) for u in units])
        if semantic_ids is not None:
            self.not_speech = ~self._in_rows(sorted(semantic_ids))
            self.marks = dict(zip(("start_content", "end_content", "start_semantic", "end_semantic", "im_end"),
                                  self._ids([U.START_CONTENT, U.END_CONTENT, U.START_SEMANTIC, U.END_SEMANTIC, U.IM_END])))

    def _in_rows(self, ids) -> torch.Tensor:
        """[rows] bool: True at the rows of `ids` (ids without a row are left out)."""
        mask = torch.zeros(self.static.vocab_size, dtype=torch.bool, device=self.static.device)
        mask[self._to_rows(torch.as_tensor(ids, dtype=torch.long, device=self.static.device))] = True
        return mask

    def _to_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `ids` [N], those without a row dropped."""
        if self.rows is None:
            return ids
        rows = self.row_of[ids]
        return rows[rows >= 0]

    def _ids(self, names: list[str]) -> list[int]:
        ids = self.tokenizer.convert_tokens_to_ids(list(names))
        unknown = [n for n, i in zip(names, ids) if i is None or i == getattr(self.tokenizer, "unk_id", -1)]
        if unknown:
            raise DragomanError(f"translator vocabulary lacks token(s) {sorted(set(unknown))[:5]}")
        return ids

    def _spoken_text(self, ids: list[int]):
        """The `SpokenText` of a speech section that starts after `ids`: the units of the text
        between the last `<|start_content|>` and its `<|end_content|>`."""
        from dragoman.nodes.speech_units import SpokenText, split_units

        m = self.marks
        start = max((i for i, t in enumerate(ids) if t == m["start_content"]), default=-1) + 1
        end = next((i for i in range(start, len(ids)) if ids[i] == m["end_content"]), start)
        units = split_units(self.tokenizer.decode(ids[start:end]))
        return SpokenText(self.units_ids(units), self.semantic_ids,
                          [m["end_semantic"], m["im_end"]])

    @torch.inference_mode()
    def run(self, request: GenerationRequest) -> GenerationResult:
        from dragoman.kernels.sampling import SamplingConfig, sample

        s = request.sampling
        config = SamplingConfig(do_sample=s.do_sample, temperature=s.temperature, top_p=s.top_p,
                                top_k=s.top_k, repetition_penalty=s.repetition_penalty)
        prompt = self._ids(request.prompt) + self.tokenizer.encode_text(request.prompt_text) + self._ids(request.prompt_suffix)
        forced = {self._ids([k])[0]: self._ids(v) for k, v in request.force_after.items()}
        device = self.static.device
        capacity = len(prompt) + request.max_new_tokens + sum(len(v) for v in forced.values()) + 1
        if self.semantic_ids is not None:  # the spoken text's copies: at most the prompt's or the output's text
            capacity += len(prompt) + request.max_new_tokens
        self.static.allocate(1, -(-capacity // 256) * 256)
        input_ids = torch.tensor([prompt], dtype=torch.long, device=device)
        generator = torch.Generator(device=device).manual_seed(int(s.seed))
        eos = set(self.tokenizer.eos_ids)
        logits = self.static.prefill(input_ids)
        seen = None
        if s.repetition_penalty != 1.0:
            seen = self._in_rows(prompt)[None]
        out: list[int] = []
        queue: list[int] = []
        speaking = None
        if self.semantic_ids is not None and prompt[-1] == self.marks["start_semantic"]:  # the TTS task
            speaking = self._spoken_text(prompt)
            queue = speaking.start()
        stopped = "budget"
        sampled = 0
        while sampled < request.max_new_tokens:
            if queue:
                run, queue = queue, []
            else:
                if speaking is not None and speaking.needs_speech:
                    logits = logits.masked_fill(self.not_speech, float("-inf"))
                row = sample(logits, config, seen, generator)[0]
                token = int(row if self.rows is None else self.rows[row])
                sampled += 1
                if speaking is not None:
                    run = speaking.replace(token)
                else:
                    run = [token] + forced.pop(token, [])
            if any(t in eos for t in run):
                run = run[:next(i for i, t in enumerate(run) if t in eos) + 1]
            at = len(out)
            out += run
            if seen is not None:
                seen[0, self._to_rows(torch.tensor(run, dtype=torch.long, device=device))] = True
            if out[-1] in eos:
                stopped = "eos"
                break
            if self.semantic_ids is not None and speaking is None and self.marks["start_semantic"] in run:
                speaking = self._spoken_text(prompt + out)
                queue = speaking.start()
            if repetition_stop(out):
                stopped = "repetition"
                break
            # A forced run (a unit of spoken text, quality mode's header) goes through the model in
            # one call, not one step per token.
            logits = self.static.extend(torch.tensor([run], dtype=torch.long, device=device), len(prompt) + at)
        return GenerationResult(self.tokenizer.decode(out), out, stopped, len(prompt))
