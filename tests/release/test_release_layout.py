"""The released directory layout and its configs: one-line errors naming what is wrong."""
from __future__ import annotations

import json

import pytest
import yaml

from dragoman.nodes.errors import CheckpointError, GraphError
from dragoman.nodes.release import layout as L
from dragoman.nodes.release.uniss_nodes import UniSSContentTokenizer, UniSSDecoder, UniSSSemanticTokenizer, \
    UniSSSpeakerEncoder

from .tiny_release import CODEC, GLM_CONFIG, TINY_WIDTHS, hf_tokenizer, release_tokenizer


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("skip, node", [
    ("glm4_tokenizer", UniSSContentTokenizer),
    ("bicodec/BiCodec", UniSSDecoder),
    ("bicodec/wav2vec2-large-xlsr-53", UniSSSemanticTokenizer),
    ("bicodec", UniSSSpeakerEncoder),
])
def test_release_missing_subfolder_names_it(partial_release, skip, node):
    root = partial_release(skip=skip)
    with pytest.raises(CheckpointError) as err:
        node.from_release(root, {"widths": TINY_WIDTHS} if node is UniSSSpeakerEncoder else None)
    assert f"missing sub-folder '{skip}/'" in one_line(err) and str(root) in str(err.value)


@pytest.mark.parametrize("skip", ["bicodec/BiCodec/model.safetensors", "glm4_tokenizer/preprocessor_config.json",
                                  "bicodec/wav2vec2-large-xlsr-53/pytorch_model.bin", "tokenizer.json", "model.safetensors"])
def test_release_missing_file_names_it(partial_release, skip):
    root = partial_release(skip=skip)
    with pytest.raises(CheckpointError) as err:
        UniSSDecoder.from_release(root)
    assert f"missing file '{skip}'" in one_line(err)


def test_release_unknown_codec_config_key(partial_release):
    codec = {**CODEC, "decoder": {**CODEC["decoder"], "upsample_initial": 7}}
    root = partial_release(replace={"bicodec/BiCodec/config.yaml": yaml.safe_dump({"audio_tokenizer": codec}).encode()})
    with pytest.raises(CheckpointError) as err:
        UniSSDecoder.from_release(root)
    text = one_line(err)
    assert "audio_tokenizer.decoder" in text and "unknown config key(s) ['upsample_initial']" in text


def test_release_codec_config_needs_its_sections(release_root, partial_release):
    codec = {k: v for k, v in CODEC.items() if k != "prenet"}
    root = partial_release(replace={"bicodec/BiCodec/config.yaml": yaml.safe_dump({"audio_tokenizer": codec}).encode()})
    with pytest.raises(CheckpointError, match=r"missing config section\(s\) \['prenet'\]"):
        L.codec_config(root)
    spark = yaml.safe_load((release_root / "bicodec/config.yaml").read_text())
    root = partial_release(replace={"bicodec/config.yaml": yaml.safe_dump({**spark, "ref_segment_seconds": 6}).encode()})
    with pytest.raises(CheckpointError, match=r"unknown config key\(s\) \['ref_segment_seconds'\]"):
        L.audio_config(root)


def test_release_unknown_whisper_vq_key(partial_release):
    config = {**GLM_CONFIG, "quantize_causal_blocksize": 100}
    root = partial_release(replace={"glm4_tokenizer/config.json": json.dumps(config).encode()})
    with pytest.raises(CheckpointError) as err:
        UniSSContentTokenizer.from_release(root)
    assert "unknown config key(s) ['quantize_causal_blocksize']" in one_line(err)


def test_release_config_keys_from_files_cannot_be_overridden(release_root):
    with pytest.raises(GraphError, match=r"config key\(s\) \['audio'\] come from"):
        UniSSDecoder.from_release(release_root, {"audio": {"sample_rate": 24000}})


def test_release_vocabulary_must_match_the_id_layout(release_root, partial_release):
    # <|cmn|> missing from the control range: the layout check names it.
    from dragoman.nodes import uniss_tokens as U

    control = [t for t in U.CONTROL_TOKENS if t != "<|cmn|>"]
    tok = release_tokenizer(control)
    root = partial_release(replace={"tokenizer.json": tok.to_str().encode()})
    with pytest.raises(CheckpointError) as err:
        L.check_vocabulary(root)
    text = one_line(err)
    assert "vocabulary does not match the released id layout" in text and "<|cmn|>" in text
    config = json.loads((release_root / "config.json").read_text())
    root = partial_release(replace={"config.json": json.dumps({**config, "vocab_size": 151936}).encode()})
    with pytest.raises(CheckpointError, match="vocab_size 151936"):
        L.check_vocabulary(root)


def test_release_tokenizer_built_in_tests_has_the_layout():
    from dragoman.nodes.uniss_tokens import check_release_layout

    check_release_layout(hf_tokenizer(release_tokenizer()))
