import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reference import evaluate
from strategies import group_nets, unit_dags

import dagnet
from dagnet import DagNet

ATOL, RTOL = 1e-12, 1e-10


def run(module, x):
    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float64)).numpy()


class TestAgainstReference:
    @given(unit_dags(), st.sampled_from([0.0, 0.3, 2.0]))
    def test_random_dags(self, net, sparse_below):
        x = np.random.default_rng(0).standard_normal((7, net.n_inputs))
        module = net.compile(dtype=torch.float64, sparse_below=sparse_below)
        np.testing.assert_allclose(run(module, x), evaluate(net, x), rtol=RTOL, atol=ATOL)

    @given(group_nets())
    def test_group_nets_match_their_expansion(self, net):
        x = np.random.default_rng(1).standard_normal((5, net.n_inputs))
        grouped = run(net.compile(dtype=torch.float64), x)
        expanded = run(net.expand().compile(dtype=torch.float64), x)
        np.testing.assert_allclose(grouped, evaluate(net, x), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(expanded, grouped, rtol=RTOL, atol=ATOL)

    def test_mixed_activations_and_outputs_at_several_levels(self):
        g = nx.DiGraph()
        g.add_node("x", role="input")
        g.add_node("y_early", role="output")
        for i, act in enumerate(["tanh", "relu", "sigmoid", "leaky_relu", "linear"]):
            g.add_node(f"h{i}", role="hidden", activation=act)
            g.add_edge("x", f"h{i}", weight=0.3 * i - 0.7)
        g.add_node("y", role="output")
        for i in range(5):
            g.add_edge(f"h{i}", "y", weight=1.0 + i)
        g.add_edge("x", "y_early", weight=2.0)
        net = DagNet(g)
        x = np.linspace(-2, 2, 9)[:, None]
        module = net.compile(dtype=torch.float64)
        np.testing.assert_allclose(run(module, x), evaluate(net, x), rtol=RTOL, atol=ATOL)
        assert run(module, x)[:, 0].tolist() == (2 * x[:, 0]).tolist()

    def test_layered_net_uses_only_dense_blocks(self):
        module = dagnet.layered([20, 30, 30, 5], skips=[(0, 3)]).compile()
        assert {b.kind for b in module.blocks} == {"dense"}
        assert module.level_sizes == [20, 30, 30, 5]

    def test_matches_equivalent_sequential(self):
        net = dagnet.layered([6, 5, 4, 3], seed=3)
        seq = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(),
                                  torch.nn.Linear(5, 4), torch.nn.ReLU(),
                                  torch.nn.Linear(4, 3)).double()
        with torch.no_grad():
            for lin, (a, b) in zip(seq[::2], [("input", "hidden1"), ("hidden1", "hidden2"),
                                             ("hidden2", "output")]):
                lin.weight.copy_(torch.tensor(net.weight(a, b)))
                lin.bias.copy_(torch.tensor(net.weight("bias", b)[:, 0]))
        x = torch.randn(8, 6, dtype=torch.float64)
        module = net.compile(dtype=torch.float64)
        torch.testing.assert_close(module(x), seq(x), rtol=0, atol=1e-14)


class TestExport:
    @given(unit_dags(), st.sampled_from([0.0, 2.0]))
    def test_round_trip_is_bit_exact(self, net, sparse_below):
        back = net.compile(dtype=torch.float64, sparse_below=sparse_below).to_dagnet()
        assert back.edges == net.edges
        for u, v in net.edges:
            assert back.weight(u, v) == net.weight(u, v)
            assert type(back.weight(u, v)) is float

    @given(group_nets())
    def test_group_round_trip(self, net):
        back = net.compile(dtype=torch.float64).to_dagnet()
        for u, v in net.edges:
            np.testing.assert_array_equal(back.weight(u, v), net.weight(u, v))
        assert nx.utils.graphs_equal(
            nx.DiGraph(back.graph.edges), nx.DiGraph(net.graph.edges))

    def test_one_parameter_entry_per_edge(self):
        net = dagnet.random_dag(4, 12, 3, edge_prob=0.3, seed=5)
        for sparse_below in (0.0, 2.0):
            module = net.compile(sparse_below=sparse_below)
            assert sum(w.numel() for w in module.parameters()) == net.n_params

    def test_trained_weights_are_written_back(self):
        net = dagnet.random_dag(3, 5, 2, seed=2)
        module = net.compile(dtype=torch.float64)
        with torch.no_grad():
            for w in module.parameters():
                w.add_(1.0)
        back = module.to_dagnet()
        for u, v in net.edges:
            assert back.weight(u, v) == pytest.approx(net.weight(u, v) + 1.0, abs=1e-15)


class TestModule:
    def test_wrong_input_shape(self):
        module = dagnet.layered([3, 4, 2]).compile()
        with pytest.raises(ValueError, match=r"shape \(batch, 3\); got \(5, 4\)"):
            module(torch.zeros(5, 4))

    def test_wrong_input_dtype(self):
        module = dagnet.layered([3, 4, 2]).compile(dtype=torch.float64)
        with pytest.raises(ValueError, match="dtype torch.float64; got torch.float32"):
            module(torch.zeros(5, 3))

    @pytest.mark.parametrize("bad", [-1.0, float("nan")])
    def test_bad_sparse_threshold(self, bad):
        with pytest.raises(ValueError, match="sparse_below must be a density"):
            dagnet.layered([3, 4, 2]).compile(sparse_below=bad)

    def test_dropout_only_in_training(self):
        module = dagnet.layered([10, 50, 2], seed=0).compile(dropout=0.5)
        x = torch.randn(4, 10)
        module.eval()
        torch.testing.assert_close(module(x), module(x))
        module.train()
        torch.manual_seed(0)
        a = module(x)
        torch.manual_seed(1)
        assert not torch.allclose(a, module(x))

    def test_dtype_and_device_options(self):
        module = dagnet.layered([3, 4, 2]).compile(dtype=torch.float64, device="cpu")
        assert all(w.dtype == torch.float64 for w in module.parameters())
        assert module(torch.zeros(1, 3, dtype=torch.float64)).shape == (1, 2)

    def test_gradients_flow_through_every_kind(self):
        net = dagnet.random_dag(3, 8, 2, edge_prob=0.4, seed=9)
        for sparse_below in (0.0, 2.0):
            module = net.compile(dtype=torch.float64, sparse_below=sparse_below)
            module(torch.randn(6, 3, dtype=torch.float64)).sum().backward()
            assert all(w.grad is not None for w in module.parameters())

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    def test_cuda_matches_cpu(self):
        net = dagnet.random_dag(3, 8, 2, seed=1)
        x = torch.randn(5, 3, dtype=torch.float64)
        cpu = net.compile(dtype=torch.float64)
        gpu = net.compile(dtype=torch.float64).to("cuda")
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x))
