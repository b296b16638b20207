import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import brute_gamma, brute_path_norm
from strategies import group_nets, unit_dags
from toy_nets import chain

import dagnet

RTOL = 1e-10
PS = [1, 2, 3, 1.5, math.inf]


class TestPathNorm:
    @given(unit_dags(), st.sampled_from(PS))
    def test_dp_matches_enumeration(self, net, p):
        assert dagnet.path_norm(net, p) == pytest.approx(brute_path_norm(net, p), rel=RTOL)

    @given(group_nets(), st.sampled_from(PS))
    def test_group_nets(self, net, p):
        assert dagnet.path_norm(net, p) == pytest.approx(brute_path_norm(net, p), rel=RTOL)

    def test_huge_values_do_not_overflow(self):
        net = dagnet.layered([1] * 40, bias=False, groups=False)
        net = net.with_weights({e: 1e20 for e in net.edges})
        # 39 edges of 1e20: phi = 1e780, beyond float64 on a linear scale
        assert dagnet.path_norm(net, 2) == math.inf
        net = net.with_weights({e: 1e7 for e in net.edges})
        assert dagnet.path_norm(net, 2) == pytest.approx(1e273, rel=1e-9)

    def test_zero_weights(self):
        net = dagnet.layered([2, 2, 1], bias=False, groups=False)
        assert dagnet.path_norm(net.with_weights({e: 0.0 for e in net.edges})) == 0.0

    @pytest.mark.parametrize("p", [0.5, -1, "two"])
    def test_bad_p(self, p):
        with pytest.raises(ValueError, match="p must be"):
            dagnet.path_norm(dagnet.layered([2, 2, 1]), p)


class TestPathScaling:
    @given(unit_dags(), st.sampled_from(PS))
    def test_dp_matches_enumeration(self, net, p):
        dp, brute = dagnet.path_scaling(net, p), brute_gamma(net, p)
        assert list(dp) == net.edges
        for e in net.edges:
            assert dp[e] == pytest.approx(brute[e], rel=RTOL, abs=1e-300), e

    @given(group_nets(), st.sampled_from([1, 2, math.inf]))
    def test_group_nets_match_expansion(self, net, p):
        dp = dagnet.path_scaling(net, p)
        brute = brute_gamma(net, p)
        for u, v in net.edges:
            gamma = np.asarray(dp[u, v])
            assert gamma.shape == np.shape(net.weight(u, v))
            gamma = gamma.reshape(net.size(v), net.size(u))
            for i, vi in enumerate(net.units(v)):
                for j, uj in enumerate(net.units(u)):
                    assert gamma[i, j] == pytest.approx(brute[uj, vi], rel=RTOL)

    def test_dead_unit_gives_zero_not_nan(self):
        net = dagnet.layered([2, 3, 1], groups=False, seed=0)
        dead = {("input", i): 0.0 for i in range(2)}
        net = net.with_weights({(u, ("hidden1", 0)): 0.0 for u in dead} |
                               {("bias", ("hidden1", 0)): 0.0})
        gamma = dagnet.path_scaling(net)
        assert gamma[("hidden1", 0), "output"] == 0.0
        assert all(np.isfinite(g) for g in gamma.values())


class TestExtremeScales:
    """|w|^p must not over- or underflow where the answer is representable."""

    @pytest.mark.parametrize("weights, p, expected", [
        ([1e150, 1e-150], 3, 1.0), ([1e200, 1e-200], 2, 1.0),
        ([1e-310, 1e300], 1, 1e-10), ([1e-150, 1e-150], 2, 1e-300),
    ])
    @pytest.mark.parametrize("method", ["dp", "enumerate"])
    def test_path_norm_of_chains(self, weights, p, expected, method):
        assert dagnet.path_norm(chain(weights), p, method=method) == pytest.approx(
            expected, rel=1e-12)

    def test_path_scaling_of_a_chain(self):
        gamma = dagnet.path_scaling(chain([1e150, 1e-150]), 3)
        assert gamma["x", "h0"] == pytest.approx(1e-300, rel=1e-12)  # (1e-150^3)^(2/3)
        assert gamma["h0", "y"] == pytest.approx(1e300, rel=1e-12)

    @pytest.mark.parametrize("factors", [{"hidden1": 1e60, "hidden2": 1e-60},
                                         {"hidden1": 1e110}])
    def test_invariance_under_huge_rescalings(self, factors):
        net = dagnet.layered([4, 6, 6, 2], seed=0)
        expected = dagnet.path_norm(net, 3)
        assert dagnet.path_norm(dagnet.rescale(net, factors), 3) == pytest.approx(
            expected, rel=1e-12)

    def test_float32_module(self):
        import torch

        net = dagnet.layered([4, 6, 6, 2], seed=0)
        module = dagnet.rescale(net, {"hidden1": 1e20}).compile(dtype=torch.float32)
        assert dagnet.path_norm(module, 2) == pytest.approx(dagnet.path_norm(net, 2),
                                                             rel=1e-5)


@pytest.mark.parametrize("fn", [dagnet.path_norm, dagnet.path_scaling])
def test_enumeration_limit_zero_is_a_limit(fn):
    with pytest.raises(ValueError, match="1 input-to-output path, over limit=0"):
        fn(chain([1.0, 2.0]), 2, method="enumerate", limit=0)
