"""FSQ against the released BiCodec formulas (UNISS_RELEASE item 12) and round trips."""
import math

import torch

from dragoman.nodes.modules.fsq import FSQ, codebook_usage


def test_bound_matches_bicodec_formula_for_four_levels():
    fsq = FSQ([4] * 6)
    z = torch.linspace(-4, 4, 60).view(10, 6)
    h = 3 * (1 + 1e-3) / 2
    expected = torch.tanh(z + math.atanh(0.5 / h)) * h - 0.5
    torch.testing.assert_close(fsq.bound(z), expected)


def test_index_is_mixed_radix_over_levels():
    fsq = FSQ([4] * 6)
    z = torch.randn(500, 6) * 3
    codes, ids = fsq(z)
    digits = torch.round(fsq.bound(z)).long() + 2  # level index 0..3 per channel
    assert torch.equal(ids, sum(digits[:, i] * 4**i for i in range(6)))
    assert int(ids.max()) < 4096


def test_indices_codes_round_trip_on_odd_levels():
    fsq = FSQ([8, 5, 5, 5])
    ids = torch.arange(fsq.codebook_size)
    assert torch.equal(fsq.codes_to_indices(fsq.indices_to_codes(ids)), ids)


def test_straight_through_gradient_flows():
    fsq = FSQ([5, 5])
    z = torch.randn(8, 2, requires_grad=True)
    fsq(z)[0].sum().backward()
    assert z.grad is not None and torch.all(z.grad != 0)


def test_codebook_usage_counts():
    usage = codebook_usage(torch.tensor([0, 1, 1, 3]), 4)
    assert usage["used_codes"] == 3
    assert abs(usage["perplexity"] - math.exp(-(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5)))) < 1e-6
