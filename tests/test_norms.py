import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import brute_balance, brute_group_norm, brute_min_max_weight, \
    brute_rescaled
from strategies import group_nets, unit_dags
from toy_nets import chain

import dagnet
from dagnet.norms import dead_units

PQ = [(1, 1), (2, 2), (2, 1), (1, 2), (3, 1.5), (2, math.inf), (math.inf, 2),
      (math.inf, math.inf)]
LEMMA_RTOL = 1e-8  # the solver's tolerance is 1e-10 in log space, times the depth


def rescaled(net, seed, low=-2, high=2):
    rng = np.random.default_rng(seed)
    return dagnet.rescale(net, {u: 10 ** rng.uniform(low, high)
                                for v in net.hidden for u in net.units(v)})


@st.composite
def lemma_nets(draw):
    """Layered nets with one output and no bias: Lemma 3.1 applies."""
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    net = dagnet.layered([draw(st.integers(1, 3))] + sizes + [1], bias=False,
                         groups=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))
    return rescaled(net, draw(st.integers(0, 2**31)))


class TestGroupNorm:
    @given(unit_dags(), st.sampled_from(PQ))
    def test_matches_reference(self, net, pq):
        assert dagnet.group_norm(net, *pq) == pytest.approx(brute_group_norm(net, *pq),
                                                            rel=1e-12)

    @given(group_nets(), st.sampled_from(PQ))
    def test_group_net_equals_expansion(self, net, pq):
        assert dagnet.group_norm(net, *pq) == pytest.approx(
            dagnet.group_norm(net.expand(), *pq), rel=1e-12)

    def test_weight_decay_is_mu_22_squared(self):
        net = dagnet.layered([3, 4, 2], seed=1)
        total = sum(np.sum(net.weight_matrix(u, v) ** 2) for u, v in net.edges)
        assert dagnet.group_norm(net, 2, 2) ** 2 == pytest.approx(total, rel=1e-12)

    @given(unit_dags(), st.sampled_from([1, 2, math.inf]))
    def test_per_unit_norm_is_q_inf(self, net, p):
        assert dagnet.per_unit_norm(net, p) == dagnet.group_norm(net, p, math.inf)

    @pytest.mark.parametrize("pq", [(0.5, 2), (2, 0)])
    def test_bad_p_or_q(self, pq):
        with pytest.raises(ValueError, match="p must be >= 1"):
            dagnet.group_norm(dagnet.layered([2, 2, 1]), *pq)


class TestMinPerUnitNorm:
    @given(lemma_nets(), st.sampled_from([1, 1.5, 2, 3, math.inf]))
    def test_lemma_3_1(self, net, p):
        opt = dagnet.min_per_unit_norm(net, p)
        assert opt.converged and opt.attained
        assert opt.value ** dagnet.depth(net) == pytest.approx(dagnet.path_norm(net, p),
                                                               rel=LEMMA_RTOL)

    @given(unit_dags(), st.sampled_from([1, 2, math.inf]), st.integers(0, 2**31))
    def test_invariant_under_rescaling(self, net, p, seed):
        a, b = dagnet.min_per_unit_norm(net, p), dagnet.min_per_unit_norm(
            rescaled(net, seed), p)
        assert a.value == pytest.approx(b.value, rel=1e-8)

    @given(unit_dags(), st.sampled_from([1, 2, 3]))
    def test_minimiser_is_in_the_class_and_no_worse(self, net, p):
        opt = dagnet.min_per_unit_norm(net, p)
        expected = brute_rescaled(net, opt.factors)
        for u, v in net.edges:
            assert opt.net.weight(u, v) == pytest.approx(expected[u, v], rel=1e-12)
        assert opt.value == pytest.approx(dagnet.per_unit_norm(opt.net, p), rel=1e-12)
        assert opt.value <= dagnet.per_unit_norm(net, p) * (1 + 1e-12)

    @given(unit_dags(), st.sampled_from([1, 2]), st.integers(0, 2**31))
    def test_random_rescalings_of_the_minimiser_do_not_beat_it(self, net, p, seed):
        opt = dagnet.min_per_unit_norm(net, p)
        for k in range(5):
            near = rescaled(opt.net, seed + k, -0.01, 0.01) if net.hidden else opt.net
            assert dagnet.per_unit_norm(near, p) >= opt.value * (1 - 1e-9)

    @given(unit_dags())
    def test_p_inf_matches_bellman_ford_bisection(self, net):
        assert dagnet.min_per_unit_norm(net, math.inf).value == pytest.approx(
            brute_min_max_weight(net), rel=1e-9)

    @given(group_nets(), st.sampled_from([1, 2, math.inf]))
    def test_group_net_equals_expansion(self, net, p):
        a, b = dagnet.min_per_unit_norm(net, p), dagnet.min_per_unit_norm(net.expand(), p)
        assert a.value == pytest.approx(b.value, rel=1e-9)
        assert set(a.factors) == set(b.factors) == {
            u for v in net.hidden for u in net.units(v)}

    def test_unattained_infimum_is_reported(self):
        net = dagnet.layered([1, 1, 1], bias=False, groups=False, skips=[(0, 2)])
        net = net.with_weights({("input", "hidden1"): 0.0, ("hidden1", "output"): 5.0,
                                ("input", "output"): 1.0})
        opt = dagnet.min_per_unit_norm(net)
        assert (opt.value, opt.factors, opt.attained) == (1.0, {"hidden1": math.inf}, False)
        assert opt.net.weight("hidden1", "output") == 0.0
        np.testing.assert_array_equal(dagnet.path_vector(opt.net), dagnet.path_vector(net))

    def test_no_output_path_sends_factor_to_zero(self):
        net = dagnet.layered([1, 1, 1], bias=False, groups=False, skips=[(0, 2)])
        net = net.with_weights({("input", "hidden1"): 7.0, ("hidden1", "output"): 0.0,
                                ("input", "output"): 2.0})
        opt = dagnet.min_per_unit_norm(net, 2)
        assert (opt.value, opt.factors, opt.attained) == (2.0, {"hidden1": 0.0}, False)


