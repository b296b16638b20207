import math
import re

import networkx as nx
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
import torch
from reference import all_paths, brute_canonical, brute_factors, brute_rescaled, evaluate
from strategies import group_nets, unit_dags
from toy_nets import chain, tanh_net

import dagnet


def random_factors(net, seed, low=-2, high=2):
    rng = np.random.default_rng(seed)
    return {u: 10 ** rng.uniform(low, high) for v in net.hidden for u in net.units(v)}


def with_unit_weight(net, edge, fn):
    """``net`` (unit level) with one weight replaced by ``fn(weight)``."""
    return net.with_weights({edge: fn(net.weight(*edge))})


def flip(net, h):
    """Negate every weight into and out of unit ``h`` (c = -1)."""
    g = net.graph
    return net.with_weights({e: -net.weight(*e)
                             for e in list(g.in_edges(h)) + list(g.out_edges(h))})


class TestRescalingInvariance:
    @given(unit_dags(), st.integers(0, 2**31))
    def test_function_and_signs_are_invariant(self, net, seed):
        c = random_factors(net, seed)
        other = dagnet.rescale(net, c) if c else net.copy()
        x = np.random.default_rng(seed).standard_normal((7, net.n_inputs))
        np.testing.assert_allclose(evaluate(other, x), evaluate(net, x), rtol=1e-9,
                                   atol=1e-12)
        for e in net.edges:
            assert np.sign(other.weight(*e)) == np.sign(net.weight(*e))
        for e, w in brute_rescaled(net, c).items():
            assert other.weight(*e) == pytest.approx(w, rel=1e-14)

    @given(group_nets(), st.integers(0, 2**31))
    def test_compiled_in_place_rescaling_matches(self, net, seed):
        c = random_factors(net, seed)
        module = net.compile(dtype=torch.float64)
        x = torch.as_tensor(np.random.default_rng(seed).standard_normal((5, net.n_inputs)))
        before = module(x).detach().numpy()
        for unit, factor in c.items():
            dagnet.rescale_module_(module, unit, factor)
        expected = dagnet.rescale(net, c)
        for e in net.edges:
            np.testing.assert_allclose(module.to_dagnet().weight_matrix(*e),
                                       expected.weight_matrix(*e), rtol=1e-14, atol=0)
        np.testing.assert_allclose(module(x).detach().numpy(), before, rtol=1e-9,
                                   atol=1e-12)


class TestRescalingMatrix:
    @given(unit_dags())
    def test_entries(self, net):
        B, edges, units = dagnet.rescaling_matrix(net)
        assert edges == net.edges and units == net.hidden
        for (u, v), row in zip(edges, B):
            expected = [float(v == h) - float(u == h) for h in units]
            assert row.tolist() == expected

    @given(unit_dags())
    def test_full_column_rank_when_every_unit_is_on_a_path(self, net):
        B, _, units = dagnet.rescaling_matrix(net)
        assert (np.linalg.matrix_rank(B) if B.size else 0) == len(units)

    @given(group_nets())
    def test_group_net_rows_follow_expansion(self, net):
        B, edges, units = dagnet.rescaling_matrix(net)
        B2, edges2, units2 = dagnet.rescaling_matrix(net.expand())
        assert (edges, units) == (edges2, units2)
        np.testing.assert_array_equal(B, B2)


