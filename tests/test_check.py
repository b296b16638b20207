import argparse
import json
import math
import re
import sys

import networkx as nx
import numpy as np
import pytest

from toy_nets import tanh_net

import dagnet
from dagnet import check


def parse(argv):
    parser = argparse.ArgumentParser()
    check.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def builtin_results():
    return check.run_checks()


def chain_file(path, w_in, w_out):
    """x -> h -> y with these two weights, as a node-link file."""
    path.write_text(json.dumps({
        "directed": True,
        "nodes": [{"id": "x", "role": "input"}, {"id": "h", "role": "hidden"},
                  {"id": "y", "role": "output"}],
        "edges": [{"source": "x", "target": "h", "weight": w_in},
                  {"source": "h", "target": "y", "weight": w_out}]}))
    return str(path)


def write_node_link(path, net=None, weights=True):
    net = net or dagnet.random_dag(2, 3, 1, seed=4)
    g = net.to_networkx()
    for _, _, d in g.edges(data=True):
        if weights:
            d["weight"] = np.asarray(d["weight"]).tolist()
        else:
            del d["weight"]
    path.write_text(json.dumps(nx.node_link_data(g, edges="links")))
    return net


class TestBuiltinSuite:
    def test_everything_passes(self, builtin_results):
        failed = [r for r in builtin_results if not r.passed]
        assert failed == []

    def test_covers_the_graphs_and_statements(self, builtin_results):
        graphs = {r.graph for r in builtin_results}
        assert {"fig1 1-2-1", "groups 3-4-2 +bias", "skips 2-3-3-1",
                "random 2-5-2 +bias"} <= graphs
        checks = " | ".join(r.check for r in builtin_results)
        for needle in ["function invariant", "pi(w) invariant", "phi_2 invariant",
                       "||w||_2", "phi_2: DP = enumeration", "gamma_2: DP = enumeration",
                       "Lemma 3.1 phi_2 = min mu^d", "Lemma 3.1 phi_2 vs min mu^d (skips)",
                       "Thm 4.1 Path-SGD, 1 step", "Thm 4.1 Path-SGD, 50 steps",
                       "SGD, 50 steps", "AdaGrad, 50 steps", "1e-6 perturbation",
                       "sign flip", "canonical(w) = canonical(rho w)", "balance(w)",
                       "invariants"]:
            assert needle in checks, needle

    def test_lemma_holds_exactly_where_its_conditions_do(self, builtin_results):
        lemma = {r.graph: r for r in builtin_results if r.check.startswith("Lemma")}
        for graph in ["fig1 1-2-1", "layered 2-3-3-1", "groups 3-4-4-1"]:
            assert lemma[graph].verdict == "pass" and lemma[graph].rel_error < 1e-8
        assert lemma["groups 3-4-2 +bias"].check.endswith("(bias, 2 outputs)")
        assert lemma["groups 3-4-2 +bias"].verdict.startswith("report: ")

    def test_sgd_and_adagrad_are_reported_not_failed(self, builtin_results):
        rows = [r for r in builtin_results if r.check.startswith(("SGD", "AdaGrad"))]
        assert rows and all(r.verdict == "report: differs" and r.rel_error > 1e-3
                            for r in rows)

    def test_table(self, builtin_results):
        table = check.format_table(builtin_results)
        lines = table.splitlines()
        assert lines[0].split() == ["check", "graph", "value", "reference", "rel.", "error",
                                    "verdict"]
        assert lines[-1] == f"{len(builtin_results)} checks: 0 failed, " \
            f"{sum(r.verdict.startswith('report') for r in builtin_results)} reported"
        assert len(lines) == len(builtin_results) + 3


