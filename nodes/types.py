"""Neural types of dragoman's ports.

Every port is a NeMo `NeuralType(axes, element_type)`. The project adds element types for the
streams of the UniSS pipeline so that a graph that wires, say, content tokens into a decoder's
semantic-token input fails when it is loaded, not halfway through a batch. Like NeMo's
`AudioSignal(freq=...)`, token types carry their frame rate as a type parameter: 12.5 Hz content
tokens and 50 Hz semantic tokens do not match. A parameter left as None matches any value.

In a graph, a port's value is a Python list with one entry per batch item (a 1-D tensor, a
string, a list of segments...), so variable lengths need no padding between nodes; nodes that run
a network pad and mask inside.
"""
from __future__ import annotations

from nemo.core.neural_types import (  # noqa: F401  (re-exported for node modules)
    AudioSignal,
    ElementType,
    NeuralType,
    NeuralTypeComparisonResult,
    StringType,
    VoidType,
)

SAMPLE_RATE = 16_000


class TokensType(ElementType):
    """Discrete token ids of one stream; `rate` is frames per second (None: any / global)."""

    def __init__(self, rate: float | None = None):
        self._params = {"rate": rate}

    @property
    def type_parameters(self):
        return self._params


class SpeakerTokensType(TokensType):
    """Global speaker tokens (who): a fixed number per utterance, UniSS: 32 from BiCodec."""


class ContentTokensType(TokensType):
    """Linguistic tokens (what): UniSS's GLM-4 WhisperVQ tokens at 12.5 Hz."""


class EmotionTokensType(TokensType):
    """Style tokens (how): dragoman's addition, a few per utterance."""


class SemanticTokensType(TokensType):
    """Codec semantic tokens that the decoder turns into audio: UniSS's BiCodec at 50 Hz."""


class SpeakerEmbeddingType(ElementType):
    """A fixed-size speaker vector (d-vector)."""


class FilePathType(ElementType):
    """A path to a file on disk."""


class TextType(StringType):
    """Natural-language text (transcript or translation)."""


class SegmentLayoutType(ElementType):
    """Where the segments of one source item sit: [(start_sample, end_sample), ...] + total length."""


class TimeSpansType(ElementType):
    """Time spans of one item in seconds: [(start_s, end_s), ...]."""


class DurationType(ElementType):
    """A length of time in seconds, one float per item."""


class GenerationRequestType(ElementType):
    """A prompt (token names) + forced continuations + budget + sampling for the Translator."""


class GenerationResultType(ElementType):
    """The Translator's decoded output, its ids and why it stopped."""


class LanguageType(ElementType):
    """A language code, 'zh' or 'en'."""


def audio(rate: int | None = SAMPLE_RATE) -> NeuralType:
    return NeuralType(("B", "T"), AudioSignal(freq=rate))


def tokens(kind: type[TokensType], rate: float | None = None) -> NeuralType:
    return NeuralType(("B", "T"), kind(rate))


def text() -> NeuralType:
    return NeuralType(("B",), TextType())


def generation_request() -> NeuralType:
    return NeuralType(("B",), GenerationRequestType())


def generation_result() -> NeuralType:
    return NeuralType(("B",), GenerationResultType())


def language() -> NeuralType:
    return NeuralType(("B",), LanguageType())


def file_path() -> NeuralType:
    return NeuralType(("B",), FilePathType())


def speaker_embedding() -> NeuralType:
    return NeuralType(("B", "D"), SpeakerEmbeddingType())


def segment_layout() -> NeuralType:
    return NeuralType(("B",), SegmentLayoutType())


def time_spans() -> NeuralType:
    return NeuralType(("B",), TimeSpansType())


def duration() -> NeuralType:
    return NeuralType(("B",), DurationType())


def accepts(input_type: NeuralType, output_type: NeuralType) -> bool:
    """True when a value of `output_type` may flow into a port declared as `input_type`
    (NeMo's rule: the same type, or a more specific one)."""
    result = input_type.compare(output_type)
    return result in (NeuralTypeComparisonResult.SAME, NeuralTypeComparisonResult.GREATER)


def describe(t: NeuralType) -> str:
    """Short human form, e.g. `AudioSignal(freq=16000)[B,T]`."""
    element = t.elements_type
    params = ", ".join(f"{k}={v}" for k, v in getattr(element, "type_parameters", {}).items() if v is not None)
    axes = ",".join(str(a.kind)[0].upper() for a in t.axes or ())
    return f"{type(element).__name__}({params})[{axes}]"