class TestEquivalent:
    @given(unit_dags(), st.integers(0, 2**31))
    def test_recovers_the_factors(self, net, seed):
        c = random_factors(net, seed)
        other = dagnet.rescale(net, c) if c else net.copy()
        found = dagnet.equivalent(net, other)
        assert found is not None and set(found) == set(net.hidden)
        for h in net.hidden:
            assert found[h] == pytest.approx(c[h], rel=1e-10)
        assert brute_factors(net, other) == pytest.approx(found, rel=1e-9)

    @given(group_nets(), st.integers(0, 2**31))
    def test_group_net_equals_expansion(self, net, seed):
        other = dagnet.rescale(net, random_factors(net, seed))
        a = dagnet.equivalent(net, other)
        b = dagnet.equivalent(net.expand(), other.expand())
        assert a == pytest.approx(b, rel=1e-12)
        rebuilt = dagnet.rescale(net, a)
        for e in net.edges:
            np.testing.assert_allclose(rebuilt.weight_matrix(*e), other.weight_matrix(*e),
                                       rtol=1e-10, atol=0)

    @given(unit_dags(max_hidden=4), st.integers(0, 2**31))
    def test_refuses_every_single_1e_minus_6_perturbation(self, net, seed):
        other = dagnet.rescale(net, random_factors(net, seed)) if net.hidden else net
        for e in net.edges:
            bumped = with_unit_weight(other, e, lambda w: w * (1 + 1e-6))
            assert dagnet.equivalent(net, bumped) is None, e

    @given(unit_dags(), st.integers(0, 2**31), st.data())
    def test_refuses_a_sign_flip_around_a_unit(self, net, seed, data):
        if not net.hidden:
            return
        h = data.draw(st.sampled_from(net.hidden))
        flipped = flip(dagnet.rescale(net, random_factors(net, seed)), h)
        assert dagnet.equivalent(net, flipped) is None
        # ... although every path product is unchanged
        np.testing.assert_allclose(dagnet.path_vector(flipped), dagnet.path_vector(net),
                                   rtol=1e-9)

    def test_zero_pattern_must_match(self):
        net = dagnet.layered([2, 2, 1], bias=False, groups=False, seed=0)
        e = net.edges[0]
        assert dagnet.equivalent(net, with_unit_weight(net, e, lambda w: 0.0)) is None
        assert dagnet.equivalent(with_unit_weight(net, e, lambda w: 0.0), net) is None

    def test_weight_made_free_by_a_zero_is_a_rescaling(self):
        net = dagnet.layered([1, 1, 1], bias=False, groups=False, skips=[(0, 2)])
        net = net.with_weights({("input", "hidden1"): 0.0, ("hidden1", "output"): 5.0,
                                ("input", "output"): 1.0})
        other = with_unit_weight(net, ("hidden1", "output"), lambda w: 2.0)
        assert dagnet.equivalent(net, other) == pytest.approx({"hidden1": 2.5})

    def test_non_homogeneous_units_are_not_rescaled(self):
        net = tanh_net()
        assert dagnet.equivalent(net, dagnet.rescale(net, "h", 3.0)) == pytest.approx(
            {"h": 3.0})
        moved = net.with_weights({("x", "t"): 4.0, ("t", "h"): -0.5, ("t", "y"): 0.75})
        assert dagnet.equivalent(net, moved) is None

    def test_different_graphs_name_the_difference(self):
        a = dagnet.layered([2, 2, 1], bias=False, groups=False)
        b = dagnet.layered([2, 2, 1], bias=True, groups=False)
        with pytest.raises(ValueError, match="node 'bias' is missing from the first"):
            dagnet.equivalent(a, b)
        g = b.to_networkx()
        g.remove_edge("bias", "output")
        with pytest.raises(ValueError, match="edge 'bias' -> 'output' is missing from "
                                             "the second"):
            dagnet.equivalent(b, dagnet.DagNet(g))
        g = a.to_networkx()
        g.nodes["hidden1", 0]["activation"] = "linear"
        with pytest.raises(ValueError, match=r"node \('hidden1', 0\) has activation "
                                             r"'relu' in the first network and 'linear'"):
            dagnet.equivalent(a, dagnet.DagNet(g))


def two_input_net(order):
    """x0, x1 (added in ``order``) -> h -> y and x0 -> y, with fixed weights."""
    g = nx.DiGraph()
    for x in order:
        g.add_node(x, role="input")
    g.add_node("h", role="hidden")
    g.add_node("y", role="output")
    g.add_edges_from([("x0", "h", {"weight": 2.0}), ("x1", "h", {"weight": -1.0}),
                      ("h", "y", {"weight": 3.0}), ("x0", "y", {"weight": 0.5})])
    return dagnet.DagNet(g)