class TestOptions:
    @pytest.mark.parametrize("p", [1, 3, math.inf])
    def test_other_p(self, p):
        results = check.run_checks([dagnet.random_dag(2, 3, 2, seed=1)], p=p, steps=3)
        assert all(r.passed for r in results)
        assert any(r.check == f"phi_{p:g}: DP = enumeration" for r in results)

    def test_limit_skips_enumeration(self):
        results = check.run_checks([("small", dagnet.layered([2, 3, 1]))], steps=2, limit=3)
        skipped = [r for r in results if r.verdict.startswith("skipped")]
        assert [r.check for r in skipped] == ["DP = enumeration"]
        assert all(r.passed for r in results)

    def test_bad_steps(self):
        with pytest.raises(ValueError, match="steps must be >= 1; got 0"):
            check.run_checks([dagnet.layered([1, 1, 1])], steps=0)

    def test_dead_unit_skips_balance(self):
        net = dagnet.layered([2, 2, 1], bias=False, groups=False, seed=0)
        net = net.with_weights({(("input", i), ("hidden1", 1)): 0.0 for i in range(2)})
        results = check.run_checks([("dead", net)], steps=2)
        verdicts = {r.verdict for r in results}
        assert {"skipped: a unit has no nonzero path",
                "skipped: a unit has all-zero inputs"} <= verdicts
        assert all(r.passed for r in results)


    def test_canonical_forms_apart_entry_by_entry(self, tmp_path, capsys):
        # the bumped weight 0.001 moves by 1e-9 against the largest weight, 1
        path = chain_file(tmp_path / "small.json", 0.001, 1.0)
        results = check.run_checks([check.load_net(path)], steps=2)
        row, = [r for r in results if r.check == "canonical(w) != canonical(perturbed)"]
        assert row.verdict == "pass" and row.rel_error == pytest.approx(1e-6, rel=1e-5)
        assert check.main(parse(["--graph", path, "--steps", "2"])) == 0
        assert "0 failed" in capsys.readouterr().out

    # gamma_p and the enumerated phi_p overflow on such weights (dagnet.pathnorm,
    # outside these rows)
    @pytest.mark.filterwarnings("ignore::RuntimeWarning:dagnet.pathnorm")
    @pytest.mark.filterwarnings("ignore:overflow encountered in dot:RuntimeWarning")
    def test_huge_weight_does_not_overflow_the_balance_rows(self, tmp_path):
        _, net = check.load_net(chain_file(tmp_path / "huge.json", 1e200, 1.0))
        results = {r.check: r for r in check.run_checks([("huge", net)], steps=1)}
        bal = results["balanced: in-norm = out-norm, min sum w^2"]
        assert bal.verdict == "pass" and bal.reference == math.inf
        assert bal.value == pytest.approx(2e200, rel=1e-12)  # two weights of 1e100
        assert results["balance(w) = balance(rho w)"].verdict == "pass"
        assert results["function invariant under rho"].value < math.inf

    def test_non_homogeneous_units_are_reported(self):
        results = check.run_checks([("tanh", tanh_net())], steps=3)
        assert all(r.passed for r in results)
        verdicts = {r.check.split(" (")[0]: r.verdict for r in results}
        assert verdicts["invariants: |E| - rank B = |E| - |H|"] == "report: paths give 3"
        assert verdicts["Thm 4.1 Path-SGD, 3 steps, commutes with rho"] == "pass"


