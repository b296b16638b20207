import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reference import brute_gamma
from strategies import group_nets, unit_dags

import dagnet


def grads(module, x, y):
    module.zero_grad()
    loss = torch.nn.functional.cross_entropy(module(x), y)
    loss.backward()
    return loss.detach()


def assert_float32_step_matches_float64(net, rtol=1e-3, p=2):
    """One fused Path-SGD step moves every weight in float32 as in float64."""
    steps = []
    for dtype in (torch.float64, torch.float32):
        module = net.compile(dtype=dtype)
        x, y = next(batches(net, 1))
        grads(module, x.to(dtype), y)
        dagnet.PathSGD(module, lr=0.1, p=p, fused=True).step()
        steps.append(module.to_dagnet())
    for e in net.edges:
        moved = steps[0].weight_matrix(*e) - net.weight_matrix(*e)
        assert np.abs(moved).max() > 0, e
        np.testing.assert_allclose(steps[1].weight_matrix(*e) - net.weight_matrix(*e),
                                   moved, rtol=rtol, atol=rtol * np.abs(moved).max())


def assert_alpha_beta_match_float64(module, p, fused=True, sides=(0, 1)):
    """alpha and beta (sides 0 and 1) of a float32 module against float64 ones
    computed from the same float32 weights."""
    fast = dagnet.pathnorm.alpha_beta(module, p, fused=fused)
    exact = dagnet.pathnorm.alpha_beta(module.to_dagnet().compile(dtype=torch.float64), p)
    for side in sides:
        for got, want in zip(fast[side], exact[side]):
            if want is None:
                continue
            (v, lv), (u, lu) = got, want
            np.testing.assert_allclose(v.double().numpy() * 2.0 ** (lv - lu),
                                       u.numpy(), rtol=1e-5)


def batches(net, n=50, batch=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield (torch.randn(batch, net.n_inputs, generator=g, dtype=torch.float64),
               torch.randint(net.n_outputs, (batch,), generator=g))


def train(net, make_opt, n=50):
    module = net.compile(dtype=torch.float64)
    opt = make_opt(module)
    for x, y in batches(net, n):
        grads(module, x, y)
        opt.step()
    return module.to_dagnet()


def max_rel_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(a.weight(*e)) - np.asarray(b.weight(*e)))
                         / (np.abs(np.asarray(b.weight(*e))) + 1e-300))) for e in a.edges)


