import math
import re

import networkx as nx
import numpy as np
import pytest
import torch

import dagnet
from dagnet import DagNet, NetworkError


def toy():
    g = nx.DiGraph()
    g.add_node("x1", role="input")
    g.add_node("x2", role="input")
    g.add_node("b", role="bias")
    g.add_node("h", role="hidden")
    g.add_node("y", role="output")
    g.add_edges_from([("x1", "h"), ("x2", "h"), ("b", "h"), ("h", "y"), ("x1", "y")],
                     weight=1.5)
    return g


class TestValidation:
    def test_valid_toy(self):
        net = DagNet.from_networkx(toy())
        assert net.inputs == ["x1", "x2"] and net.outputs == ["y"]
        assert net.bias == "b" and net.hidden == ["h"]
        assert net.activation("h") == "relu"

    def test_cycle(self):
        g = toy()
        g.add_node("h2", role="hidden")
        g.add_edge("h", "h2", weight=1.0)
        g.add_edge("h2", "h", weight=1.0)
        with pytest.raises(NetworkError, match="cycle"):
            DagNet(g)

    @pytest.mark.parametrize("edge, match", [
        (("h", "x1"), "enters input node 'x1'"),
        (("h", "b"), "enters bias node 'b'"),
    ])
    def test_edge_into_source(self, edge, match):
        g = toy()
        g.add_edge(*edge, weight=1.0)
        with pytest.raises(NetworkError, match=match):
            DagNet(g)

    def test_edge_out_of_output(self):
        g = toy()
        g.add_node("y2", role="output")
        g.add_edge("y", "y2", weight=1.0)
        with pytest.raises(NetworkError, match="leaves output node 'y'"):
            DagNet(g)

    def test_unknown_role_and_activation(self):
        g = toy()
        g.nodes["h"]["role"] = "hiden"
        with pytest.raises(NetworkError, match="node 'h' has role 'hiden'"):
            DagNet(g)
        g = toy()
        g.nodes["h"]["activation"] = "swish"
        with pytest.raises(NetworkError, match="node 'h' has activation 'swish'"):
            DagNet(g)

    @pytest.mark.parametrize("w, match", [
        (None, "no 'weight'"), (math.nan, "non-finite weight nan"),
        (math.inf, "non-finite"), ("abc", "non-numeric"),
    ])
    def test_bad_weights(self, w, match):
        g = toy()
        if w is None:
            del g.edges["h", "y"]["weight"]
        else:
            g.edges["h", "y"]["weight"] = w
        with pytest.raises(NetworkError, match=f"edge 'h' -> 'y' has {match}"):
            DagNet(g)

    def test_shape_mismatch(self):
        g = toy()
        g.nodes["h"]["size"] = 3
        with pytest.raises(NetworkError, match=r"edge 'x1' -> 'h' has a weight of shape "
                                               r"\(\); the node sizes require \(3, 1\)"):
            DagNet(g)

    def test_unreachable_hidden(self):
        g = toy()
        g.add_node("dead", role="hidden")
        g.add_edge("b", "dead", weight=1.0)
        g.add_edge("dead", "y", weight=1.0)
        g.add_node("sink", role="hidden")
        g.add_edge("x1", "sink", weight=1.0)
        with pytest.raises(NetworkError, match=r"\['dead', 'sink'\].*prune=True"):
            DagNet(g)
        net = DagNet(g, prune=True)
        assert set(net.hidden) == {"h"}
        assert "dead" in g  # the user's graph is untouched

    def test_no_inputs_or_outputs(self):
        g = nx.DiGraph()
        g.add_node("y", role="output")
        with pytest.raises(NetworkError, match="no input node"):
            DagNet(g)
        g = nx.DiGraph()
        g.add_node("x", role="input")
        with pytest.raises(NetworkError, match="no output node"):
            DagNet(g)

    def test_two_biases_and_big_bias(self):
        g = toy()
        g.add_node("b2", role="bias")
        with pytest.raises(NetworkError, match="at most one bias"):
            DagNet(g)
        g = toy()
        g.nodes["b"]["size"] = 2
        with pytest.raises(NetworkError, match="bias node 'b' has size 2"):
            DagNet(g)

    def test_not_a_digraph(self):
        with pytest.raises(NetworkError, match="expected a networkx.DiGraph"):
            DagNet(nx.Graph())


