"""The compiled CPU kernel of dagnet.native against float64 references."""

import math

import numpy as np
import pytest
import torch
from test_optim import assert_float32_step_matches_float64, batches, grads

import dagnet
import dagnet.optim
from dagnet import kernels, native
from dagnet.pathnorm import alpha_beta

pytestmark = pytest.mark.skipif(not native.available(),
                                reason="no C compiler with OpenMP here")


def reference_products(w, fwd, bwd, p):
    s = np.abs(w.double().numpy())
    fwd, bwd = fwd.double().numpy(), bwd.double().numpy()
    if p == math.inf:
        return (s * fwd).max(axis=1), (s * bwd[:, None]).max(axis=0)
    s = s ** p
    return s @ fwd, bwd @ s


def block(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g) * 0.1
    vectors = [torch.rand(n, generator=g) * 0.99 + 0.01 for n in (cols, rows, rows, cols)]
    return w, torch.randn(rows, cols, generator=g), *vectors


class TestMeetingStep:
    @pytest.mark.parametrize("p", [1, 2, math.inf])
    @pytest.mark.parametrize("shape", [(37, 19), (64, 300), (1, 5), (5, 1)])
    @pytest.mark.parametrize("threads", [1, 2])
    def test_products_and_step_match_references(self, p, shape, threads):
        w, grad, fwd, bwd, inv_rb, inv_ra = block(*shape, seed=shape[0])
        w[0, :] = 0.0  # a dead row: f = 0 there
        before = w.clone()
        expected = before.clone()
        kernels._update(expected, grad, inv_rb, inv_ra, torch.tensor(-0.3))
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            f, b = native.meeting_step_(w, grad, fwd, bwd, inv_rb, inv_ra, -0.3, p)
        finally:
            torch.set_num_threads(old)
        f_ref, b_ref = reference_products(before, fwd, bwd, p)
        np.testing.assert_allclose(f.numpy(), f_ref, rtol=2e-6, atol=0)
        np.testing.assert_allclose(b.numpy(), b_ref, rtol=2e-6, atol=0)
        assert torch.equal(w, expected)  # the same float32 operations as the eager step

    @pytest.mark.parametrize("p", [1, 2, math.inf])
    @pytest.mark.parametrize("scale", [1e-25, 1e25, 1e-40])
    def test_rows_outside_float32_range_are_summed_in_float64(self, p, scale):
        """|w|^2 of 1e-25 is 0 in float32 and of 1e25 is inf; 1e-40 is subnormal."""
        w, grad, fwd, bwd, inv_rb, inv_ra = block(40, 33, seed=7)
        w[[3, 17, 39]] *= scale
        before = w.clone()
        f, b = native.meeting_step_(w, grad, fwd, bwd, inv_rb, inv_ra, -1e-3, p)
        f_ref, b_ref = reference_products(before, fwd, bwd, p)
        np.testing.assert_allclose(f.numpy(), f_ref, rtol=1e-6, atol=0)
        np.testing.assert_allclose(b.numpy(), b_ref, rtol=1e-6, atol=0)
        assert f[3] > 0 and math.isfinite(f[17])

    @pytest.mark.parametrize("p", [1, 2, math.inf])
    def test_nan_and_inf_reach_the_products_as_in_torch(self, p):
        w, grad, fwd, bwd, inv_rb, inv_ra = block(20, 9, seed=3)
        w[4, 2], w[11, 7] = math.nan, math.inf
        before = w.clone()
        f, b = native.meeting_step_(w, grad, fwd, bwd, inv_rb, inv_ra, -0.1, p)
        f_ref, b_ref = reference_products(before, fwd, bwd, p)
        np.testing.assert_array_equal(np.isnan(f.numpy()), np.isnan(f_ref))
        np.testing.assert_array_equal(np.isnan(b.numpy()), np.isnan(b_ref))
        assert math.isinf(f[11]) and math.isnan(f[4])
        finite = np.isfinite(f_ref)
        np.testing.assert_allclose(f.numpy()[finite], f_ref[finite], rtol=2e-6)

    def test_step_tells_autograd_that_w_changed(self):
        w, grad, fwd, bwd, inv_rb, inv_ra = block(8, 8, seed=4)
        version = w._version
        assert native.meeting_step_(w, grad, fwd, bwd, inv_rb, inv_ra, -0.1, 2) is not None
        assert w._version > version

    @pytest.mark.parametrize("which, value", [("fwd", 1e-9), ("bwd", 1e-9), ("fwd", 2.0),
                                              ("bwd", math.nan), ("fwd", -0.5)])
    def test_vectors_outside_its_range_are_declined(self, which, value):
        """Nonzero entries must lie in [2^-24, 1]: below, products with small
        |w|^p underflow."""
        w, grad, fwd, bwd, inv_rb, inv_ra = block(8, 8, seed=5)
        (fwd if which == "fwd" else bwd)[3] = value
        before = w.clone()
        assert native.meeting_step_(w, grad, fwd, bwd, inv_rb, inv_ra, -0.1, 2) is None
        assert torch.equal(w, before)

    @pytest.mark.parametrize("args, reason", [
        (dict(dtype=torch.float64), "float64"),
        (dict(p=3.0), "p = 3"),
        (dict(transpose=True), "not contiguous"),
        (dict(alias=True), "grad shares w's memory"),
    ])
    def test_declines_what_it_does_not_cover_and_leaves_w_alone(self, args, reason):
        w, grad, fwd, bwd, inv_rb, inv_ra = block(8, 8, seed=1)
        dtype = args.get("dtype", torch.float32)
        w, grad, fwd, bwd, inv_rb, inv_ra = (t.to(dtype) for t in
                                             (w, grad, fwd, bwd, inv_rb, inv_ra))
        if args.get("transpose"):
            w = w.t()
        if args.get("alias"):
            grad = w
        before = w.clone()
        p = args.get("p", 2)
        out = native.meeting_step_(w, grad, fwd, bwd, inv_rb, inv_ra, -0.1, p)
        assert out is None, reason
        assert torch.equal(w, before)

    def test_vector_of_the_wrong_length_is_refused_by_name(self):
        w, grad, fwd, bwd, inv_rb, inv_ra = block(8, 5, seed=2)
        with pytest.raises(ValueError, match=r"inv_ra must have shape \(5,\).*got \(8,\)"):
            native.meeting_step_(w, grad, fwd, bwd, inv_rb, inv_rb, -0.1, 2)


