"""The released UniSS directory: its layout, its config files and their schemas.

Layout (DESIGN §5, UNISS_RELEASE.md): the LLM and tokenizer at the root; `glm4_tokenizer/`
(GLM-4-Voice WhisperVQ); `bicodec/` with Spark-TTS's `config.yaml`, `BiCodec/` (codec weights and
its `config.yaml` rooted at `audio_tokenizer`) and `wav2vec2-large-xlsr-53/`.

Every problem is a one-line `CheckpointError` naming the directory and the missing sub-folder or
file, the config file and the unknown or missing key, or the token whose id breaks the released
vocabulary layout. The schemas below are dataclasses whose fields are the keys the released files
use (Spark-TTS constructor arguments, WhisperVQ config names); node configs embed them, so a
node built from a directory and saved as `.nemo` restores without the directory.
"""
from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from dragoman.nodes.errors import CheckpointError, DragomanError

GLM_DIR = "glm4_tokenizer"
BICODEC_DIR = "bicodec"
CODEC_DIR = "bicodec/BiCodec"
WAV2VEC2_DIR = "bicodec/wav2vec2-large-xlsr-53"
SUB_FOLDERS = (GLM_DIR, BICODEC_DIR, CODEC_DIR, WAV2VEC2_DIR)
FILES = (
    "config.json", "tokenizer.json",
    f"{GLM_DIR}/config.json", f"{GLM_DIR}/model.safetensors", f"{GLM_DIR}/preprocessor_config.json",
    f"{BICODEC_DIR}/config.yaml", f"{CODEC_DIR}/config.yaml", f"{CODEC_DIR}/model.safetensors",
    f"{WAV2VEC2_DIR}/config.json", f"{WAV2VEC2_DIR}/preprocessor_config.json", f"{WAV2VEC2_DIR}/pytorch_model.bin",
)
# The LLM weights: one file, or shards listed by an index (what `save_pretrained` writes for big models).
LLM_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


# -- schemas of BiCodec/config.yaml (`audio_tokenizer` sections) and bicodec/config.yaml ------------
@dataclasses.dataclass
class MelParams:
    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 640
    hop_length: int = 320
    mel_fmin: float = 10.0
    mel_fmax: Optional[float] = None
    num_mels: int = 128


@dataclasses.dataclass
class EncoderParams:
    input_channels: int = 1024
    vocos_dim: int = 384
    vocos_intermediate_dim: int = 2048
    vocos_num_layers: int = 12
    out_channels: int = 1024
    sample_ratios: list[int] = dataclasses.field(default_factory=lambda: [1, 1])


@dataclasses.dataclass
class PrenetParams(EncoderParams):
    condition_dim: Optional[int] = 1024
    use_tanh_at_final: bool = False


@dataclasses.dataclass
class WaveGeneratorParams:
    input_channel: int = 1024
    channels: int = 1536
    rates: list[int] = dataclasses.field(default_factory=lambda: [8, 5, 4, 2])
    kernel_sizes: list[int] = dataclasses.field(default_factory=lambda: [16, 11, 8, 4])
    d_out: int = 1


@dataclasses.dataclass
class QuantizerParams:
    input_dim: int = 1024
    codebook_size: int = 8192
    codebook_dim: int = 8
    commitment: float = 0.25
    codebook_loss_weight: float = 2.0
    decay: float = 0.99
    threshold_ema_dead_code: float = 0.2
    momentum: float = 0.99
    use_l2_normlize: bool = True


@dataclasses.dataclass
class SpeakerParams:
    input_dim: int = 128
    out_dim: int = 1024
    latent_dim: int = 128
    token_num: int = 32
    fsq_levels: list[int] = dataclasses.field(default_factory=lambda: [4, 4, 4, 4, 4, 4])
    fsq_num_quantizers: int = 1


@dataclasses.dataclass
class AudioParams:
    """bicodec/config.yaml (Spark-TTS's audio settings; only the last four matter at inference)."""
    highpass_cutoff_freq: float = 40.0
    segment_duration: float = 2.4
    max_val_duration: float = 12.0
    sample_rate: int = 16000
    latent_hop_length: int = 320
    ref_segment_duration: float = 6.0
    volume_normalize: bool = True