class TestRoundTrip:
    def test_to_networkx_is_a_copy(self):
        net = dagnet.layered([3, 4, 2])
        g = net.to_networkx()
        g.edges["input", "hidden1"]["weight"][0, 0] = 99.0
        assert net.weight("input", "hidden1")[0, 0] != 99.0
        again = DagNet.from_networkx(g)
        assert again.weight("input", "hidden1")[0, 0] == 99.0

    def test_input_order_follows_insertion(self):
        g = nx.DiGraph()
        for v in ["z", "a", "m"]:
            g.add_node(v, role="input")
        g.add_node("o2", role="output")
        g.add_node("o1", role="output")
        g.add_edges_from([(u, o) for u in "zam" for o in ("o1", "o2")], weight=1.0)
        net = DagNet(g)
        assert net.inputs == ["z", "a", "m"] and net.outputs == ["o2", "o1"]


class TestBuilders:
    def test_layered_groups_and_units_agree(self):
        grouped = dagnet.layered([3, 2, 2], skips=[(0, 2)], seed=4)
        units = dagnet.layered([3, 2, 2], skips=[(0, 2)], seed=4, groups=False)
        assert units.graph.number_of_edges() == grouped.n_params
        w = grouped.weight("input", "output")
        assert units.weight(("input", 2), ("output", 1)) == w[1, 2]

    def test_balanced_init_statistics(self):
        net = dagnet.layered([400, 300, 10], bias=False, seed=0)
        w = net.weight("input", "hidden1")
        assert abs(w.std() * math.sqrt(400) - 1) < 0.01
        assert abs(w.mean()) < 0.005

    def test_bad_skip(self):
        with pytest.raises(ValueError, match=r"skip \(0, 1\)"):
            dagnet.layered([2, 3, 1], skips=[(0, 1)])
        with pytest.raises(ValueError, match=r"skip \(5, 9\) must join layers 0 <= i < j"):
            dagnet.layered([2, 3, 1], skips=[(5, 9)])

    @pytest.mark.parametrize("sizes", [[2.7, 1], [2, 0], [3], [True, 2]])
    def test_bad_sizes(self, sizes):
        with pytest.raises(ValueError, match="positive integer layer sizes"):
            dagnet.layered(sizes)

    @pytest.mark.parametrize("args, name", [
        ((0, 2, 1), "n_inputs"), ((2, -1, 1), "n_hidden"), ((2, 2, 0), "n_outputs")])
    def test_bad_random_dag(self, args, name):
        with pytest.raises(ValueError, match=f"{name} must be an integer"):
            dagnet.random_dag(*args)

    @pytest.mark.parametrize("seed", range(10))
    def test_random_dag_is_valid_and_seeded(self, seed):
        a = dagnet.random_dag(3, 6, 2, seed=seed)
        b = dagnet.random_dag(3, 6, 2, seed=seed)
        assert a.edges == b.edges
        assert all(np.isfinite(a.weight(u, v)) for u, v in a.edges)
        assert dagnet.depth(a) >= 1

    def test_expand_guard(self):
        net = dagnet.layered([100, 100, 10])
        with pytest.raises(ValueError, match="11110 edges, over max_edges=1000"):
            net.expand(max_edges=1000)


def test_weights_of_a_network_are_read_only():
    net = dagnet.layered([3, 4, 2])
    with pytest.raises(ValueError, match="read-only"):
        net.weight("input", "hidden1")[0, 0] = 99.0
    with pytest.raises(ValueError, match="read-only"):
        net.weight_matrix("input", "hidden1")[0, 0] = 99.0
    w = np.array(net.weight("input", "hidden1"))
    w[0, 0] = 99.0
    edited = net.with_weights({("input", "hidden1"): w})
    assert edited.weight("input", "hidden1")[0, 0] == 99