class TestMain:
    def test_builtin_exit_zero(self, capsys):
        assert check.main(parse(["--steps", "2"])) == 0
        assert "0 failed" in capsys.readouterr().out

    def test_failure_exits_one(self, monkeypatch, capsys):
        real = check.path_norm

        def wrong(net, p=2, *, method="dp"):
            return real(net, p, method=method) * (1.5 if method == "dp" else 1.0)

        monkeypatch.setattr(check, "path_norm", wrong)
        assert check.main(parse(["--graph", "test_check:toy", "--steps", "2"])) == 1
        assert "FAIL" in capsys.readouterr().out

    def test_node_link_file(self, tmp_path, capsys):
        net = write_node_link(tmp_path / "toy.json")
        name, loaded = check.load_net(str(tmp_path / "toy.json"))
        assert name == "toy.json" and loaded.edges == net.edges
        for e in net.edges:
            assert loaded.weight(*e) == net.weight(*e)
        args = parse(["--graph", str(tmp_path / "toy.json"), "--steps", "2"])
        assert check.main(args) == 0
        out = capsys.readouterr().out
        assert "toy.json" in out and "fig1" not in out

    def test_node_link_file_without_weights_gets_balanced_init(self, tmp_path):
        net = write_node_link(tmp_path / "bare.json", dagnet.layered([3, 2, 1]),
                              weights=False)
        _, loaded = check.load_net(str(tmp_path / "bare.json"), seed=7)
        expected = dagnet.balanced_init(net, 7)
        for e in net.edges:
            np.testing.assert_array_equal(loaded.weight(*e), expected.weight(*e))

    def test_module_function_and_builtin(self, capsys):
        assert check.main(parse(["--graph", "test_check:toy", "--builtin",
                                 "--steps", "2"])) == 0
        out = capsys.readouterr().out
        assert "test_check:toy" in out and "fig1 1-2-1" in out

    def test_load_errors(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no graph file 'nope.json'"):
            check.load_net("nope.json")
        with pytest.raises(ValueError, match="gave a int; expected a DagNet"):
            check.load_net("test_check:not_a_net")

    @pytest.mark.parametrize("spec, match", [
        ("nosuchmodule:fn", r"'nosuchmodule:fn': cannot import module 'nosuchmodule'"),
        ("json:nosuchfn", r"'json:nosuchfn': module 'json' has no attribute 'nosuchfn'"),
        ("test_check:missing", r"'test_check:missing': module 'test_check' has no "
                               r"attribute 'missing'"),
        ("test_check:NOT_CALLABLE", r"'test_check:NOT_CALLABLE': "
                                    r"test_check.NOT_CALLABLE is a int, not a function"),
        ("test_check:needs_an_argument", r"'test_check:needs_an_argument': "
         r"test_check.needs_an_argument needs arguments \['n'\]; expected a function "
         r"called with none"),
        ("test_check:raises_type_error", r"'test_check:raises_type_error': "
         r"test_check.raises_type_error\(\) raised TypeError: not a graph size"),
        ("test_check:raises_runtime_error", r"'test_check:raises_runtime_error': "
         r"test_check.raises_runtime_error\(\) raised RuntimeError: boom"),
    ])
    def test_module_function_errors_name_the_spec(self, spec, match):
        with pytest.raises(ValueError, match=match):
            check.load_net(spec)

    def test_module_in_the_current_directory(self, tmp_path, monkeypatch):
        (tmp_path / "cwd_graphs_of_test_check.py").write_text(
            "from toy_nets import chain\n\ndef net():\n    return chain([2.0, 3.0])\n")
        (tmp_path / "cwd_broken_of_test_check.py").write_text("def net(:\n")
        monkeypatch.chdir(tmp_path)
        path = list(sys.path)
        try:
            name, net = check.load_net("cwd_graphs_of_test_check:net")
            assert name == "cwd_graphs_of_test_check:net"
            assert net.weight("h0", "y") == 3.0
            with pytest.raises(ValueError, match=r"'cwd_broken_of_test_check:net': "
                                                 r"importing module 'cwd_broken_of_test_"
                                                 r"check' raised SyntaxError"):
                check.load_net("cwd_broken_of_test_check:net")
        finally:
            sys.modules.pop("cwd_graphs_of_test_check", None)
        assert sys.path == path

    @pytest.mark.parametrize("content, match", [
        ("[1, 2]", r"holds an array; expected an object with \"nodes\""),
        ("{bad", r"is not valid JSON: Expecting property name"),
        ('{"directed": true, "edges": []}', r'needs a list of nodes under "nodes"; '
                                            r"found none"),
        ('{"nodes": {"x": 1}, "edges": []}', r'under "nodes"; found an object'),
        ('{"nodes": [{"id": "x", "role": "input"}]}',
         r'needs a list of edges \(or "links"\) under "edges"; found none'),
        ('{"nodes": [5], "edges": []}', r'node 0 is 5; expected an object with an "id"'),
        ('{"nodes": [{"id": "x"}], "edges": [{"source": "x"}]}',
         r'edge 0 is .*; expected an object with a "source" and a "target"'),
        ('{"nodes": [], "edges": [], "graph": 5}',
         r'has a number under "graph"; expected an object of graph attributes'),
        ('{"nodes": [{"id": "x"}, {"id": "y"}], "edges": [{"source": "x", '
         '"target": "y", "weight": 1}, {"source": "x", "target": "y", "weight": 2}]}',
         r"edge 'x' -> 'y' appears twice \(edges 0 and 1\); each may appear once"),
        ('{"nodes": [{"id": "x", "role": "input"}, {"id": 3}, {"id": "x"}], '
         '"edges": []}', r"node id 'x' appears twice \(nodes 0 and 2\)"),
    ])
    def test_malformed_files_are_named(self, tmp_path, content, match):
        path = tmp_path / "g.json"
        path.write_text(content)
        name = re.escape(str(path))
        with pytest.raises(ValueError, match=f"graph file '{name}'.*" + match):
            check.load_net(str(path))

    def test_binary_file_is_named(self, tmp_path):
        path = tmp_path / "g.bin"
        path.write_bytes(bytes([0x7B, 0xFF, 0xFE, 0x00, 0x81]))
        name = re.escape(str(path))
        with pytest.raises(ValueError, match=f"graph file '{name}' is not UTF-8 text"):
            check.load_net(str(path))

    def test_directory_is_named(self, tmp_path):
        name = re.escape(str(tmp_path))
        with pytest.raises(ValueError, match=f"'{name}' is a directory; expected a "
                                             f"node-link JSON graph file"):
            check.load_net(str(tmp_path))

    @pytest.mark.parametrize("size", ["3", -1, 0, 2.5, True])
    def test_bad_size_without_weights_names_the_node(self, tmp_path, size):
        path = tmp_path / "sizes.json"
        path.write_text(json.dumps({
            "nodes": [{"id": "x", "role": "input"},
                      {"id": "h", "role": "hidden", "size": size},
                      {"id": "y", "role": "output"}],
            "edges": [{"source": "x", "target": "h"}, {"source": "h", "target": "y"}]}))
        with pytest.raises(ValueError, match=f"sizes.json: node 'h' has size "
                                             f"{size!r}; expected an integer >= 1"):
            check.load_net(str(path))

    def test_invalid_network_names_the_file(self, tmp_path):
        path = tmp_path / "wt.json"
        path.write_text(json.dumps({
            "nodes": [{"id": "x", "role": "input"}, {"id": "y", "role": "output"}],
            "links": [{"source": "x", "target": "y", "weight": "abc"}]}))
        with pytest.raises(ValueError, match="wt.json: edge 'x' -> 'y' has non-numeric "
                                             "weight 'abc'"):
            check.load_net(str(path))

    def test_cli_subcommand(self, capsys):
        from dagnet import cli

        assert cli.main(["check", "--graph", "test_check:toy", "--steps", "2"]) == 0
        assert "0 failed" in capsys.readouterr().out


def toy():
    """A DiGraph without weights, for --graph module:function."""
    g = nx.DiGraph()
    g.add_nodes_from(["x0", "x1"], role="input")
    g.add_node("h", role="hidden", size=2)
    g.add_node("y", role="output")
    g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "y"), ("x0", "y")])
    return g


def not_a_net():
    return 3


def needs_an_argument(n):
    return dagnet.layered([n, 1])


def raises_type_error():
    raise TypeError("not a graph size")


def raises_runtime_error():
    raise RuntimeError("boom")


NOT_CALLABLE = 3
