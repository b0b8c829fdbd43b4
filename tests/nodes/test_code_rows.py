"""Codebook rows of a fresh Translator start at the codes' FSQ grid coordinates."""
import pytest
import torch

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.code_rows import fsq_coordinates
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.modules.fsq import FSQ
from dragoman.nodes.translator import Translator

TINY_LM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 256}
COUNTS = {"num_global": 16, "num_semantic": 20, "num_glm": 24, "num_emotion": 6}
LEVELS = {"glm": [4, 3, 2], "semantic": [5, 4], "global": [4, 4], "emotion": [3, 2]}


def build(levels):
    torch.manual_seed(0)
    return Translator({"lm": TINY_LM, "tokens": COUNTS, "text_chars": list("abc"), "code_levels": levels})


def test_coordinates_round_trip_through_the_quantiser():
    levels = [8, 5, 3]
    fsq = FSQ(levels)
    coords = fsq_coordinates(levels)
    assert coords.shape == (120, 3)
    assert torch.equal(fsq.codes_to_indices(coords), torch.arange(120))


def test_neighbouring_codes_get_neighbouring_rows_and_norms_match():
    node = build(LEVELS)
    emb = node.lm.get_input_embeddings().weight.detach()
    ids = node.tokenizer.convert_tokens_to_ids([U.glm_token(k) for k in range(24)])
    rows = emb[ids]
    coords = fsq_coordinates(LEVELS["glm"])
    # row distances are a linear image of coordinate distances: exactly rank-3 rows
    assert torch.linalg.matrix_rank(rows - rows.mean(0)) <= 3
    near = (rows[0] - rows[1]).norm()  # one step on the first digit
    far = (rows[0] - rows[23]).norm()  # opposite corner of the grid
    assert (coords[0] - coords[1]).norm() < (coords[0] - coords[23]).norm() and near < far
    text_ids = node.tokenizer.convert_tokens_to_ids(list("abc"))
    assert rows.norm(dim=1).mean() == pytest.approx(float(emb.norm(dim=1).mean()), rel=0.5)
    assert torch.isfinite(emb[text_ids]).all()


def test_plain_config_keeps_random_rows_and_bad_levels_are_refused():
    node = build({})
    ids = node.tokenizer.convert_tokens_to_ids([U.glm_token(k) for k in range(24)])
    assert torch.linalg.matrix_rank(node.lm.get_input_embeddings().weight.detach()[ids]) > 3
    with pytest.raises(DragomanError, match=r"code_levels.glm \[4, 4\] give 16 codes but the vocabulary has 24"):
        build({"glm": [4, 4]})
    with pytest.raises(DragomanError, match="unknown codebook 'speech'"):
        build({"speech": [2, 2]})


def test_training_config_keeps_only_levels_that_fit_the_cache(capsys):
    from dragoman.nodes.code_rows import levels_fitting

    kept = levels_fitting({"glm": [8, 8, 8, 6, 5], "semantic": [5, 4]}, COUNTS)
    assert kept == {"semantic": [5, 4]}
    assert "code_levels.glm [8, 8, 8, 6, 5] do not match this cache's 24 codes" in capsys.readouterr().out