class TestUpdateRule:
    @given(unit_dags(), st.sampled_from([1, 2, 3, math.inf]))
    def test_one_step_matches_brute_force_gamma(self, net, p):
        module = net.compile(dtype=torch.float64)
        x, y = next(batches(net, 1))
        grads(module, x, y)
        g = module.edge_gradients()
        gamma = brute_gamma(net, p)
        dagnet.PathSGD(module, lr=0.1, p=p).step()
        after = module.to_dagnet()
        for e in net.edges:
            expected = net.weight(*e) - (0.1 * g[e] / gamma[e] if gamma[e] > 0 else 0.0)
            assert after.weight(*e) == pytest.approx(expected, rel=1e-10, abs=1e-14), e

    @pytest.mark.parametrize("sizes, skips, bias", [
        ([3, 8, 16, 2], [(0, 3)], True), ([4, 16, 8, 8, 3], [(1, 4), (0, 2)], False),
        ([2, 5, 3], [(0, 2)], True),  # no row count with a divisor 8..32: eager route
    ])
    @pytest.mark.parametrize("p", [1, 2, 3])
    def test_fused_kernels_match_brute_force_on_group_nets(self, sizes, skips, bias, p):
        """fused=True sends every dense block through dagnet.kernels."""
        net = dagnet.layered(sizes, skips=skips, bias=bias, seed=len(sizes))
        module = net.compile(dtype=torch.float64)
        x, y = next(batches(net, 1))
        grads(module, x, y)
        grad = module.edge_gradients()
        gamma = brute_gamma(net.expand(), p)
        dagnet.PathSGD(module, lr=0.1, p=p, fused=True).step()
        after = module.to_dagnet()
        assert not dagnet.kernels._failed, dagnet.kernels._failed
        for u, v in net.edges:
            w = net.weight_matrix(u, v)
            g = np.asarray(grad[u, v]).reshape(w.shape)
            for i, vi in enumerate(net.units(v)):
                for j, uj in enumerate(net.units(u)):
                    c = gamma[uj, vi]
                    expected = w[i, j] - (0.1 * g[i, j] / c if c > 0 else 0.0)
                    assert after.weight_matrix(u, v)[i, j] == pytest.approx(
                        expected, rel=1e-10, abs=1e-14), (u, v, i, j)

    def test_layered_p2_is_outer_product(self):
        net = dagnet.layered([3, 4, 2], bias=False, seed=1)
        module = net.compile(dtype=torch.float64)
        x, y = next(batches(net, 1))
        grads(module, x, y)
        w1, w2 = net.weight("input", "hidden1"), net.weight("hidden1", "output")
        g1 = module.w_0_1.grad.numpy().copy()
        alpha_h = (w1 ** 2).sum(axis=1)          # alpha of hidden units
        beta_h = (w2 ** 2).sum(axis=0)           # beta of hidden units
        gamma1 = np.outer(beta_h, np.ones(3))    # beta(v) alpha(u), alpha(input) = 1
        dagnet.PathSGD(module, lr=0.5).step()
        np.testing.assert_allclose(module.w_0_1.detach().numpy(), w1 - 0.5 * g1 / gamma1,
                                   rtol=1e-12)
        assert alpha_h.shape == (4,)

    def test_momentum(self):
        net = dagnet.layered([3, 4, 2], seed=2)
        a, b = net.compile(dtype=torch.float64), net.compile(dtype=torch.float64)
        opt = dagnet.PathSGD(a, lr=0.1, momentum=0.9)
        bufs = None
        for x, y in batches(net, 3):
            grads(a, x, y)
            opt.step()
            grads(b, x, y)
            bufs = dagnet.path_sgd_step_(b, 0.1, 2, 0.9, bufs)
        for wa, wb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(wa, wb, rtol=0, atol=0)
        assert "momentum_buffer" in opt.state_dict()["state"][0]


