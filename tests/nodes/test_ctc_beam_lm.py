"""CTC prefix beam search with a character n-gram LM (dragoman.nodes.ctc_lm) and its use in the
ContentTokenizer: LM weight 0 = greedy, normalised LM distributions, an LM that decides an
acoustically ambiguous frame, and a `dragoman node lm` checkpoint that round-trips and loads
with weights_only."""
import json
import math
import tarfile

import numpy as np
import pytest
import torch
import yaml

from dragoman.graphs.cli import main
from dragoman.nodes.content_tokenizer import ContentTokenizer
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.ctc_lm import EOS, CharNgramLM, FusionScorer, ctc_prefix_beam_search
from dragoman.nodes.text_units import BLANK, ctc_greedy

UNITS = [BLANK, " ", "'", "a", "b", "c", "d", "你", "好"]
ID = {u: i for i, u in enumerate(UNITS)}
TINY = {"vocab": UNITS, "chunk_seconds": 2.0,
        "net": {"dim": 32, "heads": 2, "ff_mult": 2, "encoder_layers": 1, "head_layers": 1, "upsampled_layers": 1,
                "fsq_levels": [5, 5, 5], "dropout": 0.0}}
EN_TEXTS = ["ab", "abd", "ab ab", "cd", "cd a"] * 4
ZH_TEXTS = ["你好", "好", "你好你好"]


def peaky(path: list[int], floor: float = -12.0) -> np.ndarray:
    """Log-probs [T, V]: each frame almost surely its unit of `path`."""
    lp = np.full((len(path), len(UNITS)), floor)
    lp[np.arange(len(path)), path] = 0.0
    return lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)


def ambiguous() -> np.ndarray:
    """'a', then one frame that is 'c' (p .55) or 'b' (p .45), then silence: greedy writes 'ac'."""
    lp = peaky([ID["a"], ID["a"], 0, ID["c"], 0, 0])
    lp[3] = -30.0
    lp[3, ID["c"]], lp[3, ID["b"]] = math.log(0.55), math.log(0.45)
    return lp


def en_scorer(order: int = 3) -> FusionScorer:
    return FusionScorer(CharNgramLM.estimate(EN_TEXTS, order, [" ", "'", "a", "b", "c", "d"]), UNITS)