class TestDeadUnits:
    def test_chain_of_dead_units_in_topological_order(self):
        net = dagnet.layered([1, 1, 1, 1], bias=False, groups=False, skips=[(0, 3)])
        net = net.with_weights({("input", "hidden1"): 0.0})
        assert dead_units(net) == (["hidden1", "hidden2"], [])

    def test_tanh_unit_anchors_paths(self):
        g = nx.DiGraph()
        g.add_node("x", role="input")
        g.add_node("t", role="hidden", activation="tanh")
        g.add_node("h", role="hidden")
        g.add_node("y", role="output")
        g.add_edge("x", "t", weight=0.0)
        g.add_edge("t", "h", weight=1.0)
        g.add_edge("h", "y", weight=1.0)
        assert dead_units(dagnet.DagNet(g)) == ([], [])


class TestBalance:
    @given(unit_dags(), st.integers(0, 2**31))
    def test_matches_coordinate_descent_reference(self, net, seed):
        net = rescaled(net, seed, -1, 1)
        opt = dagnet.balance(net)
        assert opt.converged
        brute = brute_balance(net)
        for e in net.edges:
            assert opt.net.weight(*e) == pytest.approx(brute[e], rel=1e-6, abs=1e-12), e

    @given(unit_dags(), st.integers(0, 2**31))
    def test_in_norm_equals_out_norm_and_sum_is_minimal(self, net, seed):
        net = rescaled(net, seed)
        opt = dagnet.balance(net)
        g = opt.net.graph
        for h in net.hidden:
            into = sum(w ** 2 for _, _, w in g.in_edges(h, "weight"))
            out = sum(w ** 2 for _, _, w in g.out_edges(h, "weight"))
            assert into == pytest.approx(out, rel=1e-9), h
        assert opt.value == pytest.approx(dagnet.group_norm(opt.net, 2, 2) ** 2, rel=1e-12)
        assert opt.value <= dagnet.group_norm(net, 2, 2) ** 2 * (1 + 1e-12)

    @given(unit_dags(), st.integers(0, 2**31))
    def test_equivalent_nets_have_one_balanced_form(self, net, seed):
        a, b = dagnet.balance(net).net, dagnet.balance(rescaled(net, seed)).net
        for e in net.edges:
            assert a.weight(*e) == pytest.approx(b.weight(*e), rel=1e-8, abs=1e-14), e

    @given(group_nets())
    def test_group_net_equals_expansion(self, net):
        a, b = dagnet.balance(net), dagnet.balance(net.expand())
        assert a.value == pytest.approx(b.value, rel=1e-12)
        expanded = a.net.expand()
        for e in b.net.edges:
            assert expanded.weight(*e) == pytest.approx(b.net.weight(*e), rel=1e-10), e

    def test_refuses_unit_without_nonzero_input_path(self):
        net = dagnet.layered([2, 2, 1], bias=False, groups=False)
        net = net.with_weights({(("input", i), ("hidden1", 1)): 0.0 for i in range(2)})
        with pytest.raises(ValueError, match=r"hidden unit \('hidden1', 1\) has no path "
                                             r"of nonzero weights from a source"):
            dagnet.balance(net)

    def test_refuses_unit_without_nonzero_output_path(self):
        net = dagnet.layered([2, 2, 1], bias=False, groups=False)
        net = net.with_weights({(("hidden1", 0), "output"): 0.0})
        with pytest.raises(ValueError, match=r"\('hidden1', 0\) has no path of nonzero "
                                             r"weights to an output"):
            dagnet.balance(net)

    def test_reports_non_convergence(self):
        net = rescaled(dagnet.layered([2, 3, 3, 1], groups=False), 0)
        opt = dagnet.balance(net, max_iter=1)
        assert (opt.iterations, opt.converged) == (1, False)