# Keys Spark-TTS's constructors require (no default there); absent optional keys take the
# constructor defaults, which the dataclass defaults above repeat.
_CODEC_SECTIONS: dict[str, tuple[type, tuple[str, ...]]] = {
    "mel_params": (MelParams, tuple(f.name for f in dataclasses.fields(MelParams))),
    "encoder": (EncoderParams, ("input_channels", "vocos_dim", "vocos_intermediate_dim", "vocos_num_layers", "out_channels")),
    "decoder": (WaveGeneratorParams, ("input_channel", "channels", "rates", "kernel_sizes")),
    "quantizer": (QuantizerParams, ("input_dim", "codebook_size", "codebook_dim", "commitment")),
    "speaker_encoder": (SpeakerParams, ("input_dim", "out_dim")),
    "prenet": (PrenetParams, ("input_channels", "vocos_dim", "vocos_intermediate_dim", "vocos_num_layers", "out_channels")),
    "postnet": (PrenetParams, ("input_channels", "vocos_dim", "vocos_intermediate_dim", "vocos_num_layers", "out_channels")),
}


# -- GLM-4-Voice WhisperVQ (glm4_tokenizer/config.json + preprocessor_config.json) -----------------
@dataclasses.dataclass
class WhisperVQParams:
    d_model: int = 1280
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    num_mel_bins: int = 128
    max_source_positions: int = 1500
    quantize_position: int = 16
    pooling_position: int = 16
    pooling_kernel_size: int = 4
    pooling_type: str = "avg"
    quantize_vocab_size: int = 16384
    quantize_causal_block_size: Optional[int] = 200
    quantize_ema_decay: Optional[float] = 0.99
    encoder_causal_convolution: bool = True


@dataclasses.dataclass
class WhisperFeatureParams:
    feature_size: int = 128
    sampling_rate: int = 16000
    hop_length: int = 160
    n_fft: int = 400
    chunk_length: int = 30
    padding_value: float = 0.0


# Config-key families the WhisperVQ loader interprets: a key of these families that the release
# does not define would change the network silently, so it is refused. Other keys (Whisper's
# decoder settings, `transformers_version`, ...) do not affect the encoder and pass.
_GLM_FAMILIES = ("quantize_", "pooling_", "encoder_")
_GLM_KNOWN = {
    "quantize_vocab_size", "quantize_position", "quantize_commit_coefficient", "quantize_loss_scale",
    "quantize_ema_decay", "quantize_restart_interval", "quantize_encoder_only", "quantize_causal_encoder",
    "quantize_causal_block_size", "pooling_kernel_size", "pooling_type", "pooling_position",
    "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim", "encoder_layerdrop",
    "encoder_causal_attention", "encoder_causal_convolution",
}