class TestTheorem41:
    """Path-SGD commutes with rescaling; SGD and AdaGrad do not."""

    def setup_method(self):
        self.net = dagnet.random_dag(4, 10, 3, edge_prob=0.5, seed=11)
        self.scaled, self.factors = dagnet.random_rescale(
            self.net, exponent="uniform", low=-3, high=3, seed=5, return_factors=True)
        assert max(self.factors.values()) > 100 and min(self.factors.values()) < 1e-2

    def test_path_sgd_stays_equivalent_after_50_steps(self):
        a = train(self.net, lambda m: dagnet.PathSGD(m, lr=0.05))
        b = train(self.scaled, lambda m: dagnet.PathSGD(m, lr=0.05))
        assert max_rel_diff(dagnet.rescale(a, self.factors), b) < 1e-8
        assert max_rel_diff(a, self.net) > 1e-3  # training did move the weights
        x = torch.randn(20, 4, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(a.compile(dtype=torch.float64)(x),
                                       b.compile(dtype=torch.float64)(x),
                                       rtol=1e-9, atol=1e-9)

    @pytest.mark.parametrize("make", [
        lambda m: torch.optim.SGD(m.parameters(), lr=1e-4),
        lambda m: torch.optim.Adagrad(m.parameters(), lr=1e-3),
    ])
    def test_sgd_and_adagrad_do_not(self, make):
        a = train(self.net, make)
        b = train(self.scaled, make)
        assert max_rel_diff(dagnet.rescale(a, self.factors), b) > 1e-2

    @given(unit_dags(max_hidden=5), st.integers(0, 1000))
    def test_one_step_commutes_on_random_dags(self, net, seed):
        if not net.hidden:
            return
        scaled, factors = dagnet.random_rescale(net, exponent="uniform", seed=seed,
                                                return_factors=True)
        a = train(net, lambda m: dagnet.PathSGD(m, lr=0.1), n=1)
        b = train(scaled, lambda m: dagnet.PathSGD(m, lr=0.1), n=1)
        assert max_rel_diff(dagnet.rescale(a, factors), b) < 1e-9


class TestRobustness:
    def test_dead_units_give_no_nan(self):
        net = dagnet.layered([3, 4, 4, 2], groups=False, seed=0)
        zeros = {e: 0.0 for e in net.edges if e[1] in (("hidden1", 0), ("hidden1", 1))}
        zeros |= {e: 0.0 for e in net.edges if e[0] == ("hidden2", 3)}
        module = net.with_weights(zeros).compile()
        opt = dagnet.PathSGD(module, lr=0.1)
        for x, y in batches(net, 5):
            grads(module, x.float(), y)
            opt.step()
        assert all(torch.isfinite(w).all() for w in module.parameters())

    def test_all_zero_network(self):
        net = dagnet.layered([3, 4, 2], seed=0)
        module = net.with_weights({e: np.zeros_like(net.weight(*e)) for e in net.edges}
                                  ).compile()
        grads(module, torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
        dagnet.PathSGD(module, lr=0.1).step()
        assert all(torch.isfinite(w).all() for w in module.parameters())

    def test_badly_unbalanced_float32_stays_finite(self):
        net = dagnet.layered([20] * 8, seed=0)
        net = dagnet.random_rescale(net, exponent="uniform", low=4, high=6, seed=0)
        module = net.compile()
        alpha, beta = dagnet.pathnorm.alpha_beta(module, 2)
        assert beta[0] is None  # no gamma needs the beta of the inputs
        levels = alpha + beta[1:]
        assert all(math.isfinite(s) and torch.isfinite(a).all() for a, s in levels)
        opt = dagnet.PathSGD(module, lr=0.01)
        x = torch.randn(16, 20)
        y = torch.randint(20, (16,))
        for _ in range(3):
            grads(module, x, y)
            opt.step()
        assert all(torch.isfinite(w).all() for w in module.parameters())

    def test_bad_arguments(self):
        module = dagnet.layered([3, 4, 2]).compile()
        with pytest.raises(ValueError, match="lr must be positive and finite; got -1"):
            dagnet.PathSGD(module, lr=-1)
        with pytest.raises(ValueError, match="p must be >= 1"):
            dagnet.PathSGD(module, lr=0.1, p=0.5)
        for lr in (math.inf, "0.1", True):
            with pytest.raises(ValueError, match="lr must be positive and finite"):
                dagnet.PathSGD(module, lr=lr)
        with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\); got None"):
            dagnet.PathSGD(module, lr=0.1, momentum=None)
        with pytest.raises(TypeError, match="needs a CompiledDagNet"):
            dagnet.PathSGD(torch.nn.Linear(2, 2), lr=0.1)

    def test_loss_decreases_and_scheduler_works(self):
        net = dagnet.layered([5, 16, 3], seed=0)
        module = net.compile()
        opt = dagnet.PathSGD(module, lr=0.2)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=50, gamma=0.5)
        x, y = torch.randn(64, 5), torch.randint(3, (64,))
        first = float(grads(module, x, y))
        for _ in range(100):
            grads(module, x, y)
            opt.step()
            sched.step()
        assert float(grads(module, x, y)) < 0.7 * first
        assert opt.param_groups[0]["lr"] == pytest.approx(0.05)

    @given(group_nets())
    def test_group_nets_match_their_expansion(self, net):
        a = train(net, lambda m: dagnet.PathSGD(m, lr=0.1), n=3)
        b = train(net.expand(), lambda m: dagnet.PathSGD(m, lr=0.1), n=3)
        for u, v in net.edges:
            w = a.weight_matrix(u, v)
            for i, vi in enumerate(net.units(v)):
                for j, uj in enumerate(net.units(u)):
                    assert b.weight(uj, vi) == pytest.approx(w[i, j], rel=1e-9, abs=1e-12)