class TestExtremeWeights:
    """Weights whose squares (or cubes) are out of float64's range."""

    @pytest.mark.parametrize("p", [1, 2, 3, 1.5, 50, math.inf])
    def test_scaled_norm_matches_numpy_in_range(self, p):
        x = np.random.default_rng(0).standard_normal(7)
        assert dagnet.norms.scaled_norm(x, p) == pytest.approx(np.linalg.norm(x, ord=p),
                                                               rel=1e-13)
        assert dagnet.norms.scaled_norm(x * 1e300, p) == pytest.approx(
            np.linalg.norm(x, ord=p) * 1e300, rel=1e-13)
        assert dagnet.norms.scaled_norm(x * 1e-300, p) == pytest.approx(
            np.linalg.norm(x, ord=p) * 1e-300, rel=1e-13)

    def test_scaled_norm_saturates_only_out_of_range(self):
        assert dagnet.norms.scaled_norm([1e308, 1e308], 1) == math.inf
        assert dagnet.norms.scaled_norm([], 2) == 0.0
        assert dagnet.norms.scaled_norm([0.0, -0.0], 3) == 0.0

    def test_group_norm(self):
        net = chain([1e200, 1e-200])
        assert dagnet.group_norm(net) == pytest.approx(1e200, rel=1e-14)
        assert dagnet.per_unit_norm(net) == pytest.approx(1e200, rel=1e-14)
        assert dagnet.group_norm(chain([1e150, 1e-150]), 3, 1) == pytest.approx(1e150,
                                                                                rel=1e-14)
        assert dagnet.group_norm(chain([1e-200, 1e-200]), 2, 2) == pytest.approx(
            math.sqrt(2) * 1e-200, rel=1e-14)

    @pytest.mark.parametrize("ws", [[1e200, 1e-200], [1e60, 1e-60], [1e-300, 1e300],
                                    [1e-150, 1e-150, 1e300]])
    def test_balance_of_a_chain_has_unit_weights(self, ws):
        opt = dagnet.balance(chain(ws))
        assert opt.converged
        assert opt.value == pytest.approx(len(ws), rel=1e-9)
        for e in opt.net.edges:
            assert opt.net.weight(*e) == pytest.approx(1.0, rel=1e-9), e

    def test_balance_with_inputs_of_opposite_extremes(self):
        # in-edges 1e200 and 1e-200, out-edge 1: c^2 (1e400 + 1e-400) = 1 / c^2
        g = nx.DiGraph()
        g.add_nodes_from(["x0", "x1"], role="input")
        g.add_node("h", role="hidden")
        g.add_node("y", role="output")
        g.add_edges_from([("x0", "h", {"weight": 1e200}), ("x1", "h", {"weight": 1e-200}),
                          ("h", "y", {"weight": 1.0})])
        opt = dagnet.balance(dagnet.DagNet(g))
        assert opt.converged
        assert opt.factors["h"] == pytest.approx(1e-100, rel=1e-9)
        assert opt.value == pytest.approx(2e200, rel=1e-9)
        assert opt.net.weight("h", "y") == pytest.approx(1e100, rel=1e-9)

    def test_balance_of_units_of_very_different_scales(self):
        g = nx.DiGraph()
        g.add_node("x", role="input")
        g.add_node("y", role="output")
        for i, (a, b) in enumerate([(1e200, 1e-200), (1e-100, 1e-100), (1e150, 1e150)]):
            g.add_node(f"h{i}", role="hidden")
            g.add_edges_from([("x", f"h{i}", {"weight": a}), (f"h{i}", "y", {"weight": b})])
        opt = dagnet.balance(dagnet.DagNet(g))
        assert opt.converged
        expected = {"h0": 1.0, "h1": 1e-100, "h2": 1e150}  # |w| = sqrt(path product)
        for u, v, w in opt.net.graph.edges(data="weight"):
            assert w == pytest.approx(expected[u if v == "y" else v], rel=1e-9), (u, v)
        assert opt.value == pytest.approx(2e300, rel=1e-9)

    def test_balance_of_a_rescaled_net_is_unchanged(self):
        net = dagnet.layered([4, 6, 6, 2], seed=0)
        a = dagnet.balance(net)
        b = dagnet.balance(dagnet.rescale(net, {"hidden1": 1e150, "hidden2": 1e-150}))
        assert a.converged and b.converged
        assert b.value == pytest.approx(a.value, rel=1e-12)
        for e in net.edges:
            np.testing.assert_allclose(b.net.weight(*e), a.net.weight(*e), rtol=1e-12)