class TestMoreValidation:
    @pytest.mark.parametrize("w", [
        "1.5", b"1", True, np.bool_(False), np.complex128(1 + 2j), np.array([["2.0"]]),
        [[1 + 1j]]])
    def test_non_real_weights_are_refused(self, w):
        g = toy()
        g.edges["h", "y"]["weight"] = w
        with pytest.raises(NetworkError, match="edge 'h' -> 'y' has non-numeric weight"):
            DagNet(g)

    def test_node_named_like_a_unit_of_a_group(self):
        g = nx.DiGraph()
        g.add_node("x", role="input")
        g.add_node("h", role="hidden", size=2)
        g.add_node(("h", 0), role="hidden")
        g.add_node("y", role="output")
        g.add_edge("x", "h", weight=np.ones((2, 1)))
        g.add_edge("h", "y", weight=np.ones((1, 2)))
        g.add_edge("x", ("h", 0), weight=1.0)
        g.add_edge(("h", 0), "y", weight=1.0)
        with pytest.raises(NetworkError, match=r"node \('h', 0\) has the name of unit 0 "
                                               r"of group node 'h'"):
            DagNet(g)

    def test_unreachable_message_says_why(self):
        g = toy()
        g.add_node("const", role="hidden")
        g.add_edge("b", "const", weight=1.0)
        g.add_edge("const", "y", weight=1.0)
        with pytest.raises(NetworkError, match=r"no input reaches: \['const'\]"):
            DagNet(g)


class TestRescaleArguments:
    @pytest.mark.parametrize("unit", [("hidden1", -1), ("hidden1", True), ("hidden1", 5),
                                      ("hidden1", 1.0)])
    def test_bad_unit_index(self, unit):
        net = dagnet.layered([2, 3, 1])
        with pytest.raises(KeyError, match="has units 0..2"):
            dagnet.rescale(net, unit, 2.0)

    def test_no_hidden_units(self):
        net = dagnet.layered([2, 1])
        assert dagnet.random_rescale(net, 0).edges == net.edges
        assert dagnet.unbalanced(net).edges == net.edges
        with pytest.raises(ValueError, match="no hidden unit"):
            dagnet.random_rescale(net, 3)

    @pytest.mark.parametrize("kwargs, match", [
        ({"sigma": -0.5}, "sigma must be >= 0; got -0.5"),
        ({"sigma": math.nan}, "sigma must be a finite number; got nan"),
        ({"exponent": "uniform", "low": 3.0, "high": -3.0},
         "low must be <= high; got low=3.0, high=-3.0"),
        ({"base": 0.0}, "base must be > 0; got 0.0"),
        ({"n_units": True}, "n_units must be an integer >= 0; got True"),
        ({"n_units": -2}, "n_units must be an integer >= 0; got -2"),
        ({"n_units": 2.0}, r"n_units must be an integer >= 0; got 2\.0"),
    ])
    def test_bad_random_rescale_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            dagnet.random_rescale(dagnet.layered([2, 3, 1]), **kwargs)

    @pytest.mark.parametrize("c, shown", [
        (True, "True"), (1 + 2j, r"\(1\+2j\)"), (np.bool_(True), r"(np\.)?True_?"),
        ("2.0", "'2.0'"), (np.array([1.0, 2j, 1.0]), r"array\(\[1\.\+0\.j")])
    def test_non_real_factor_is_refused_by_value(self, c, shown):
        with pytest.raises(ValueError, match=f"rescaling factors must be real numbers; "
                                             f"got {shown}.* for 'hidden1'"):
            dagnet.rescale(dagnet.layered([2, 3, 1]), "hidden1", c)