class TestKernels:
    @pytest.mark.parametrize("p", [2, 3])
    def test_fused_and_eager_updates_agree(self, p):
        net = dagnet.layered([30, 40, 20, 5], skips=[(0, 3)], seed=3)
        results = []
        for fused in (True, False):
            module = net.compile(dtype=torch.float64)
            opt = dagnet.PathSGD(module, lr=0.05, p=p, fused=fused)
            for x, y in batches(net, 4):
                grads(module, x, y)
                opt.step()
            results.append([w.detach().clone() for w in module.parameters()])
        assert not dagnet.kernels._failed, dagnet.kernels._failed
        for a, b in zip(*results):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)

    @pytest.mark.parametrize("edit", [
        lambda m: m.w_1_2.data.mul_(3.0),  # bypasses the version counter
        lambda m: torch.nn.utils.vector_to_parameters(
            torch.nn.utils.parameters_to_vector(m.parameters()) * 0.5, m.parameters()),
        lambda m: dagnet.rescale_module_(m, "hidden1", np.linspace(0.5, 3.0, 16)),
    ])
    @pytest.mark.parametrize("fused", [True, False])
    def test_weights_edited_between_steps_are_seen(self, edit, fused):
        net = dagnet.layered([6, 16, 16, 3], seed=1)
        a = net.compile(dtype=torch.float64)
        opt = dagnet.PathSGD(a, lr=0.1, fused=fused)
        x, y = next(batches(net, 1))
        grads(a, x, y)
        opt.step()
        edit(a)
        b = a.to_dagnet().compile(dtype=torch.float64)
        for module in (a, b):
            grads(module, x, y)
        opt.step()  # gamma from the edited weights
        dagnet.PathSGD(b, lr=0.1, fused=fused).step()
        for wa, wb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(wa, wb, rtol=1e-13, atol=0)

    @pytest.mark.parametrize("rows", [48, 40, 37])  # groups of 16, of 10, eager
    @pytest.mark.parametrize("p", [1, 2, 3, math.inf])
    def test_power_products_match_a_float64_reference(self, rows, p):
        g = torch.Generator().manual_seed(rows)
        w = torch.randn(rows, 23, generator=g, dtype=torch.float64)
        fwd = torch.rand(23, generator=g, dtype=torch.float64)
        bwd = torch.rand(rows, generator=g, dtype=torch.float64)
        products = dagnet.kernels.power_products(w, fwd, bwd, p)
        assert not dagnet.kernels._failed, dagnet.kernels._failed
        if p == math.inf or rows == 37:
            assert products is None  # the caller's eager route
            return
        s = w.abs().numpy() ** p
        np.testing.assert_allclose(products[0].numpy(), s @ fwd.numpy(), rtol=1e-13)
        np.testing.assert_allclose(products[1].numpy(), bwd.numpy() @ s, rtol=1e-13)

    @pytest.mark.parametrize("p, scale", [(2, 3e-22), (1, 3e-44), (math.inf, 3e-44)])
    def test_subnormal_products_are_recomputed_scaled(self, p, scale):
        """|w|^p near 1e-43 is a subnormal float32: finite and nonzero, but
        with few bits left, so the block must be recomputed scaled."""
        net = dagnet.layered([3, 16, 16, 2], seed=0)
        tiny = net.with_weights({e: net.weight(*e) * scale for e in net.edges
                                 if e[1] == "hidden1"})
        assert_alpha_beta_match_float64(tiny.compile(dtype=torch.float32), p)

    @pytest.mark.parametrize("p", [2, 3])
    def test_a_zero_block_does_not_flush_its_level(self, p):
        """A zero-initialised skip out of a unit rescaled by 2^80 carries a
        nominal exponent of 80 p and no value; the level it enters must keep
        its other terms (2^-160 of them underflows float32)."""
        net = dagnet.layered([3, 4, 4, 4, 2], skips=[(1, 3)], seed=0)
        net = net.with_weights({("hidden1", "hidden3"): np.zeros((4, 4))})
        net = dagnet.rescale(net, "hidden1", np.full(4, 2.0 ** 80))
        assert_alpha_beta_match_float64(net.compile(dtype=torch.float32), p)

    @pytest.mark.parametrize("p, big, small", [(2, 1e20, 1e-17), (3, 1e20, 1e-3),
                                                (1.5, 1e30, 1e-8), (1, 1e38, 1e-35)])
    def test_a_dead_unit_holding_the_largest_weights_does_not_hide_the_rest(
            self, p, big, small):
        """The block's largest weights leave a dead unit: scaling the block
        by them makes every |w|^p that matters to alpha underflow float32.
        (beta of hidden2 spans big^p / small^p, beyond float32: not compared.)"""
        net = dagnet.layered([3, 4, 4, 4, 2], bias=False, seed=0)
        w12 = net.weight_matrix("hidden1", "hidden2").copy()
        w12[0, :] = 0.0  # hidden2 unit 0 is dead
        w23 = np.full((4, 4), small)
        w23[:, 0] = big
        net = net.with_weights({("hidden1", "hidden2"): w12, ("hidden2", "hidden3"): w23})
        for fused in (True, False):
            assert_alpha_beta_match_float64(net.compile(dtype=torch.float32), p, fused,
                                            sides=(0,))

    def test_outer_product_of_the_inverses_that_overflows_goes_to_float64(self):
        """1 / gamma = inv_rb[j] * inv_ra[i] above 2^128 with a small lr: the
        step is representable, the product of the inverses is not."""
        net = dagnet.layered([3, 4, 4, 2], bias=False, seed=0)
        w01 = net.weight_matrix("input", "hidden1") * 16.0
        w23 = net.weight_matrix("hidden2", "output") * 16.0
        w01[0, :] *= 2.0 ** -35
        w23[:, 0] *= 2.0 ** -35
        net = net.with_weights({("input", "hidden1"): w01, ("hidden2", "output"): w23})
        steps = []
        for dtype in (torch.float64, torch.float32):
            module = net.compile(dtype=dtype)
            x, y = next(batches(net, 1))
            grads(module, x.to(dtype), y)
            module.w_1_2.grad[0, 0] = 0.0  # as for a unit that is off on the batch
            dagnet.PathSGD(module, lr=1e-30, p=1, fused=True).step()
            steps.append(module.w_1_2.detach().double().numpy())
        assert np.isfinite(steps[1]).all()
        np.testing.assert_allclose(steps[1], steps[0], rtol=1e-5)

    def test_squares_that_underflow_float32_are_recomputed_scaled(self):
        """Weights near 1e-25 square to 0 in float32; gamma must not become 0."""
        net = dagnet.layered([3, 16, 16, 2], seed=0)
        tiny = net.with_weights({e: net.weight(*e) * 1e-25 for e in net.edges
                                 if e[1] == "hidden1"})
        assert_float32_step_matches_float64(tiny)


