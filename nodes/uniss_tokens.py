"""The UniSS token scheme (DESIGN §5): token names, prompts per mode, and output parsing.

Shared by the default model and the released UniSS checkpoint, so one controller drives both.
Everything here works on token *names*; ids come from whichever tokenizer the translator uses
(`convert_tokens_to_ids`), so nothing depends on where a vocabulary placed its added tokens.
The released id layout is checked separately (`check_release_layout`).
"""
from __future__ import annotations

import dataclasses
import re

from dragoman.nodes.errors import DragomanError

LANG_TOKENS = {"zh": "<|cmn|>", "en": "<|eng|>"}
TASK_ASR, TASK_TTS = "<|task_asr|>", "<|task_tts|>"
TASK_S2ST, TASK_S2TT, TASK_T2TT = "<|task_s2s_translation|>", "<|task_s2t_translation|>", "<|task_t2t_translation|>"
MODE_TOKENS = {"quality": "<|slow_mode|>", "performance": "<|balance_mode|>", "direct": "<|fast_mode|>"}
START_CONTENT, END_CONTENT = "<|start_content|>", "<|end_content|>"
START_GLOBAL, END_GLOBAL = "<|start_global_token|>", "<|end_global_token|>"
START_SEMANTIC, END_SEMANTIC = "<|start_semantic_token|>", "<|end_semantic_token|>"
WRITE_GENERATE, IM_END = "<|write_generate|>", "<|im_end|>"
CONTROL_TOKENS = [
    *LANG_TOKENS.values(), TASK_ASR, TASK_TTS, TASK_S2ST, TASK_S2TT, TASK_T2TT,
    START_CONTENT, END_CONTENT, START_GLOBAL, END_GLOBAL, START_SEMANTIC, END_SEMANTIC,
    WRITE_GENERATE, *MODE_TOKENS.values(),
]
NUM_SPEED_TOKENS = 35  # speeds 0.1 .. 3.5 in steps of 0.1

# Released UniSS vocabulary (UNISS_RELEASE item 1/4): base ids of each added range.
RELEASE_LAYOUT = {"global": (151665, 4096), "semantic": (155761, 8192), "glm": (163953, 16384), "speed": (180337, 35)}
RELEASE_CONTROL_RANGE = (180372, 180406)
RELEASE_VOCAB_SIZE = 180407


def global_token(n: int) -> str:
    return f"<|bicodec_global_{n}|>"


def semantic_token(n: int) -> str:
    return f"<|bicodec_semantic_{n}|>"


def glm_token(n: int) -> str:
    return f"<|glm_semantic_{n}|>"


def emotion_token(n: int) -> str:
    return f"<|emotion_{n}|>"


def speed_index(speed: float) -> int:
    """DESIGN §5: N = int((speed - 0.1) / 0.1); rounded first so 0.3 gives 2, not 1.999... -> 1."""
    if not 0.1 <= speed <= 3.5 + 1e-9:
        raise DragomanError(f"speed {speed}: must lie in [0.1, 3.5]")
    return int(round((speed - 0.1) / 0.1, 6))


def speed_token(speed: float) -> str:
    return f"<|speed_{speed_index(speed)}|>"


def speech_token_names(num_global: int, num_semantic: int, num_glm: int, num_emotion: int = 0) -> list[str]:
    """All added speech-token names in the released order (global, semantic, glm, speed), then
    dragoman's emotion tokens (absent from the release)."""
    return [
        *(global_token(i) for i in range(num_global)),
        *(semantic_token(i) for i in range(num_semantic)),
        *(glm_token(i) for i in range(num_glm)),
        *(f"<|speed_{i}|>" for i in range(NUM_SPEED_TOKENS)),
        *(emotion_token(i) for i in range(num_emotion)),
    ]


@dataclasses.dataclass
class PromptInputs:
    speaker_tokens: list[int]
    content_tokens: list[int]
    source_lang: str
    target_lang: str
    emotion_tokens: list[int] | None = None
    speed: float = 1.0