@pytest.fixture
def meeting_calls(monkeypatch):
    """Records whether each call of the kernel from Path-SGD stepped a block."""
    calls = []

    def spy(*args):
        out = native.meeting_step_(*args)
        calls.append(out is not None)
        return out
    monkeypatch.setattr(dagnet.optim, "meeting_step_", spy)
    return calls


class TestPathSGDThroughTheKernel:
    @pytest.mark.parametrize("p", [1, 2, math.inf])
    @pytest.mark.parametrize("sizes, skips, bias", [
        ([6, 24, 20, 3], [(0, 3)], True), ([5, 12, 16, 8, 2], [(1, 4), (0, 2)], False),
    ])
    def test_steps_match_brute_force_gamma(self, meeting_calls, p, sizes, skips, bias):
        net = dagnet.layered(sizes, skips=skips, bias=bias, seed=len(sizes))
        module = net.compile(dtype=torch.float32)
        x, y = next(batches(net, 1))
        grads(module, x.float(), y)
        grad = module.edge_gradients()
        gamma = dagnet.pathnorm.path_scaling(net.expand(), p)
        dagnet.PathSGD(module, lr=0.1, p=p, fused=True).step()
        assert meeting_calls == [True]
        after = module.to_dagnet()
        for u, v in net.edges:
            w = net.weight_matrix(u, v).astype(np.float32).astype(np.float64)
            g = np.asarray(grad[u, v], dtype=np.float64).reshape(w.shape)
            c = np.array([[gamma[uj, vi] for uj in net.units(u)] for vi in net.units(v)])
            expected = w - 0.1 * np.divide(g, c, out=np.zeros_like(g), where=c > 0)
            np.testing.assert_allclose(after.weight_matrix(u, v), expected, rtol=1e-5,
                                       atol=1e-5 * np.abs(expected - w).max(),
                                       err_msg=str((u, v)))

    def test_tiny_weights_in_the_meeting_block_keep_the_float64_step(self, meeting_calls):
        """Weights near 1e-25 in hidden1 -> hidden2: float32 squares would be 0."""
        net = dagnet.layered([3, 16, 16, 2], seed=0)
        tiny = net.with_weights({e: net.weight(*e) * 1e-25 for e in net.edges
                                 if e == ("hidden1", "hidden2")})
        assert_float32_step_matches_float64(tiny)
        assert meeting_calls == [True]  # float64 does not go through the kernel

    def test_a_tiny_beta_entry_sends_the_block_the_other_way(self, meeting_calls):
        """Weights 1e-15 into a unit whose beta is 1e-20 of its level's largest:
        |w|^2 times that underflows float32, so the kernel must not take it."""
        net = dagnet.layered([3, 4, 4, 2], bias=False, seed=0)
        w12 = np.full((4, 4), 1e-15)
        w12[1:, 0] = 0.0  # hidden1 unit 0 feeds hidden2 unit 0 only
        w23 = np.full((2, 4), 1e15) * [[1.0], [-0.5]]
        w23[:, 0] = [1e5, -0.3e5]
        net = net.with_weights({("input", "hidden1"): np.abs(net.weight_matrix(
            "input", "hidden1")) + 0.5, ("hidden1", "hidden2"): w12,
            ("hidden2", "output"): w23})
        assert_float32_step_matches_float64(net)
        assert meeting_calls == [False]

    def test_a_dead_unit_keeps_the_kernel_and_one_alpha_beta_pass(self, meeting_calls,
                                                                  monkeypatch):
        """A hidden unit with no nonzero weight in has alpha = 0 exactly; that
        must neither send the step the slow way nor change its numbers."""
        passes = []
        monkeypatch.setattr(dagnet.optim, "alpha_beta",
                            lambda *a, **k: passes.append(1) or alpha_beta(*a, **k))
        net = dagnet.layered([5, 16, 16, 3], seed=2)
        w01 = net.weight_matrix("input", "hidden1").copy()
        b1 = net.weight_matrix("bias", "hidden1").copy()
        w01[3], b1[3] = 0.0, 0.0
        net = net.with_weights({("input", "hidden1"): w01, ("bias", "hidden1"): b1})
        assert_float32_step_matches_float64(net, rtol=1e-5)
        assert meeting_calls == [True]
        assert len(passes) == 2  # one per dtype: no second pass in float32

    def test_momentum_and_eager_mode_leave_the_kernel_out(self, meeting_calls):
        net = dagnet.layered([4, 16, 16, 2], seed=0)
        module = net.compile(dtype=torch.float32)
        x, y = next(batches(net, 1))
        for opt in (dagnet.PathSGD(module, lr=0.1, momentum=0.5, fused=True),
                    dagnet.PathSGD(module, lr=0.1, fused=False)):
            grads(module, x.float(), y)
            opt.step()
        assert meeting_calls == []

    def test_without_a_compiler_it_warns_once_and_steps_the_same(self, monkeypatch):
        net = dagnet.layered([4, 16, 16, 2], seed=0)
        x, y = next(batches(net, 1))
        results = []
        for broken in (False, True):
            if broken:
                monkeypatch.setattr(native, "_library", {})
                monkeypatch.setattr(native, "_compiler", lambda: ["false"])
            module = net.compile(dtype=torch.float32)
            grads(module, x.float(), y)
            if broken:
                with pytest.warns(UserWarning, match="CPU Path-SGD kernel is unavailable"):
                    dagnet.PathSGD(module, lr=0.1, fused=True).step()
            else:
                dagnet.PathSGD(module, lr=0.1, fused=True).step()
            results.append([w.detach().clone() for w in module.parameters()])
        for a, b in zip(*results):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