def test_float32_overflow_of_squares_falls_back_to_float64():
    """Weights near 1e20 overflow |w|^2 in float32; the step must stay exact-ish."""
    net = dagnet.layered([3, 4, 4, 2], seed=0)
    factors = {("hidden1", i): 1e20 for i in range(4)}
    huge = dagnet.rescale(net, factors)
    steps = []
    for start, dtype in ((net, torch.float64), (huge, torch.float32)):
        module = start.compile(dtype=dtype)
        x, y = next(batches(start, 1))
        grads(module, x.to(dtype), y)
        dagnet.PathSGD(module, lr=0.1).step()
        steps.append(module.to_dagnet())
    expected = dagnet.rescale(steps[0], factors)
    for e in net.edges:
        np.testing.assert_allclose(steps[1].weight_matrix(*e), expected.weight_matrix(*e),
                                   rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("fused", [True, False])
def test_cuda_step_matches_cpu(fused):
    net = dagnet.layered([6, 16, 16, 3], skips=[(0, 3)], seed=4)
    x, y = next(batches(net, 1))
    results = []
    for device in ("cpu", "cuda"):
        module = net.compile(dtype=torch.float64).to(device)
        grads(module, x.to(device), y.to(device))
        dagnet.PathSGD(module, lr=0.1, fused=fused).step()
        results.append([w.detach().cpu() for w in module.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
