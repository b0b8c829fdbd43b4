"""Translator node: a decoder-only Qwen2 LM over the UniSS token scheme (DESIGN §1, §5, §6).

It executes `GenerationRequest`s built by the CoT prompter (port `request` -> `result`), so the
same node serves S2ST in every mode and the cascade's MT and TTS steps. Three ways to build one:
- from a config (`lm` sizes): a from-scratch model with dragoman's character vocabulary
  (`UnitTokenizer`, stored in the config) — the shipped default;
- `init_from: DIR`: start from a local HF causal-LM checkpoint (e.g. Qwen2.5-0.5B-Instruct): its
  tokenizer gains the UniSS tokens (non-special, so decoding keeps them) and the new embedding
  rows start at the mean of the existing rows — random rows would put the new tokens' logits
  far off the text distribution;
- `weights: DIR` in a graph: a ready UniSS-layout directory (the released model), loaded in fp32
  on CPU (UNISS_RELEASE item 2: bf16 greedy output diverges from the reference) and bf16 on GPU.

Training (phases 1-3) reads packed batches from `dragoman.nodes.translator_data`: several
sequences share a row, attention is block-diagonal (no attention across samples) and the loss
covers target tokens only.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any, Optional

import torch

from dragoman.nodes import types as T
from dragoman.nodes.attention_guide import AlignLossConfig, AttentionCapture, batch_spans
from dragoman.nodes.errors import CheckpointError, DragomanError
from dragoman.nodes.generation import ControlledDecoder
from dragoman.nodes.text_tokenizer import HFTokenizer, UnitTokenizer
from dragoman.nodes.trainable import TrainableNode


@dataclasses.dataclass
class LMConfig:
    hidden_size: int = 256
    intermediate_size: int = 704
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True


@dataclasses.dataclass
class TokenCounts:
    num_global: int = 4096
    num_semantic: int = 1024
    num_glm: int = 1024
    num_emotion: int = 1000


@dataclasses.dataclass
class TranslatorDataConfig:
    cache: str = "???"                 # token cache written by translator_data.build_cache
    split: str = "train"
    phase: int = 1
    hq_only: bool = False
    max_tokens_per_row: int = 1024
    rows_per_batch: int = 8
    tasks_per_pair: int = 1            # sequences drawn per pair direction and epoch
    text_pairs: Optional[str] = None   # text manifest (`dragoman data text`) for extra MT sequences
    text_mt_per_epoch: int = 0         # MT sequences drawn from text_pairs per epoch
    tasks: Optional[list[str]] = None  # restrict the phase's tasks (e.g. [tts]); None: all of them
    interleave: bool = False           # TranslatorConfig.interleave_text / interleave_units, set by
    interleave_units: str = "chars"    # prepare_training_config
    tempo_share: float = 0.0           # share of speaking sequences re-timed (translator_data.retimed)
    tempo_range: list[float] = dataclasses.field(default_factory=lambda: [0.6, 1.7])
    shuffle: bool = True
    seed: int = 0
    defer_setup: bool = True           # loaders need the tokenizer, which exists only after ModelPT.__init__


@dataclasses.dataclass
class TranslatorConfig:
    lm: LMConfig = dataclasses.field(default_factory=LMConfig)
    tokens: TokenCounts = dataclasses.field(default_factory=TokenCounts)
    text_chars: list[str] = dataclasses.field(default_factory=list)
    # FSQ levels of each codebook ({glm, semantic, global, emotion}: levels): a fresh model starts
    # those embedding rows at a projection of the code's grid coordinates (see code_rows.py).
    code_levels: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    init_from: Optional[str] = None
    hf_dir: Optional[str] = None
    dtype: str = "auto"                # auto: fp32; graphs ask for bfloat16 when the node runs on CUDA
    optim: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01})
    train_ds: Optional[TranslatorDataConfig] = None
    validation_ds: Optional[TranslatorDataConfig] = None
    # Guided attention between speech and the text it says (attention_guide.py); training only.
    align_loss: AlignLossConfig = dataclasses.field(default_factory=AlignLossConfig)
    # Share of speech-history tokens replaced by the model's own draws in training (`_own_history`).
    scheduled_sampling: float = 0.0
    # Codebooks retrained since the translator that `init_from` starts from (load_weights_from):
    # their rows start fresh although the token names match. A size change implies it.
    fresh_codebooks: list[str] = dataclasses.field(default_factory=list)
    # Speech that says a text carries the text's units between its tokens, each word / Han
    # character before its speech (speech_units.py); the decode loop copies the units in.
    interleave_text: bool = False
    interleave_units: str = "chars"    # or "phones": espeak-ng phonemes of each unit, from `phones`
    phones: list[str] = dataclasses.field(default_factory=list)


class Translator(TrainableNode):
    node_name = "translator"
    Config = TranslatorConfig

    def __init__(self, cfg=None, trainer=None):
        super().__init__(cfg, trainer)
        c = self.cfg
        if c.hf_dir:
            self.lm, self.tokenizer = _load_hf_dir(c.hf_dir, c.dtype)
        elif c.init_from:
            self.lm, self.tokenizer = _extend_hf_model(c.init_from, c.tokens)
        else:
            if not c.text_chars:
                raise DragomanError("translator: text_chars is empty (build it from the corpus text, see translator_data)")
            t = c.tokens
            self.tokenizer = UnitTokenizer(list(c.text_chars), t.num_global, t.num_semantic, t.num_glm, t.num_emotion,
                                           phones=list(c.phones) if c.interleave_text and c.interleave_units == "phones" else ())
            self.lm = _fresh_qwen2(c.lm, len(self.tokenizer), self.tokenizer.pad_id, self.tokenizer.eos_id)
            if c.code_levels:
                from dragoman.nodes.code_rows import init_code_rows

                init_code_rows(self.lm.get_input_embeddings().weight, self.tokenizer, dict(c.code_levels), dict(t))
        self._decoder: ControlledDecoder | None = None

    @classmethod
    def port_types(cls, cfg):
        return {"request": T.generation_request()}, {"result": T.generation_result()}

    @classmethod
    def fsdp_wrap_modules(cls) -> set[type]:
        """Layers that `trainer.strategy=fsdp` shards one unit each (dragoman.nodes.distributed)."""
        from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

        return {Qwen2DecoderLayer}

    @classmethod
    def prepare_training_config(cls, cfg):
        """Fill the vocabulary (characters, codebook sizes) from the token cache unless the model
        starts from an HF directory, and set every data split's phase. A later phase that
        fine-tunes the previous phase's .nemo (top-level init_from) gets the same vocabulary."""
        from omegaconf import open_dict

        from dragoman.nodes.translator_data import load_cache, load_text_pairs, read_once

        with open_dict(cfg):
            for key in ("train_ds", "validation_ds"):
                if cfg.model.get(key) is not None:
                    cfg.model[key].phase = int(cfg.phase)
                    cfg.model[key].hq_only = int(cfg.phase) >= 3 and key == "train_ds"
                    cfg.model[key].interleave = bool(cfg.model.get("interleave_text", False))
                    cfg.model[key].interleave_units = str(cfg.model.get("interleave_units", "chars"))
            if not cfg.model.get("init_from") and not cfg.model.get("hf_dir"):  # HF vocabularies come from their dir
                cache = read_once(load_cache, cfg.model.train_ds.cache)  # the train loader reuses both reads
                chars = set(cache["text_chars"])
                if cfg.model.train_ds.get("text_pairs") and cfg.model.train_ds.get("text_mt_per_epoch"):
                    chars |= {c for pair in read_once(load_text_pairs, cfg.model.train_ds.text_pairs) for c in pair[0]["text"]}
                cfg.model.text_chars = sorted(chars)
                cfg.model.tokens = dict(cache["token_counts"])
                if cfg.model.get("interleave_text") and cfg.model.get("interleave_units") == "phones":
                    if not cache.get("phones"):
                        raise DragomanError(f"{cfg.model.train_ds.cache}: no phoneme inventory; run "
                                            "`python examples/train_translator.py stage=align` on it")
                    cfg.model.phones = list(cache["phones"])
                from dragoman.nodes.code_rows import levels_fitting

                cfg.model.code_levels = levels_fitting(dict(cfg.model.get("code_levels") or {}), cfg.model.tokens)
        return cfg

    @classmethod
    def from_graph_spec(cls, spec, where: str, device: str | None = None):
        if spec.weights:
            # bf16 only when the node will run on CUDA; fp32 on CPU (UNISS_RELEASE item 2).
            dtype = "bfloat16" if device and str(device).startswith("cuda") else "float32"
            node = _construct(cls, {"hf_dir": str(spec.weights), "dtype": dtype, **dict(spec.config or {})})
            return node.to(device) if device else node
        return super().from_graph_spec(spec, where, device)

    # -- inference ---------------------------------------------------------------------------
    def infer(self, request):
        if self._decoder is None or self._decoder.static.device != self.device:
            spoken = bool(self.cfg.get("interleave_text"))
            self._decoder = ControlledDecoder(self.lm, self.tokenizer, allowed_ids=self.writable_ids(),
                                              semantic_ids=self.semantic_ids() if spoken else None, units_ids=self.units_ids)
        return {"result": [self._decoder.run(r) for r in request]}

    def train(self, mode: bool = True):
        self._decoder = None  # weights change under training: rebuild the static view afterwards
        return super().train(mode)

    # -- training ----------------------------------------------------------------------------
    def load_weights_from(self, source: "Translator") -> None:
        """`init_from` another translator, also one with another vocabulary, e.g. after the semantic
        tokenizer was retrained with another codebook: every layer is copied, and each token's
        embedding (and output) row comes from the source's row of the token with the same name.
        Tokens the source lacks, and every code of a codebook that changed size or is listed in
        `fresh_codebooks`, keep their fresh start (grid rows, code_rows.py). All other shapes
        must match."""
        from dragoman.nodes.code_rows import CODEBOOKS

        named = list(self.cfg.get("fresh_codebooks") or [])
        if set(named) - set(CODEBOOKS):
            raise DragomanError(f"translator: fresh_codebooks names unknown codebooks {sorted(set(named) - set(CODEBOOKS))} "
                                f"(known: {sorted(CODEBOOKS)})")
        mine, theirs = getattr(self.tokenizer, "itos", None), getattr(source.tokenizer, "itos", None)
        if mine is None or theirs is None or (mine == theirs and not named):
            return super().load_weights_from(source)
        # A codebook whose size changed (or that is named in fresh_codebooks) belongs to a
        # retrained tokenizer: its code k means something else now, whatever the token's name.
        fresh = set(named) | {name for name, (key, _) in CODEBOOKS.items()
                              if int(self.cfg.tokens[key]) != int(source.cfg.tokens[key])}
        renamed = {CODEBOOKS[name][1](k) for name in fresh for k in range(int(self.cfg.tokens[CODEBOOKS[name][0]]))}
        index = {name: i for i, name in enumerate(theirs)}
        shared = [(i, index[name]) for i, name in enumerate(mine) if name in index and name not in renamed]
        dst, src = (torch.tensor(side) for side in zip(*shared))
        state, other = self.lm.state_dict(), source.lm.state_dict()  # views of the parameters
        rows = {self.lm.get_input_embeddings().weight.data_ptr(), self.lm.get_output_embeddings().weight.data_ptr()}
        with torch.no_grad():
            for key, value in state.items():
                if key not in other:
                    raise CheckpointError(f"init_from: the source translator has no {key}")
                by_row = value.data_ptr() in rows
                if value.shape[by_row:] != other[key].shape[by_row:]:
                    raise CheckpointError(f"init_from: {key} is {tuple(other[key].shape)} in the source translator, "
                                          f"{tuple(value.shape)} here (only the vocabulary may differ)")
                if by_row:
                    value[dst] = other[key][src].to(value.dtype)
                else:
                    value.copy_(other[key])
        logging.info("init_from: %d of %d token rows copied by name; %d keep their fresh rows (new codebooks: %s)",
                     len(shared), len(mine), len(mine) - len(shared), sorted(fresh) or "none")

    def make_dataloader(self, cfg, train: bool):
        from dragoman.nodes.translator_data import packed_loader

        return packed_loader(cfg, self.tokenizer, train=train)

    def train_dataloader(self):
        # Resample tasks and re-pack each epoch (trainer.reload_dataloaders_every_n_epochs=1).
        if self._train_dl is None or (self._trainer is not None and self.current_epoch > 0):
            from dragoman.nodes.translator_data import packed_loader

            self._train_dl = packed_loader(self.cfg.train_ds, self.tokenizer, train=True, epoch=self.current_epoch)
        return self._train_dl

    def units_ids(self, units: list[str]) -> list[list[int]]:
        """How an interleaved speech section writes the units of its text (speech_units.py)."""
        from dragoman.nodes.speech_units import units_phones, written_units

        phones = self.cfg.get("interleave_units", "chars") == "phones"
        return written_units(self.tokenizer, units, units_phones(units) if phones else None)

    def codebooks(self) -> dict[str, int]:
        """Token kinds this node writes and their codebook sizes (checked across a graph)."""
        if isinstance(self.tokenizer, UnitTokenizer):
            return {"semantic": int(self.cfg.tokens.num_semantic)}
        names = self.tokenizer.tok.get_vocab()  # an HF vocabulary, e.g. the release's 8,192 codes
        return {"semantic": sum(1 for name in names if name.startswith("<|bicodec_semantic_"))}

    def semantic_ids(self) -> set[int]:
        """Ids of the semantic tokens (what an interleaved speech section keeps as speech)."""
        from dragoman.nodes import uniss_tokens as U

        names = [U.semantic_token(n) for n in range(int(self.cfg.tokens.num_semantic))]
        return set(self.tokenizer.convert_tokens_to_ids(names))

    def writable_ids(self) -> torch.Tensor | None:
        """Ids the model may write: text, control, semantic, speed and end tokens (default
        vocabulary only). Speaker, content and emotion tokens appear only in prompts, so training
        and decoding score just these rows of the output layer: with the default vocabulary of
        ~11k tokens, ~1.7k are writable and a training step ran ~3x faster at 2k output rows than
        at 11k (measured on this machine's 2 cores, hidden 256, 4 layers)."""
        if not isinstance(self.tokenizer, UnitTokenizer):
            return None
        if getattr(self, "_writable", None) is None:
            self._writable = torch.tensor(self.tokenizer.writable_ids(), dtype=torch.long)
        return self._writable

    def forward(self, input_ids, position_ids, segment_ids):
        """Logits over the writable ids (all ids for HF vocabularies): [B, T, n_writable]."""
        mask = block_causal_mask(segment_ids)
        hidden = self.lm.model(input_ids=input_ids, position_ids=position_ids, attention_mask=mask).last_hidden_state
        rows = self.writable_ids()
        weight = self.lm.lm_head.weight if rows is None else self.lm.lm_head.weight[rows.to(hidden.device)]
        return hidden @ weight.T

    def _own_history(self, batch) -> dict:
        """Parallel scheduled sampling (Duckworth et al. 2019, arXiv 1906.04331) on speech: a share
        `scheduled_sampling` of the semantic tokens in a batch's speech spans is replaced, as
        input only, by what the model itself draws at that position (one extra no-grad pass,
        temperature 0.7 as at inference); the targets stay the true tokens. Why: teacher-forced,
        the committed model's one-step predictions decode to intelligible speech (recogniser CER
        0.24 on 20 en test lines, 0.14 for the true tokens: examples/tts_token_ceiling.py), while
        free-running it drifts (0.75, examples/measure_tts.py): it never saw its own near-miss
        codes in its history."""
        prob = float(self.cfg.get("scheduled_sampling") or 0.0)
        spans = batch.get("align")
        if prob <= 0 or spans is None or not batch_spans(spans):
            return batch
        ids = batch["input_ids"]
        with torch.no_grad():
            logits = self(ids, batch["position_ids"], batch["segment_ids"]).float() / 0.7
            drawn = torch.distributions.Categorical(logits=logits).sample()
            rows = self.writable_ids()
            drawn = rows.to(ids.device)[drawn] if rows is not None else drawn
        own = torch.roll(drawn, 1, dims=1)  # what the model wrote for position p, drawn at p - 1
        speech = torch.zeros_like(ids, dtype=torch.bool)
        for b, _, _, s0, s1 in batch_spans(spans):
            speech[b, s0:s1] = True
        replace = speech & (torch.rand(ids.shape, device=ids.device) < prob) & self._semantic_mask(ids.device)[own]
        return {**batch, "input_ids": torch.where(replace, own, ids)}

    def _semantic_mask(self, device) -> torch.Tensor:
        if getattr(self, "_is_semantic", None) is None:
            from dragoman.nodes import uniss_tokens as U

            names = [U.semantic_token(i) for i in range(int(self.cfg.tokens.num_semantic))]
            mask = torch.zeros(len(self.tokenizer), dtype=torch.bool)
            mask[torch.tensor([i for i in self.tokenizer.convert_tokens_to_ids(names) if i is not None])] = True
            self._is_semantic = mask
        return self._is_semantic.to(device)

    def _loss(self, batch):
        """(token cross-entropy, token accuracy, guided-attention loss or None). The attention
        guide is trained when its weight > 0 and measured in every validation batch with spans
        (how diagonal the guided heads are, even in a model trained without it); a training step
        without it skips the extra work (3 % of a step, `examples/bench_attention_guide.py`)."""
        wanted = not self.training or float(self.cfg.align_loss.weight) > 0
        capture = AttentionCapture(self.lm, self.cfg.align_loss) if ("align" in batch and wanted) else None
        with capture.capturing(batch["align"]) if capture else contextlib.nullcontext():
            logits = self(batch["input_ids"], batch["position_ids"], batch["segment_ids"])
        align = capture.loss() if capture else None
        labels = batch["labels"][:, 1:]
        rows = self.writable_ids()
        if rows is not None:  # full-vocabulary ids -> positions among the writable rows
            lookup = torch.full((len(self.tokenizer),), -100, dtype=torch.long, device=labels.device)
            lookup[rows.to(labels.device)] = torch.arange(len(rows), device=labels.device)
            labels = torch.where(labels >= 0, lookup[labels.clamp_min(0)], labels)
        flat = logits[:, :-1].reshape(-1, logits.shape[-1])
        loss = torch.nn.functional.cross_entropy(flat.float(), labels.reshape(-1), ignore_index=-100)
        correct = (flat.argmax(-1) == labels.reshape(-1)) & (labels.reshape(-1) != -100)
        acc = correct.sum() / (labels != -100).sum().clamp_min(1)
        return loss, acc, align

    def training_step(self, batch, batch_idx):
        loss, acc, align = self._loss(self._own_history(batch))
        n = int((batch["labels"] != -100).sum())
        logs = {"train_loss": loss, "train_acc": acc}
        if align is not None:
            logs["train_align"] = align
            weight = float(self.cfg.align_loss.weight)
            if weight > 0:
                logs["train_total"] = loss = loss + weight * align
        self.log_dict(logs, prog_bar=True, batch_size=n)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, acc, align = self._loss(batch)
        n = int((batch["labels"] != -100).sum())
        logs = {"val_loss": loss, "val_acc": acc}
        if align is not None:
            logs["val_align"] = align
        self.log_dict(logs, prog_bar=True, batch_size=n, sync_dist=True)
        return loss