# -- readers ---------------------------------------------------------------------------------
def read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise CheckpointError(f"{path}: invalid YAML{at} ({getattr(err, 'problem', None) or err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read ({err})") from None


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: invalid JSON at line {err.lineno} ({err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read ({err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def section(data: Any, schema: type, where: str, required: Iterable[str] = ()) -> dict:
    """Validate one config mapping against a schema dataclass: unknown keys and missing required
    keys are errors; returns the mapping restricted to the schema's keys."""
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{where}: expected a mapping of config keys, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(schema)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(f"{where}: unknown config key(s) {unknown}; known keys: {sorted(known)}")
    missing = sorted(set(required) - set(data))
    if missing:
        raise CheckpointError(f"{where}: missing config key(s) {missing}")
    return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in data.items()}


def codec_config(root: Path) -> dict[str, dict]:
    """BiCodec/config.yaml -> {section: keys} for every `audio_tokenizer` section, validated."""
    path = root / CODEC_DIR / "config.yaml"
    data = read_yaml(path)
    if not isinstance(data, Mapping) or set(data) != {"audio_tokenizer"}:
        keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointError(f"{path}: expected one root key 'audio_tokenizer', got {keys}")
    tokenizer = data["audio_tokenizer"]
    if not isinstance(tokenizer, Mapping):
        raise CheckpointError(f"{path}: 'audio_tokenizer' must be a mapping")
    unknown = sorted(set(tokenizer) - set(_CODEC_SECTIONS))
    if unknown:
        raise CheckpointError(f"{path}: unknown config key(s) {unknown} under audio_tokenizer; known: {sorted(_CODEC_SECTIONS)}")
    missing = sorted(set(_CODEC_SECTIONS) - set(tokenizer))
    if missing:
        raise CheckpointError(f"{path}: missing config section(s) {missing} under audio_tokenizer")
    out = {}
    for name, (schema, required) in _CODEC_SECTIONS.items():
        out[name] = section(tokenizer[name], schema, f"{path}: audio_tokenizer.{name}", required)
    if "condition_dim" not in out["prenet"]:
        raise CheckpointError(f"{path}: audio_tokenizer.prenet has no condition_dim (the prenet is conditioned on the d-vector)")
    return out


def audio_config(root: Path) -> dict:
    path = root / BICODEC_DIR / "config.yaml"
    required = ("sample_rate", "latent_hop_length", "ref_segment_duration", "volume_normalize")
    return section(read_yaml(path), AudioParams, str(path), required)


def glm_config(root: Path) -> tuple[dict, dict]:
    """glm4_tokenizer/config.json and preprocessor_config.json -> (WhisperVQParams, WhisperFeatureParams) keys."""
    path = root / GLM_DIR / "config.json"
    data = read_json(path)
    unknown = sorted(k for k in data if k.startswith(_GLM_FAMILIES) and k not in _GLM_KNOWN)
    if unknown:
        raise CheckpointError(f"{path}: unknown config key(s) {unknown} (not WhisperVQ settings dragoman knows)")
    names = [f.name for f in dataclasses.fields(WhisperVQParams)]
    missing = sorted(n for n in names if n not in data)
    if missing:
        raise CheckpointError(f"{path}: missing config key(s) {missing}")
    model = {n: data[n] for n in names}
    if data.get("activation_function", "gelu") != "gelu":
        raise CheckpointError(f"{path}: activation_function {data['activation_function']!r}; WhisperVQ uses 'gelu'")
    if model["pooling_type"] not in ("avg", "max"):
        raise CheckpointError(f"{path}: pooling_type {model['pooling_type']!r}; expected 'avg' or 'max'")
    if not 0 < model["pooling_position"] <= model["quantize_position"]:
        raise CheckpointError(f"{path}: pooling_position {model['pooling_position']} must lie in 1..quantize_position")
    pre_path = root / GLM_DIR / "preprocessor_config.json"
    pre = read_json(pre_path)
    feature_names = [f.name for f in dataclasses.fields(WhisperFeatureParams)]
    features = {n: pre[n] for n in feature_names if n in pre}
    if features.get("feature_size", model["num_mel_bins"]) != model["num_mel_bins"]:
        raise CheckpointError(f"{pre_path}: feature_size {features['feature_size']} != num_mel_bins {model['num_mel_bins']} in {path.name}")
    return model, features


def wav2vec2_config(root: Path) -> tuple[dict, bool]:
    """wav2vec2 config.json (kept whole: transformers builds the model from it) and the
    processor's do_normalize flag."""
    path = root / WAV2VEC2_DIR / "config.json"
    data = read_json(path)
    if data.get("model_type") != "wav2vec2":
        raise CheckpointError(f"{path}: model_type {data.get('model_type')!r}; expected 'wav2vec2'")
    pre = read_json(root / WAV2VEC2_DIR / "preprocessor_config.json")
    return data, bool(pre.get("do_normalize", True))


# -- the directory ---------------------------------------------------------------------------
def check_files(root: str | Path) -> Path:
    """The resolved release root, or a one-line error naming the first missing sub-folder or file."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CheckpointError(f"{root}: no such UniSS release directory")
    for folder in SUB_FOLDERS:
        if not (root / folder).is_dir():
            raise CheckpointError(f"{root}: missing sub-folder '{folder}/' of the released UniSS layout")
    for name in FILES:
        if not (root / name).is_file():
            raise CheckpointError(f"{root}: missing file '{name}' of the released UniSS layout")
    if not any((root / name).is_file() for name in LLM_WEIGHTS):
        raise CheckpointError(f"{root}: missing file 'model.safetensors' (the LLM weights) of the released UniSS layout")
    return root.resolve()


def check_vocabulary(root: Path) -> None:
    """The root tokenizer and LLM config must place UniSS's tokens at the released ids."""
    from transformers import AutoTokenizer

    from dragoman.nodes.uniss_tokens import RELEASE_VOCAB_SIZE, check_release_layout

    vocab = read_json(root / "config.json").get("vocab_size")
    if vocab != RELEASE_VOCAB_SIZE:
        raise CheckpointError(f"{root / 'config.json'}: vocab_size {vocab}; the released UniSS layout has {RELEASE_VOCAB_SIZE}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(root), trust_remote_code=False)
    except (OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{root}: cannot load the tokenizer ({first})") from None
    try:
        check_release_layout(tokenizer)
    except DragomanError as err:
        raise CheckpointError(f"{root}: vocabulary does not match the released id layout: {err}") from None


@lru_cache(maxsize=8)
def _vocabulary_checked(root: str, stamp: float) -> None:
    check_vocabulary(Path(root))


def check_vocabulary_once(root: Path) -> None:
    """`check_vocabulary`, once per process and directory while tokenizer.json is unchanged:
    loading the 180k-token tokenizer takes seconds and every release node asks."""
    _vocabulary_checked(str(root), (root / "tokenizer.json").stat().st_mtime)
