import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import brute_count, brute_gamma, brute_path_norm, brute_path_products
from strategies import group_nets, unit_dags
from toy_nets import chain

import dagnet
from dagnet.enumeration import enumerated_path_norm, path_scaling_enumerated

RTOL = 1e-12
PS = [1, 2, 3, 1.5, math.inf]


def factors(net, seed):
    """Random rescaling factors 10^U(-2, 2) for every hidden unit."""
    rng = np.random.default_rng(seed)
    return {u: 10 ** rng.uniform(-2, 2) for v in net.hidden for u in net.units(v)}


class TestCountPaths:
    @given(unit_dags())
    def test_matches_listing(self, net):
        assert dagnet.count_paths(net) == brute_count(net)

    @given(group_nets())
    def test_group_nets_count_unit_paths(self, net):
        assert dagnet.count_paths(net) == brute_count(net.expand())

    def test_paper_network_is_exact(self):
        net = dagnet.layered([784, 4000, 4000, 10])
        # input paths, bias paths into hidden1, into hidden2, and bias -> output
        expected = 784 * 4000 * 4000 * 10 + 4000 * 4000 * 10 + 4000 * 10 + 10
        assert dagnet.count_paths(net) == expected

    def test_huge_counts_stay_integers(self):
        net = dagnet.layered([10] * 30, bias=False)
        assert dagnet.count_paths(net) == 10 ** 30


class TestPaths:
    @given(unit_dags())
    def test_same_paths_as_reference(self, net):
        listed = list(dagnet.paths(net))
        assert len(listed) == len(set(listed)) == brute_count(net)
        assert set(listed) == set(brute_path_products(net))

    def test_group_paths_use_unit_names(self):
        net = dagnet.layered([1, 2, 1], bias=False)
        assert list(dagnet.paths(net)) == [("input", ("hidden1", 0), "output"),
                                           ("input", ("hidden1", 1), "output")]

    def test_bias_paths_start_at_the_bias(self):
        net = dagnet.layered([1, 1, 1], groups=False)
        starts = sorted(P[0] for P in dagnet.paths(net))
        assert starts == ["bias", "bias", "input"]

    def test_refuses_above_limit_with_the_count(self):
        net = dagnet.layered([2, 3, 3, 1], bias=False)
        with pytest.raises(ValueError, match="has 18 input-to-output paths, over limit=17"):
            dagnet.paths(net, limit=17)
        with pytest.raises(ValueError, match="over limit=5"):
            dagnet.path_vector(net, limit=5)
        with pytest.raises(ValueError, match="over limit=5"):
            path_scaling_enumerated(net, 2, limit=5)
        assert len(list(dagnet.paths(net, limit=18))) == 18


class TestPathVector:
    @given(unit_dags())
    def test_matches_reference_products(self, net):
        pi = dagnet.path_vector(net)
        assert pi.dtype == np.float64
        expected = brute_path_products(net)
        got = dict(zip(dagnet.paths(net), pi))
        for P, prod in expected.items():
            assert got[P] == pytest.approx(prod, rel=RTOL, abs=1e-300)

    @given(unit_dags(), st.integers(0, 2**31))
    def test_invariant_under_rescaling(self, net, seed):
        pi = dagnet.path_vector(net)
        rescaled = dagnet.path_vector(dagnet.rescale(net, factors(net, seed))) \
            if net.hidden else pi
        np.testing.assert_allclose(rescaled, pi, rtol=1e-12, atol=0)

    @given(group_nets())
    def test_group_net_equals_expansion(self, net):
        np.testing.assert_array_equal(dagnet.path_vector(net),
                                      dagnet.path_vector(net.expand()))

    def test_empty_when_no_paths_reach_output_through_weights(self):
        net = dagnet.layered([2, 2, 1], bias=False, groups=False)
        pi = dagnet.path_vector(net.with_weights({e: 0.0 for e in net.edges}))
        np.testing.assert_array_equal(pi, np.zeros(4))