class TestEquivalentDecision:
    def test_one_perturbed_weight_of_a_deep_chain_is_refused(self):
        # the residual of one 1e-6 bump spreads to 1e-6 / 1200 per edge, but the
        # one path product changes by 1e-6
        net = chain([1.0] * 1200)
        e = net.edges[600]
        bumped = net.with_weights({e: 1 + 1e-6})
        x = np.ones((1, 1))
        np.testing.assert_allclose(evaluate(bumped, x), evaluate(net, x) * (1 + 1e-6),
                                   rtol=1e-13, atol=0)  # the function moves by 1e-6
        assert dagnet.equivalent(net, bumped) is None
        assert dagnet.equivalent(net, net.with_weights({e: 1 + 1e-12})) is not None

    def test_deep_chain_rescaled_is_accepted_and_its_bumps_refused(self):
        net = chain(list(np.random.default_rng(0).uniform(0.5, 2.0, 400)))
        c = random_factors(net, 1, low=-3, high=3)
        other = dagnet.rescale(net, c)
        found = dagnet.equivalent(net, other)
        assert found == pytest.approx(c, rel=1e-9)
        assert brute_factors(net, other) == pytest.approx(found, rel=1e-9)
        for e in (net.edges[0], net.edges[200], net.edges[-1]):
            bumped = with_unit_weight(other, e, lambda w: w * (1 + 1e-6))
            assert dagnet.equivalent(net, bumped) is None, e

    def test_tolerance_bounds_the_change_of_a_path_product(self):
        net = chain([1.0] * 50)
        bumped = net.with_weights({e: 1 + 1e-7 for e in net.edges[:10]})
        # the path product moves by ~1e-6, each weight by 1e-7
        assert dagnet.equivalent(net, bumped, tol=2e-6) is not None
        assert dagnet.equivalent(net, bumped, tol=5e-7) is None

    @pytest.mark.parametrize("tol", [math.nan, -1e-9, math.inf, True, "1e-9"])
    def test_bad_tol_is_refused_with_its_value(self, tol):
        net = chain([1.0, 2.0])
        with pytest.raises(ValueError, match=f"tol must be a finite number >= 0; got "
                                             f"{re.escape(repr(tol))}"):
            dagnet.equivalent(net, net, tol=tol)

    def test_input_order_must_match(self):
        a, b = two_input_net(["x0", "x1"]), two_input_net(["x1", "x0"])
        assert set(a.edges) == set(b.edges)
        x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        fa = a.compile(dtype=torch.float64)(x)
        fb = b.compile(dtype=torch.float64)(x)
        assert not torch.allclose(fa, fb)  # the same tensor, two functions
        with pytest.raises(ValueError, match=r"the inputs are ordered \['x0', 'x1'\] in "
                                             r"the first network and \['x1', 'x0'\] in "
                                             r"the second"):
            dagnet.equivalent(a, b)

    def test_output_order_must_match(self):
        a = dagnet.layered([2, 2, 1], bias=False, groups=False)
        g = nx.DiGraph()
        g.add_node("y1", role="output")
        g.add_nodes_from(a.to_networkx().nodes(data=True))
        g.add_edges_from(a.to_networkx().edges(data=True))
        g.add_edge(("hidden1", 0), "y1", weight=1.0)
        h = a.to_networkx()
        h.add_node("y1", role="output")
        h.add_edge(("hidden1", 0), "y1", weight=1.0)
        first, second = dagnet.DagNet(h), dagnet.DagNet(g)
        with pytest.raises(ValueError, match=r"the outputs are ordered \['output', "
                                             r"'y1'\] in the first network and "
                                             r"\['y1', 'output'\]"):
            dagnet.equivalent(first, second)

    def test_compiled_modules_are_read_back(self):
        net = dagnet.layered([3, 4, 2], seed=1)
        c = random_factors(net, 2)
        other = dagnet.rescale(net, c).compile(dtype=torch.float64)
        found = dagnet.equivalent(net.compile(dtype=torch.float64), other)
        assert found == pytest.approx(c, rel=1e-10)
        assert dagnet.equivalent(net, other) == pytest.approx(found, rel=1e-12)

    def test_other_objects_are_a_type_error(self):
        net = chain([1.0, 2.0])
        with pytest.raises(TypeError, match="the second network is a list; expected a "
                                            "DagNet or a compiled module"):
            dagnet.equivalent(net, [1.0, 2.0])
        with pytest.raises(TypeError, match="the first network is a networkx DiGraph"):
            dagnet.equivalent(net.to_networkx(), net)


class TestCanonical:
    @given(unit_dags(), st.sampled_from([1, 2, math.inf]), st.integers(0, 2**31))
    def test_equal_for_equivalent_nets(self, net, p, seed):
        a = dagnet.canonical(net, p)
        b = dagnet.canonical(dagnet.rescale(net, random_factors(net, seed))
                             if net.hidden else net, p)
        for e in net.edges:
            assert a.weight(*e) == pytest.approx(b.weight(*e), rel=1e-10, abs=1e-300), e

    @given(unit_dags(), st.sampled_from([1, 2, math.inf]))
    def test_matches_reference_and_normalises_every_unit(self, net, p):
        c, brute = dagnet.canonical(net, p), brute_canonical(net, p)
        for e in net.edges:
            assert c.weight(*e) == pytest.approx(brute[e], rel=1e-12), e
        for h in net.hidden:
            ins = [w for _, _, w in c.graph.in_edges(h, "weight")]
            assert np.linalg.norm(ins, ord=p) == pytest.approx(1.0, rel=1e-12)
        assert dagnet.equivalent(net, c) is not None

    @given(unit_dags(max_hidden=4), st.data())
    def test_differs_for_inequivalent_nets(self, net, data):
        e = data.draw(st.sampled_from(net.edges))
        assume(net.weight(*e) != 0)  # a zero weight stays zero: no change
        a = dagnet.canonical(net)
        b = dagnet.canonical(with_unit_weight(net, e, lambda w: w * (1 + 1e-6)))
        # The paths through e change by 1e-6 relative, so some edge of them
        # does by at least about 1e-6 / depth, whatever the weights' scale.
        change = max(abs(a.weight(*f) - b.weight(*f)) / abs(a.weight(*f))
                     for f in net.edges if a.weight(*f) != 0)
        assert change > 1e-8

    @given(group_nets(), st.sampled_from([1, 2]))
    def test_group_net_equals_expansion(self, net, p):
        a, b = dagnet.canonical(net, p).expand(), dagnet.canonical(net.expand(), p)
        for e in b.edges:
            assert a.weight(*e) == pytest.approx(b.weight(*e), rel=1e-12), e

    def test_unit_with_zero_inputs_is_left_alone(self):
        net = dagnet.layered([1, 2, 1], bias=False, groups=False)
        zero = ("input", ("hidden1", 0))
        net = net.with_weights({zero: 0.0, (("hidden1", 0), "output"): 5.0})
        c = dagnet.canonical(net)
        assert c.weight(("hidden1", 0), "output") == 5.0
        assert abs(c.weight("input", ("hidden1", 1))) == pytest.approx(1.0, rel=1e-12)