def _construct(cls, cfg: dict):
    """Build outside any frame that calls super(): Lightning's save_hyperparameters walks the
    caller frames looking for `__init__` arguments and mistakes such a classmethod for one."""
    return cls(cfg)


def block_causal_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] segment ids (-1 = padding) -> [B, 1, T, T] bool mask: a token sees earlier tokens of
    its own sequence only, so packed samples never attend to each other. Padding rows see
    themselves (an all-False row would make softmax NaN)."""
    same = segment_ids.unsqueeze(2) == segment_ids.unsqueeze(1)
    length = segment_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segment_ids.device).tril()
    mask = same & causal & (segment_ids.unsqueeze(2) >= 0)
    mask |= torch.eye(length, dtype=torch.bool, device=segment_ids.device)
    return mask.unsqueeze(1)


def _fresh_qwen2(cfg, vocab_size: int, pad_id: int, eos_id: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=vocab_size, pad_token_id=pad_id, eos_token_id=eos_id, bos_token_id=eos_id,
                         attn_implementation="sdpa", **dict(cfg))
    return Qwen2ForCausalLM(config)


def _model_dtype(dtype: str):
    if dtype == "auto":  # the node is built on CPU; graphs pass an explicit dtype for CUDA
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def _load_hf_dir(path: str, dtype: str):
    from transformers import AutoConfig, Qwen2ForCausalLM

    root = Path(path)
    for name in ("config.json", "tokenizer.json"):
        if not (root / name).is_file():
            raise CheckpointError(f"{root}: missing {name} (expected an HF causal-LM directory)")
    if not list(root.glob("*.safetensors")):
        raise CheckpointError(f"{root}: no *.safetensors weights (pickled .bin weights are not loaded)")
    config = AutoConfig.from_pretrained(root, trust_remote_code=False)
    if config.model_type != "qwen2":
        raise CheckpointError(f"{root}: model_type {config.model_type!r}; the translator runs Qwen2-architecture models")
    lm = Qwen2ForCausalLM.from_pretrained(root, dtype=_model_dtype(dtype), use_safetensors=True)
    tokenizer = HFTokenizer.from_dir(str(root))
    if len(tokenizer) > lm.config.vocab_size:
        raise CheckpointError(f"{root}: tokenizer has {len(tokenizer)} tokens but the model only {lm.config.vocab_size}")
    return lm, tokenizer


def _extend_hf_model(path: str, counts):
    """Load a local HF Qwen2 checkpoint and add the UniSS (+ emotion) tokens to it."""
    from transformers import AddedToken

    from dragoman.nodes import uniss_tokens as U

    lm, tokenizer = _load_hf_dir(path, "float32")
    names = U.CONTROL_TOKENS + U.speech_token_names(counts.num_global, counts.num_semantic, counts.num_glm, counts.num_emotion)
    new = [n for n in names if n not in tokenizer.tok.get_vocab()]
    tokenizer.tok.add_tokens([AddedToken(n, special=False, normalized=False) for n in new])
    old = lm.get_input_embeddings().weight.shape[0]
    lm.resize_token_embeddings(len(tokenizer.tok), mean_resizing=False)
    with torch.no_grad():
        emb = lm.get_input_embeddings().weight
        emb[old:] = emb[:old].mean(dim=0, keepdim=True)
        head = lm.get_output_embeddings()
        if head is not None and head.weight.data_ptr() != emb.data_ptr():
            head.weight[old:] = head.weight[:old].mean(dim=0, keepdim=True)
    return lm, HFTokenizer(tokenizer.tok)