class TestEnumeratedNorms:
    @given(unit_dags(), st.sampled_from(PS))
    def test_path_norm_enumerate_matches_dp_and_reference(self, net, p):
        enum = dagnet.path_norm(net, p, method="enumerate")
        assert enum == pytest.approx(brute_path_norm(net, p), rel=RTOL)
        assert enum == pytest.approx(dagnet.path_norm(net, p), rel=1e-10)

    @given(unit_dags(), st.sampled_from(PS), st.integers(0, 2**31))
    def test_path_norm_invariant_under_rescaling(self, net, p, seed):
        if not net.hidden:
            return
        rescaled = dagnet.rescale(net, factors(net, seed))
        assert dagnet.path_norm(rescaled, p) == pytest.approx(dagnet.path_norm(net, p),
                                                              rel=1e-10)

    @given(unit_dags(), st.sampled_from(PS))
    def test_scaling_enumerate_matches_reference_and_dp(self, net, p):
        enum = dagnet.path_scaling(net, p, method="enumerate")
        dp, brute = dagnet.path_scaling(net, p), brute_gamma(net, p)
        assert list(enum) == net.edges
        for e in net.edges:
            assert enum[e] == pytest.approx(brute[e], rel=RTOL, abs=1e-300), e
            assert enum[e] == pytest.approx(dp[e], rel=1e-10, abs=1e-300), e

    @given(group_nets(), st.sampled_from([1, 2, math.inf]))
    def test_group_scaling_has_weight_shapes_and_expansion_values(self, net, p):
        enum = dagnet.path_scaling(net, p, method="enumerate")
        unit = dagnet.path_scaling(net.expand(), p, method="enumerate")
        for u, v in net.edges:
            assert np.shape(enum[u, v]) == np.shape(net.weight(u, v))
            gamma = np.reshape(enum[u, v], (net.size(v), net.size(u)))
            for i, vi in enumerate(net.units(v)):
                for j, uj in enumerate(net.units(u)):
                    assert gamma[i, j] == unit[uj, vi]

    def test_zero_weight_on_the_edge_itself_is_exact(self):
        net = dagnet.layered([1, 1, 1], bias=False, groups=False)
        net = net.with_weights({("input", "hidden1"): 0.0, ("hidden1", "output"): 3.0})
        assert path_scaling_enumerated(net, 2) == {("input", "hidden1"): 9.0,
                                                   ("hidden1", "output"): 0.0}

    def test_bad_p(self):
        with pytest.raises(ValueError, match="p must be >= 1"):
            path_scaling_enumerated(dagnet.layered([1, 1, 1]), 0.5)

    def test_compiled_modules_are_read_back(self):
        import torch

        net = dagnet.layered([2, 3, 2], skips=[(0, 2)], seed=1)
        module = net.compile(dtype=torch.float64)
        assert dagnet.count_paths(module) == dagnet.count_paths(net)
        np.testing.assert_array_equal(dagnet.path_vector(module), dagnet.path_vector(net))
        assert dagnet.path_norm(module, 2, method="enumerate") == pytest.approx(
            dagnet.path_norm(module, 2), rel=1e-12)
        for e, g in dagnet.path_scaling(module, 2, method="enumerate").items():
            np.testing.assert_allclose(g, dagnet.path_scaling(net, 2)[e], rtol=1e-12)


class TestExtremeWeights:
    """Products far outside float64's range on the way, results inside it."""

    @pytest.mark.parametrize("p", [1, 2, 3, math.inf])
    def test_path_norm_of_a_product_near_the_bottom_of_the_range(self, p):
        assert enumerated_path_norm(chain([1e-150, 1e-150]), p) == pytest.approx(
            1e-300, rel=1e-14)

    @pytest.mark.parametrize("p", [1, 2, 3, math.inf])
    def test_intermediate_products_may_overflow(self, p):
        net = chain([1e200, 1e200, 1e-200, 1e-200])
        np.testing.assert_allclose(dagnet.path_vector(net), [1.0], rtol=1e-14)
        assert enumerated_path_norm(net, p) == pytest.approx(1.0, rel=1e-14)

    def test_norm_of_many_paths_is_scaled(self):
        net = dagnet.layered([1, 4, 1], bias=False, groups=False)
        net = net.with_weights({e: 1e-100 for e in net.edges})
        # four products of 1e-200: the sum of their cubes, 4e-600, underflows
        assert enumerated_path_norm(net, 3) == pytest.approx(4 ** (1 / 3) * 1e-200,
                                                             rel=1e-14)

    def test_scaling_of_representable_values(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gamma = path_scaling_enumerated(chain([1e150, 1e-150]), 3)
        assert gamma[("x", "h0")] == pytest.approx(1e-300, rel=1e-14)
        assert gamma[("h0", "y")] == pytest.approx(1e300, rel=1e-14)

    def test_scaling_saturates_without_errors(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gamma = path_scaling_enumerated(chain([1e200, 1e-200]), 2)
            pi = dagnet.path_vector(chain([1e200, 1e200]))
            phi = enumerated_path_norm(chain([1e-200, 1e-200]), 2)
        assert gamma == {("x", "h0"): 0.0, ("h0", "y"): math.inf}  # 1e-400, 1e400
        assert pi.tolist() == [math.inf] and phi == 0.0

    @given(unit_dags(), st.sampled_from(PS))
    def test_enumerated_path_norm_matches_reference(self, net, p):
        assert enumerated_path_norm(net, p) == pytest.approx(brute_path_norm(net, p),
                                                             rel=RTOL)

    def test_enumerated_path_norm_guards(self):
        with pytest.raises(ValueError, match="p must be >= 1"):
            enumerated_path_norm(chain([1.0, 1.0]), 0.5)
        with pytest.raises(ValueError, match="has 18 input-to-output paths, over limit=5"):
            enumerated_path_norm(dagnet.layered([2, 3, 3, 1], bias=False), limit=5)
