import shutil

import pytest

import dagnet
from dagnet.draw import draw, draw_rescaling

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' missing")


def test_draw_lists_every_node_and_edge():
    net = dagnet.random_dag(2, 4, 1, seed=3)
    source = draw(net, title="toy").source
    for v in net.graph:
        assert f'"{v}"' in source or f" {v} " in source or f"\t{v} " in source
    assert source.count("->") == len(net.edges)
    assert "toy" in source


def test_group_edges_show_their_shape():
    source = draw(dagnet.layered([3, 5, 2])).source
    assert "5x3" in source and "[5]" in source


def test_refuses_huge_graphs():
    net = dagnet.layered([30, 30, 2], groups=False)
    with pytest.raises(ValueError, match="63 nodes, over max_nodes=50"):
        draw(net, max_nodes=50)


def test_rescaling_drawing_shows_factors_and_equal_path_products():
    net = dagnet.layered([1, 2, 1], bias=False, groups=False, seed=0)
    dot = draw_rescaling(net, {("hidden1", 0): 4.0, ("hidden1", 1): 0.5})
    assert "c = 4" in dot.source and "c = 0.5" in dot.source
    for line in dot.source.split("\\l")[1:]:
        if "|" in line:
            left, right = line.split(": ")[1].split(" | ")
            assert float(left) == pytest.approx(float(right), rel=1e-2)


@needs_dot
def test_renders_png(tmp_path):
    path = draw(dagnet.random_dag(2, 3, 1, seed=0)).render(tmp_path / "net", format="png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