def build_prompt(mode: str, p: PromptInputs) -> list[str]:
    """The prompt of DESIGN §5 as a list of token names (no chat template, no glm wrappers)."""
    if mode not in MODE_TOKENS:
        raise DragomanError(f"mode {mode!r}: expected one of {sorted(MODE_TOKENS)}")
    for lang in (p.source_lang, p.target_lang):
        if lang not in LANG_TOKENS:
            raise DragomanError(f"language {lang!r}: expected 'zh' or 'en'")
    tokens = [TASK_S2ST, MODE_TOKENS[mode], LANG_TOKENS[p.target_lang], START_GLOBAL]
    tokens += [global_token(int(t)) for t in p.speaker_tokens]
    tokens.append(END_GLOBAL)
    tokens += [emotion_token(int(t)) for t in (p.emotion_tokens or [])]
    tokens += [glm_token(int(t)) for t in p.content_tokens]
    tokens.append(WRITE_GENERATE)
    speed = speed_token(p.speed)
    if mode == "quality":
        tokens += [TASK_ASR, LANG_TOKENS[p.source_lang], speed, START_CONTENT]
    elif mode == "performance":
        tokens += [TASK_S2TT, LANG_TOKENS[p.target_lang], speed, START_CONTENT]
    else:
        tokens += [MODE_TOKENS["direct"], LANG_TOKENS[p.target_lang], speed, START_SEMANTIC]
    return tokens


def quality_middle(target_lang: str, speed: float = 1.0) -> list[str]:
    """What the model writes between the transcript and the translation in quality mode."""
    return [END_CONTENT, TASK_S2TT, LANG_TOKENS[target_lang], speed_token(speed), START_CONTENT]


@dataclasses.dataclass
class ParsedOutput:
    transcript: str
    translation: str
    semantic: list[int]


_SEMANTIC_RE = re.compile(r"<\|bicodec_semantic_(\d+)\|>")
_ANY_TOKEN_RE = re.compile(r"<\|.*?\|>")


def parse_output(text: str, mode: str) -> ParsedOutput:
    """Parse decoded output text (special tokens already dropped by the tokenizer, UniSS's
    speech/control tokens kept), as the released inference does (UNISS_RELEASE item 5):
    semantic ids from every `<|bicodec_semantic_N|>` anywhere; in quality mode the text splits
    into transcript / translation only when there are exactly two `<|end_content|>`, otherwise
    the transcript is empty and everything is the translation; `<|...|>` tokens are removed from
    the text and it is stripped. Text comes from before `<|start_semantic_token|>` only."""
    semantic = [int(n) for n in _SEMANTIC_RE.findall(text)]
    if mode == "direct":
        return ParsedOutput("", "", semantic)
    text_only = _SEMANTIC_RE.sub("", text.split(START_SEMANTIC)[0])  # an interleaved speech section repeats its text
    parts = text_only.split(END_CONTENT)
    if mode == "quality" and len(parts) == 3:
        transcript, translation = parts[0], parts[1]
    else:
        transcript, translation = "", parts[0] if mode != "quality" else text_only
    clean = lambda s: _ANY_TOKEN_RE.sub("", s).strip()  # noqa: E731
    return ParsedOutput(clean(transcript), clean(translation), semantic)


def check_release_layout(tokenizer) -> None:
    """Raise a one-line error unless `tokenizer` places UniSS's tokens at the released ids."""
    size = len(tokenizer)
    if size != RELEASE_VOCAB_SIZE:
        raise DragomanError(f"tokenizer has {size} tokens; the released UniSS layout has {RELEASE_VOCAB_SIZE}")
    names = {"global": global_token, "semantic": semantic_token, "glm": glm_token, "speed": lambda n: f"<|speed_{n}|>"}
    for kind, (base, count) in RELEASE_LAYOUT.items():
        for n in (0, count - 1):
            got = tokenizer.convert_tokens_to_ids(names[kind](n))
            if got != base + n:
                raise DragomanError(f"token {names[kind](n)} has id {got}, the released layout puts it at {base + n}")
    low, high = RELEASE_CONTROL_RANGE
    for name in CONTROL_TOKENS:
        got = tokenizer.convert_tokens_to_ids(name)
        if got is None or not low <= got <= high:
            raise DragomanError(f"control token {name} has id {got}, outside the released range {low}-{high}")
