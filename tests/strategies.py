"""Hypothesis strategies for small random networks."""

from hypothesis import strategies as st

import dagnet


@st.composite
def unit_dags(draw, max_hidden=6, bias=None):
    """Random unit-level DAGs with skip connections (and usually a bias unit)."""
    return dagnet.random_dag(
        draw(st.integers(1, 3)),
        draw(st.integers(0, max_hidden)),
        draw(st.integers(1, 3)),
        edge_prob=draw(st.floats(0.2, 0.9)),
        bias=draw(st.booleans()) if bias is None else bias,
        seed=draw(st.integers(0, 2**31)),
    )


@st.composite
def group_nets(draw):
    """Small layered group-level networks with random skips."""
    n_layers = draw(st.integers(2, 4))
    sizes = draw(st.lists(st.integers(1, 3), min_size=n_layers + 1, max_size=n_layers + 1))
    candidates = [(i, j) for i in range(n_layers + 1) for j in range(i + 2, n_layers + 1)]
    skips = draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
    return dagnet.layered(sizes, bias=draw(st.booleans()), skips=skips,
                          seed=draw(st.integers(0, 2**31)))