class TestSmallGuards:
    @pytest.mark.parametrize("p", [1.5, -0.1, math.nan, True])
    def test_random_dag_edge_prob_must_be_a_probability(self, p):
        with pytest.raises(ValueError, match=f"edge_prob must be a probability in "
                                             f"\\[0, 1\\]; got {p!r}"):
            dagnet.random_dag(2, 3, 1, edge_prob=p)

    @pytest.mark.parametrize("p", [0, 1.0])
    def test_random_dag_edge_prob_ends_are_allowed(self, p):
        net = dagnet.random_dag(2, 3, 1, edge_prob=p, seed=0)
        assert len(net.hidden) == 3

    def test_huge_int_weight_names_the_edge(self):
        g = toy()
        g.edges["h", "y"]["weight"] = 10**400
        with pytest.raises(NetworkError, match=r"edge 'h' -> 'y' has a weight beyond "
                                               r"float64's range \(int of 401 digits\)"):
            DagNet(g)
        g = nx.DiGraph()
        g.add_node("x", role="input")
        g.add_node("y", role="output", size=2)
        g.add_edge("x", "y", weight=[[10**400], [1]])
        with pytest.raises(NetworkError, match="edge 'x' -> 'y' has weights beyond "
                                               "float64's range"):
            DagNet(g)
        g.edges["x", "y"]["weight"] = [[2**70], [1]]  # beyond int64, within float64
        assert DagNet(g).weight("x", "y")[0, 0] == 2.0**70

    @pytest.mark.parametrize("key", ["abc", ("h",), ("x1", "h", "y"), 5])
    def test_with_weights_key_must_be_an_edge(self, key):
        net = DagNet(toy())
        with pytest.raises(KeyError, match=re.escape(f"weights are keyed by edges (u, v); "
                                                      f"got key {key!r}")):
            net.with_weights({key: 1.0})


class TestOneGuard:
    """Every analysis function refuses what is not a network, by its type."""

    @pytest.mark.parametrize("fn", [
        dagnet.path_norm, dagnet.path_scaling, dagnet.depth, dagnet.layers_in,
        dagnet.layers_out, dagnet.count_paths, dagnet.paths, dagnet.path_vector,
        dagnet.group_norm, dagnet.per_unit_norm, dagnet.min_per_unit_norm, dagnet.balance,
        dagnet.canonical, dagnet.invariants, dagnet.balanced_init,
    ])
    def test_non_networks_are_a_type_error(self, fn):
        with pytest.raises(TypeError, match="net is a str; expected a DagNet or a comp"):
            fn("net")

    def test_a_plain_digraph_is_told_to_become_a_dagnet(self):
        with pytest.raises(TypeError, match=r"networkx DiGraph; build the network with "
                                            r"dagnet.DagNet\(g\) first"):
            dagnet.depth(toy())

    def test_compiled_modules_are_read_back(self):
        net = dagnet.layered([3, 4, 2], seed=0)
        module = net.compile(dtype=torch.float64)
        assert dagnet.depth(module) == dagnet.depth(net)
        assert dagnet.group_norm(module) == dagnet.group_norm(net)
        assert dagnet.balance(module).value == pytest.approx(dagnet.balance(net).value,
                                                              rel=1e-12)

    def test_rescale_points_compiled_modules_to_rescale_module_(self):
        module = dagnet.layered([3, 4, 2], seed=0).compile()
        with pytest.raises(TypeError, match="use rescale_module_"):
            dagnet.rescale(module, "hidden1", 2.0)

    def test_balance_of_a_network_without_edges(self):
        g = nx.DiGraph()
        g.add_node("x", role="input")
        g.add_node("y", role="output")
        assert dagnet.balance(DagNet(g)).value == 0.0


class TestCompileArguments:
    @pytest.mark.parametrize("dtype", [torch.int64, "float64", np.float64])
    def test_dtype_must_be_a_floating_torch_dtype(self, dtype):
        with pytest.raises(TypeError, match="dtype must be a floating torch.dtype"):
            dagnet.layered([3, 4, 2]).compile(dtype=dtype)

    def test_unknown_device_is_named(self):
        with pytest.raises(ValueError, match="device 'nope' is not a torch device"):
            dagnet.layered([3, 4, 2]).compile(device="nope")

    def test_forward_wants_a_tensor(self):
        module = dagnet.layered([3, 4, 2]).compile()
        with pytest.raises(TypeError, match=r"expected a torch.Tensor of shape "
                                            r"\(batch, 3\); got ndarray"):
            module(np.zeros((2, 3)))