class TestInvariants:
    @given(unit_dags())
    def test_count_and_basis(self, net):
        inv = dagnet.invariants(net)
        assert inv.count == len(net.edges) - len(net.hidden) == len(inv.paths)
        index = {e: i for i, e in enumerate(net.edges)}
        X = np.zeros((len(inv.paths), len(net.edges)))
        for k, P in enumerate(inv.paths):
            X[k, [index[e] for e in zip(P, P[1:])]] = 1
        assert np.linalg.matrix_rank(X) == inv.count
        # every path's incidence vector is in their span
        g, listed = all_paths(net)
        Y = np.zeros((len(listed), len(net.edges)))
        for k, P in enumerate(listed):
            Y[k, [index[e] for e in zip(P, P[1:])]] = 1
        assert np.linalg.matrix_rank(np.vstack([X, Y])) == inv.count

    @given(unit_dags(), st.integers(0, 2**31))
    def test_basis_products_are_invariant(self, net, seed):
        rescaled = brute_rescaled(net, random_factors(net, seed))
        for P in dagnet.invariants(net).paths:
            before = math.prod(net.weight(*e) for e in zip(P, P[1:]))
            after = math.prod(rescaled[e] for e in zip(P, P[1:]))
            assert after == pytest.approx(before, rel=1e-10)

    @given(group_nets())
    def test_group_net_equals_expansion(self, net):
        assert dagnet.invariants(net) == dagnet.invariants(net.expand())

    def test_paths_miss_invariants_at_non_homogeneous_units(self):
        inv = dagnet.invariants(tanh_net())
        assert (inv.count, len(inv.paths)) == (4, 3)  # 5 edges, 1 rescalable unit


class TestCanonicalExtremeWeights:
    @pytest.mark.parametrize("p", [1, 2, 3, math.inf])
    @pytest.mark.parametrize("ws", [[1e200, 1e-200], [1e-300, 1e300],
                                    [1e-200, 1e-100, 1e300], [-1e200, 1e-200]])
    def test_equals_canonical_of_the_balanced_chain(self, ws, p):
        # every chain with path product 1 (up to sign) is equivalent to [1, ..., 1]
        c = dagnet.canonical(chain(ws), p)
        ones = dagnet.canonical(chain([math.copysign(1.0, ws[0])] + [1.0] * (len(ws) - 1)),
                                p)
        for e in c.edges:
            assert c.weight(*e) == pytest.approx(ones.weight(*e), rel=1e-14), e

    def test_matches_reference_after_huge_rescaling(self):
        net = dagnet.layered([3, 4, 4, 2], seed=2)
        far = dagnet.rescale(net, {"hidden1": 1e150, "hidden2": 1e-150})
        a, b = dagnet.canonical(net), dagnet.canonical(far)
        for e in net.edges:
            np.testing.assert_allclose(b.weight(*e), a.weight(*e), rtol=1e-13)

    def test_factor_out_of_range_is_refused_by_name(self):
        # c_h0 = 1e200, then the incoming weight of h1 is 1e-100 / 1e200 = 1e-300
        # and c_h1 = 1e300; the next one would be 1e500
        with pytest.raises(ValueError, match=r"canonical factor of unit 'h2' is .* "
                                             r"outside float64's range"):
            dagnet.canonical(chain([1e-200, 1e-100, 1e-200, 1.0]))