def test_beam_search_without_lm_weight_is_greedy():
    rng = np.random.default_rng(0)
    paths = [[ID["a"], ID["a"], 0, ID["a"], ID["b"], ID[" "], ID["你"], ID["你"], ID["c"]],  # repeats, blank-split double
             [0, 0, 0], [ID["d"]]]
    paths += [rng.choice([0, 0, 0, *range(1, len(UNITS))], size=int(rng.integers(1, 40))).tolist() for _ in range(30)]
    for path in paths:
        lp = peaky(path)
        greedy = ctc_greedy(lp.argmax(-1).tolist())
        assert ctc_prefix_beam_search(lp, beam=8) == greedy, path
        assert ctc_prefix_beam_search(lp, beam=8, lm=en_scorer(), lm_weight=0.0) == greedy, path


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_lm_distributions_sum_to_one_and_survive_text_round_trip(order):
    lm = CharNgramLM.estimate(EN_TEXTS, order, [" ", "'", "a", "b", "c", "d"])
    assert lm.symbols[-1] == EOS and len(lm.symbols) == 7
    again = CharNgramLM.from_text(lm.to_text(), lm.symbols[:-1])
    assert again.order == order and again.counts == lm.counts
    for context in ["", "a", "ab", "cd a", "dddd", "'''", "ab ab ab ab"]:  # seen, unseen, longer than the order
        p = lm.distribution(context)
        assert p.shape == (7,) and (p > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(again.distribution(context), p)
    if order >= 2:  # 'a' is followed by 'b' in every training text that has 'ab'
        p = lm.distribution("a")
        assert p[lm.index["b"]] > 0.5 and p[lm.index["b"]] > p[lm.index["c"]]
    assert lm.log_prob("ab") > lm.log_prob("ac")


def test_lm_flips_an_acoustically_ambiguous_character():
    lp = ambiguous()
    assert ctc_greedy(lp.argmax(-1).tolist()) == [ID["a"], ID["c"]]
    assert ctc_prefix_beam_search(lp, beam=8, lm=en_scorer(), lm_weight=0.0) == [ID["a"], ID["c"]]
    assert ctc_prefix_beam_search(lp, beam=8, lm=en_scorer(), lm_weight=0.5) == [ID["a"], ID["b"]]
    # the scorer masks units the LM cannot write (the other language) with -inf
    logp, log_eos = en_scorer()((ID["a"],))
    assert logp[ID["你"]] == -math.inf and logp[0] == -math.inf and log_eos < 0


def test_length_bonus_keeps_a_weak_character():
    """Each written unit costs LM probability; the bonus pays it back, so a second 'b' the
    acoustics half-support (LM: log P(b | b) = -4.8, weighted -2.4) survives a bonus of 3 and
    is dropped without one."""
    lp = peaky([ID["a"], 0, ID["b"], 0, ID["b"], 0])
    lp[4] = -30.0
    lp[4, ID["b"]], lp[4, 0] = math.log(0.5), math.log(0.5)
    scorer = en_scorer(order=2)
    without = ctc_prefix_beam_search(lp, beam=8, lm=scorer, lm_weight=0.5, length_bonus=0.0)
    with_bonus = ctc_prefix_beam_search(lp, beam=8, lm=scorer, lm_weight=0.5, length_bonus=3.0)
    assert without == [ID["a"], ID["b"]] and with_bonus == [ID["a"], ID["b"], ID["b"]]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny untrained node saved, then `dragoman node lm` run on a toy transcript manifest."""
    root = tmp_path_factory.mktemp("lm")
    torch.manual_seed(0)
    node = ContentTokenizer(TINY).eval()
    node.save_to(str(root / "plain.nemo"))
    rows = [{"text": t.upper(), "lang": "en"} for t in EN_TEXTS] + [{"text": t + "。", "lang": "zh"} for t in ZH_TEXTS]
    (root / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    code = main(["node", "lm", "content_tokenizer", "--manifest", str(root / "train.jsonl"), "--checkpoint",
                 str(root / "plain.nemo"), "-o", str(root / "out" / "lm.nemo"), "--order-en", "3",
                 "--weight-zh", "0.7", "--bonus-zh", "1.5"])
    assert code == 0
    return node, root / "out" / "lm.nemo"


def test_built_checkpoint_round_trips_and_loads_with_weights_only(built):
    node, path = built
    with tarfile.open(path) as tar:
        names = tar.getnames()
        cfg = yaml.safe_load(tar.extractfile(next(n for n in names if n.endswith("model_config.yaml"))))
        weights = torch.load(tar.extractfile(next(n for n in names if n.endswith("model_weights.ckpt"))),
                             weights_only=True)
    assert set(weights) == set(node.state_dict())  # the LM adds no tensors, only config text
    expected = CharNgramLM.estimate(EN_TEXTS, 3, [" ", "'", "a", "b", "c", "d"])  # upper case, punctuation normalised away
    assert cfg["decoding"]["en"]["ngrams"] == expected.to_text() and cfg["decoding"]["en"]["order"] == 3
    assert CharNgramLM.from_text(cfg["decoding"]["zh"]["ngrams"], ["你", "好"]).order == 3
    assert (cfg["decoding"]["zh"]["weight"], cfg["decoding"]["zh"]["length_bonus"]) == (0.7, 1.5)
    assert cfg["decoding"]["en"]["weight"] == node.cfg.decoding.en.weight  # not given: the config's

    restored = ContentTokenizer.restore_from(path)
    assert restored.cfg.decoding.en.ngrams == expected.to_text()
    wavs = [torch.randn(16000) * 0.2, torch.randn(9000) * 0.2]
    assert all(torch.equal(a, b) for a, b in zip(restored.tokenize(wavs), node.tokenize(wavs)))  # tokens unchanged
    assert restored.transcribe(wavs) == node.transcribe(wavs)  # no language given: greedy in both


def test_node_decodes_with_its_lm_only_where_the_language_has_one(built):
    node, path = built
    restored = ContentTokenizer.restore_from(path)
    lp, frames = torch.from_numpy(ambiguous()).float()[None], torch.tensor([6])
    ac, ab = [ID["a"], ID["c"]], [ID["a"], ID["b"]]
    assert node._decode(lp, frames, ["en"]) == [ac]  # no LM in its config: greedy
    assert restored._decode(lp, frames, ["en"]) == [ab]
    assert restored._decode(lp, frames, [None]) == [ac]
    restored.cfg.decoding.beam = 1  # beam 1 or weight 0: greedy again
    assert restored._decode(lp, frames, ["en"]) == [ac]
    restored.cfg.decoding.beam, restored.cfg.decoding.en.weight = 16, 0.0
    assert restored._decode(lp, frames, ["en"]) == [ac]


def test_lm_needs_transcripts_of_both_languages():
    node = ContentTokenizer(TINY)
    with pytest.raises(DragomanError, match="lang=zh"):
        node.set_recognizer_lm([{"text": "ab", "lang": "en"}])
