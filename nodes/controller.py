"""The CoT controller (DESIGN §1, §5), as nodes around the Translator.

`cot_prompter` builds a `GenerationRequest` per segment: the DESIGN §5 prompt for the mode, the
speed token, a token budget proportional to the source's length, sampling settings and — in
quality mode — the translation header to force after the transcript. `translator` executes it.
`cot_parser` parses the output as the released inference does and hands the decoder the
semantic tokens together with the SOURCE speaker tokens. `task_prompter` builds the cascade's
single-task requests (MT: text -> text; TTS: text -> speech) for the same Translator.

Speed: `speed` 1.0 means "the source's own pace". With `auto_speed` (default model) the speed
token is speed x (source characters per second / the source language's mean rate), using the
source transcript; the released UniSS asserts `<|speed_9|>`, so its graph turns auto_speed off.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from dragoman.nodes import types as T
from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.base import Node
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.generation import GenerationRequest, Sampling

CONTENT_RATE_HZ = 12.5
SEMANTIC_RATE_HZ = 50.0
OTHER = {"zh": "en", "en": "zh"}


@dataclasses.dataclass
class PrompterConfig:
    mode: str = "quality"
    target_lang: str = "en"
    source_lang: Optional[str] = None      # default: the other language (as the released inference)
    speed: float = 1.0
    auto_speed: bool = True
    mean_rate: dict[str, float] = dataclasses.field(default_factory=lambda: {"zh": 4.0, "en": 13.0})
    use_emotion: bool = True
    force_header: bool = True
    # Quality mode's transcript: "model" (the Translator writes it, as UniSS) or "recognizer" (the
    # `source_text` input, i.e. the ContentTokenizer's CTC + n-gram LM transcript, is put in the CoT
    # and the Translator goes on from the translation header). A segment without source text
    # falls back to "model".
    transcript: str = "model"
    sampling: Sampling = dataclasses.field(default_factory=Sampling)
    # Budget: speech at 50 Hz for up to `max_length_ratio` x the source duration, plus text.
    max_length_ratio: float = 2.5
    text_budget: int = 200
    max_new_tokens: int = 4000


TRANSCRIPT_SOURCES = ("model", "recognizer")


def recognizer_transcript(cfg, source_text: str | None) -> bool:
    """Whether a quality-mode segment's CoT transcript is the given source text (prompter and
    parser apply the same rule, so the parser knows what the Translator's output holds)."""
    return cfg.get("transcript", "model") == "recognizer" and bool(source_text and source_text.strip())


def _check_langs(cfg) -> tuple[str, str]:
    target = cfg.target_lang
    if target not in OTHER:
        raise DragomanError(f"target_lang {target!r}: expected 'zh' or 'en'")
    source = cfg.source_lang or OTHER[target]
    if source not in OTHER:
        raise DragomanError(f"source_lang {source!r}: expected 'zh' or 'en'")
    return source, target


def _clip_speed(speed: float) -> float:
    return min(3.5, max(0.1, round(speed, 1)))


def _sampling(cfg) -> Sampling:
    return Sampling(**dict(cfg.sampling))


