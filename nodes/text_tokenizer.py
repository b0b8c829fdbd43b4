"""Tokenizers for the Translator, behind one small interface.

- `UnitTokenizer`: the default model's vocabulary — a few reserved tokens, one token per text
  character (Han characters, letters, digits, punctuation, space), the UniSS control tokens, then
  the speech tokens in the released order (global, semantic, glm, speed) and dragoman's emotion
  tokens (and, for phoneme-interleaved speech, `<|phone_X|>` tokens). Built from a character
  list stored in the node config, so a `.nemo` is self-contained.
  Character units suit a tiny model trained on a few hours of speech: no unknown words, and
  Chinese is character-based anyway.
- `HFTokenizer`: wraps a `transformers` tokenizer (the released UniSS / any local HF model).

Both decode the way the released inference does (UNISS_RELEASE item 5): special tokens
(`<|im_end|>`, `<|endoftext|>`) vanish, UniSS's added tokens stay in the text for the parser.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.speech_units import phone_token

RESERVED = ["<|endoftext|>", U.IM_END, "<unk>"]
_NAME_RE = re.compile(r"<\|[^|>]+\|>")


class UnitTokenizer:
    def __init__(self, chars: Sequence[str], num_global: int, num_semantic: int, num_glm: int, num_emotion: int = 0,
                 phones: Sequence[str] = ()):
        chars = [c for c in dict.fromkeys(chars) if c not in ("", "\n")]
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise DragomanError(f"text vocabulary entries must be single characters, got {bad[:5]}")
        self.chars = chars
        self.phone_names = [phone_token(p) for p in dict.fromkeys(phones)]  # interleaved speech (speech_units.py)
        names = [*RESERVED, *chars, *U.CONTROL_TOKENS,
                 *U.speech_token_names(num_global, num_semantic, num_glm, num_emotion), *self.phone_names]
        self.itos = names
        self.stoi = {name: i for i, name in enumerate(names)}
        self.special_ids = {self.stoi[t] for t in RESERVED}
        self.pad_id, self.eos_id, self.unk_id = (self.stoi[t] for t in RESERVED)
        self.eos_ids = [self.eos_id]

    def __len__(self) -> int:
        return len(self.itos)

    def writable_ids(self) -> list[int]:
        """Ids a translator writes: end, text characters, control, semantic, speed and phone tokens."""
        keep = [self.eos_id] + [self.stoi[c] for c in self.chars] + [self.stoi[t] for t in U.CONTROL_TOKENS]
        keep += [self.stoi[t] for t in self.phone_names]
        keep += [i for i, name in enumerate(self.itos) if name.startswith(("<|bicodec_semantic_", "<|speed_"))]
        return sorted(keep)

    def convert_tokens_to_ids(self, names: str | Iterable[str]):
        if isinstance(names, str):
            return self.stoi.get(names, self.unk_id)
        return [self.stoi.get(n, self.unk_id) for n in names]

    def encode_text(self, text: str) -> list[int]:
        """Plain text -> one id per character (unknown characters -> <unk>)."""
        return [self.stoi.get(c, self.unk_id) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.itos[i] for i in ids if i not in self.special_ids and 0 <= i < len(self.itos))

    @staticmethod
    def chars_from_texts(texts: Iterable[str]) -> list[str]:
        return sorted({c for t in texts for c in t if c != "\n"})


class HFTokenizer:
    """A `transformers` tokenizer behind the same interface."""

    def __init__(self, tokenizer, eos_ids: Sequence[int] | None = None):
        self.tok = tokenizer
        ids = eos_ids or [tokenizer.convert_tokens_to_ids(t) for t in (U.IM_END, "<|endoftext|>")]
        self.eos_ids = [i for i in ids if i is not None and i != tokenizer.unk_token_id]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]

    @classmethod
    def from_dir(cls, path: str):
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(path, trust_remote_code=False))

    def __len__(self) -> int:
        return len(self.tok)

    def convert_tokens_to_ids(self, names):
        return self.tok.convert_tokens_to_ids(names)

    def encode_text(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)
