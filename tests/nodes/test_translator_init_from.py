"""`init_from` a translator with another vocabulary (a retrained semantic codebook, new text
characters): layers copied, token rows copied by name, new tokens keep their fresh rows."""
import pytest
import torch

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.errors import CheckpointError
from dragoman.nodes.translator import Translator

TINY_LM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 256}
COUNTS = {"num_global": 16, "num_semantic": 20, "num_glm": 24, "num_emotion": 6}


def build(seed, semantic=20, chars="abc", lm=TINY_LM, tied=True, **extra):
    torch.manual_seed(seed)
    return Translator({"lm": {**lm, "tie_word_embeddings": tied}, "tokens": {**COUNTS, "num_semantic": semantic},
                       "text_chars": list(chars), "code_levels": {"semantic": [5, 4] if semantic == 20 else [3, 3]}, **extra})


def rows(node, names):
    emb = node.lm.get_input_embeddings().weight
    return emb[[node.tokenizer.stoi[n] for n in names]]


@pytest.mark.parametrize("tied", [True, False])
def test_rows_follow_token_names_and_layers_are_copied(tied):
    source, target = build(0, 20, "abc", tied=tied), build(1, 9, "abd", tied=tied)
    fresh = {n: r.clone() for n, r in zip(target.tokenizer.itos, target.lm.get_input_embeddings().weight)}
    target.load_weights_from(source)

    # The semantic codebook changed size, so it is a retrained one: none of its rows is copied.
    semantic = {U.semantic_token(k) for k in range(9)}
    shared = [n for n in target.tokenizer.itos if n in source.tokenizer.stoi and n not in semantic]
    assert U.global_token(3) in shared and "a" in shared and "d" not in shared
    assert torch.equal(rows(target, shared), rows(source, shared))
    assert torch.equal(rows(target, sorted(semantic)), torch.stack([fresh[n] for n in sorted(semantic)]))
    if not tied:
        head_t, head_s = target.lm.get_output_embeddings().weight, source.lm.get_output_embeddings().weight
        ids_t = [target.tokenizer.stoi[n] for n in shared]
        ids_s = [source.tokenizer.stoi[n] for n in shared]
        assert torch.equal(head_t[ids_t], head_s[ids_s])
    assert torch.equal(rows(target, ["d"])[0], fresh["d"])  # the source has no "d": fresh row kept
    layers_t = {k: v for k, v in target.lm.state_dict().items() if "layers" in k or k.endswith("norm.weight")}
    layers_s = source.lm.state_dict()
    assert layers_t and all(torch.equal(v, layers_s[k]) for k, v in layers_t.items())


def test_transplanted_model_scores_shared_text_like_its_source():
    source, target = build(0, 20, "abc"), build(1, 9, "abc")
    target.load_weights_from(source)
    text = [source.tokenizer.stoi[c] for c in "abcab"]
    mapped = [target.tokenizer.stoi[source.tokenizer.itos[i]] for i in text]
    with torch.no_grad():
        a = source.lm(torch.tensor([text])).logits[0]
        b = target.lm(torch.tensor([mapped])).logits[0]
    ids_s = [source.tokenizer.stoi[c] for c in "abc"]
    ids_t = [target.tokenizer.stoi[c] for c in "abc"]
    torch.testing.assert_close(b[:, ids_t], a[:, ids_s])


def test_other_layer_shapes_are_refused_by_name():
    source = build(0, lm={**TINY_LM, "hidden_size": 48, "intermediate_size": 64})
    target = build(1, semantic=9)
    with pytest.raises(CheckpointError, match=r"init_from: .* is \(\d+, 48\) in the source translator"):
        target.load_weights_from(source)


def test_same_vocabulary_loads_strictly():
    source, target = build(0), build(1)
    target.load_weights_from(source)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_a_named_fresh_codebook_of_the_same_size_is_not_copied():
    source, target = build(0), build(1, fresh_codebooks=["semantic"])
    before = rows(target, [U.semantic_token(k) for k in range(20)]).clone()
    target.load_weights_from(source)
    assert torch.equal(rows(target, [U.semantic_token(k) for k in range(20)]), before)
    assert torch.equal(rows(target, [U.glm_token(5), "b"]), rows(source, [U.glm_token(5), "b"]))
    with pytest.raises(Exception, match="unknown codebooks \\['semantics'\\]"):
        build(1, fresh_codebooks=["semantics"]).load_weights_from(source)