class CoTPrompter(Node):
    node_name = "cot_prompter"
    Config = PrompterConfig
    optional_inputs = frozenset({"emotion_tokens", "source_text"})

    def __init__(self, cfg=None, **overrides):
        super().__init__(cfg, **overrides)
        if self.cfg.mode not in U.MODE_TOKENS:
            raise DragomanError(f"cot_prompter: mode {self.cfg.mode!r}: expected one of {sorted(U.MODE_TOKENS)}")
        _check_langs(self.cfg)
        U.speed_index(self.cfg.speed)
        if self.cfg.transcript not in TRANSCRIPT_SOURCES:
            raise DragomanError(f"cot_prompter: transcript {self.cfg.transcript!r}: expected 'model' or 'recognizer'")

    @classmethod
    def port_types(cls, cfg):
        return (
            {
                "speaker_tokens": T.tokens(T.SpeakerTokensType),
                "content_tokens": T.tokens(T.ContentTokensType, CONTENT_RATE_HZ),
                "emotion_tokens": T.tokens(T.EmotionTokensType),
                "source_text": T.text(),
            },
            {"request": T.generation_request()},
        )

    def source_pace(self, source_text: str | None, seconds: float, source_lang: str) -> float:
        """The source's speaking rate relative to its language's mean (1.0 without auto_speed)."""
        if not (self.cfg.auto_speed and source_text):
            return 1.0
        rate = len(source_text.replace(" ", "")) / max(seconds, 0.3)
        return _clip_speed(rate / float(self.cfg.mean_rate[source_lang]))

    def run(self, speaker_tokens, content_tokens, emotion_tokens=None, source_text=None):
        n = self.check_inputs({"speaker_tokens": speaker_tokens, "content_tokens": content_tokens})
        source, target = _check_langs(self.cfg)
        requests = []
        for i in range(n):
            content = [int(t) for t in content_tokens[i]]
            if not content:
                raise DragomanError("cot_prompter: a segment has no content tokens (too short to translate)")
            seconds = len(content) / CONTENT_RATE_HZ
            text = source_text[i] if source_text is not None else None
            pace = self.source_pace(text, seconds, source)
            speed = _clip_speed(float(self.cfg.speed) * pace)
            emotion = [int(t) for t in emotion_tokens[i]] if (emotion_tokens is not None and self.cfg.use_emotion) else None
            inputs = U.PromptInputs([int(t) for t in speaker_tokens[i]], content, source, target, emotion, speed=speed)
            prompt = U.build_prompt(self.cfg.mode, inputs)
            force, given, suffix = {}, "", []
            if self.cfg.mode == "quality":
                prompt[-2] = U.speed_token(pace)  # the ASR part describes the source's own pace
                if recognizer_transcript(self.cfg, text):
                    given, suffix = text.strip(), U.quality_middle(target, speed)
                elif self.cfg.force_header:
                    force = {U.END_CONTENT: U.quality_middle(target, speed)[1:]}
            budget = int(self.cfg.max_length_ratio * seconds * SEMANTIC_RATE_HZ) + self.cfg.text_budget
            requests.append(GenerationRequest(prompt=prompt, max_new_tokens=min(budget, self.cfg.max_new_tokens),
                                              sampling=_sampling(self.cfg), force_after=force,
                                              prompt_text=given, prompt_suffix=suffix))
        return {"request": requests}


@dataclasses.dataclass
class SourceLanguageConfig:
    target_lang: str = "en"
    source_lang: Optional[str] = None      # default: the other language


class SourceLanguage(Node):
    """The source language of every segment, for nodes whose `language` input picks an alphabet
    and an LM (the ContentTokenizer's recogniser: without it, decoding is greedy over both
    languages' characters and its transcripts were worse, README "Translation results")."""

    node_name = "source_language"
    Config = SourceLanguageConfig

    @classmethod
    def port_types(cls, cfg):
        return {"audio": T.audio()}, {"language": T.language()}

    def run(self, audio):
        n = self.check_inputs({"audio": audio})
        source, _ = _check_langs(self.cfg)
        return {"language": [source] * n}


@dataclasses.dataclass
class ParserConfig:
    mode: str = "quality"   # quality | performance | direct, or "text" for the cascade's MT step
    transcript: str = "model"  # as the prompter's: with "recognizer", `source_text` is the transcript


class CoTParser(Node):
    node_name = "cot_parser"
    Config = ParserConfig
    optional_inputs = frozenset({"speaker_tokens", "source_text"})

    @classmethod
    def port_types(cls, cfg):
        return (
            {"result": T.generation_result(), "speaker_tokens": T.tokens(T.SpeakerTokensType), "source_text": T.text()},
            {
                "semantic_tokens": T.tokens(T.SemanticTokensType, SEMANTIC_RATE_HZ),
                "speaker_tokens": T.tokens(T.SpeakerTokensType),
                "transcript": T.text(),
                "translation": T.text(),
            },
        )

    def run(self, result, speaker_tokens=None, source_text=None):
        import torch

        out = {"semantic_tokens": [], "speaker_tokens": [], "transcript": [], "translation": []}
        for i, res in enumerate(result):
            given = source_text[i] if source_text is not None else None
            forced = self.cfg.mode == "quality" and recognizer_transcript(self.cfg, given)
            # With the transcript given, the output starts at the translation, as in performance mode.
            parsed = U.parse_output(res.text, "performance" if (forced or self.cfg.mode == "text") else self.cfg.mode)
            if forced:
                parsed.transcript = given.strip()
            if self.cfg.mode != "text" and not parsed.semantic:
                raise DragomanError(
                    f"translator wrote no speech tokens for segment {i} (stopped by {res.stopped_by} after "
                    f"{len(res.ids)} tokens); refusing to return silence"
                )
            out["semantic_tokens"].append(torch.tensor(parsed.semantic, dtype=torch.long))
            out["speaker_tokens"].append(speaker_tokens[i] if speaker_tokens is not None else None)
            out["transcript"].append(parsed.transcript)
            out["translation"].append(parsed.translation)
        return out


@dataclasses.dataclass
class TaskPrompterConfig:
    task: str = "mt"                       # mt: text -> text; tts: text -> speech
    target_lang: str = "en"
    source_lang: Optional[str] = None
    speed: float = 1.0
    use_emotion: bool = True
    sampling: Sampling = dataclasses.field(default_factory=Sampling)
    max_new_tokens: int = 1500


class TaskPrompter(Node):
    """Single-task requests for the cascade baseline (recogniser -> MT -> TTS -> decoder)."""

    node_name = "task_prompter"
    Config = TaskPrompterConfig
    optional_inputs = frozenset({"speaker_tokens", "emotion_tokens"})

    @classmethod
    def port_types(cls, cfg):
        return (
            {"text": T.text(), "speaker_tokens": T.tokens(T.SpeakerTokensType), "emotion_tokens": T.tokens(T.EmotionTokensType)},
            {"request": T.generation_request()},
        )

    def run(self, text, speaker_tokens=None, emotion_tokens=None):
        source, target = _check_langs(self.cfg)
        L, requests = U.LANG_TOKENS, []
        for i, sentence in enumerate(text):
            if self.cfg.task == "mt":
                prompt, suffix = [U.TASK_T2TT, L[target], U.START_CONTENT], [U.END_CONTENT, U.WRITE_GENERATE, U.START_CONTENT]
            elif self.cfg.task == "tts":
                if speaker_tokens is None:
                    raise DragomanError("task_prompter: the tts task needs speaker_tokens")
                emotion = [U.emotion_token(int(t)) for t in emotion_tokens[i]] if (emotion_tokens is not None and self.cfg.use_emotion) else []
                prompt = [U.TASK_TTS, L[target], U.START_GLOBAL, *(U.global_token(int(t)) for t in speaker_tokens[i]),
                          U.END_GLOBAL, *emotion, U.WRITE_GENERATE, U.START_CONTENT]
                suffix = [U.END_CONTENT, U.speed_token(self.cfg.speed), U.START_SEMANTIC]
            else:
                raise DragomanError(f"task_prompter: task {self.cfg.task!r}: expected 'mt' or 'tts'")
            if not sentence.strip():
                raise DragomanError(f"task_prompter: segment {i} has empty text")
            requests.append(GenerationRequest(prompt=prompt, prompt_text=sentence, prompt_suffix=suffix,
                                              max_new_tokens=self.cfg.max_new_tokens, sampling=_sampling(self.cfg)))
        return {"request": requests}
