"""Speed and accuracy of the deep-linear engine, as ratios measured in one run.

0. The step rate of the trainer at the experiments' size (B = 20 repeats, n = 20, d = 200,
   width 16, depths 2, 5 and 10): CPU time per step of :func:`deep_linear.train` against the
   same step's batched matrix products timed alone, with the same shapes (the step's
   arithmetic at the rate ``numpy.matmul`` reaches on those shapes, with no Python overhead
   and no temporaries). The ratio is the share of the GEMM rate the trainer reaches.
   Target: at least 30% at depth 5.
1. The batched trainer (:func:`deep_linear.train`, all repeats in one batch, matrix-vector
   gradients) against a plain per-repeat loop written the way a researcher writes it first
   (one repeat at a time, gradients from the prefix and suffix matrix products), on E2's
   setting: d = 200, n = 20, 20 repeats, alpha = 0.5, depths 2, 5 and 10, the same step and
   the same stopping rule. Target: at least 5x.
2. E2 at the paper's scale (``depth`` experiment, size ``paper``: d = 200, n = 20, depths 1-10
   and infinity, 20 repeats, trained to convergence): wall time. Target: under 2 minutes.
3. The closed form (:func:`deep_linear.finetune`) against training, same batch: the ratio.
4. Accuracy: relative distance between trained networks and the closed form against the step
   (d = 40, n = 8, depths 2, 3, 5): the drift is linear in the step.

Everything runs in one process with BLAS limited to one thread (as in the test suite: with
two cores, OpenBLAS threads spinning on tiny products slow both versions down erratically); the
experiment runner can spread E2's units over both cores.

Run: ``.venv/bin/python benchmarks/bench_deep_linear.py`` (``--quick`` skips part 2).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from finetune_theory import deep_linear as dl
from finetune_theory.experiments import get


def _setting(d: int, n: int, repeats: int, alpha: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((repeats, d))
    ts /= np.linalg.norm(ts, axis=1, keepdims=True)
    xi = rng.standard_normal((repeats, d))
    xi /= np.linalg.norm(xi, axis=1, keepdims=True)
    tt = alpha * ts + 0.1 * xi
    x = rng.standard_normal((repeats, n, d))
    return ts, tt, x, np.einsum("bnd,bd->bn", x, tt)


def plain_train(weights, x, y, lr, tol=1e-12, max_steps=200_000):
    """One network, the obvious way: matrix products for the forward pass and the gradients."""
    w = [v.copy() for v in weights]
    n = x.shape[0]
    threshold = tol * 0.5 * np.mean(y * y)
    for _ in range(max_steps):
        prefix = [w[0]]  # W_j ... W_1
        for layer in w[1:]:
            prefix.append(layer @ prefix[-1])
        theta = prefix[-1][0]
        res = x @ theta - y
        if 0.5 * np.mean(res * res) <= threshold:
            return theta
        grad_theta = (res @ x / n)[None, :]  # (1, d)
        suffix = np.ones((1, 1))  # W_N ... W_{j+1}
        grads = [None] * len(w)
        for j in range(len(w) - 1, -1, -1):
            below = grad_theta if j == 0 else grad_theta @ prefix[j - 1].T
            grads[j] = suffix.T @ below
            suffix = suffix @ w[j]
        for j in range(len(w)):
            w[j] = w[j] - lr * grads[j]
    raise RuntimeError("no convergence")


def _cpu_per_call(fn, calls: int) -> float:
    fn()
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls


def _step_products(b: int, n: int, h: int, depth: int, rng: np.random.Generator) -> float:
    """CPU seconds of the batched products one trainer step makes, each timed alone."""
    row, col = rng.standard_normal((b, 1, h)), rng.standard_normal((b, h, 1))
    hidden, last = rng.standard_normal((b, h, h)), rng.standard_normal((b, 1, h))
    first_t, gram = rng.standard_normal((b, h, n)), rng.standard_normal((b, n, n))
    r_row, r_col = rng.standard_normal((b, 1, n)), rng.standard_normal((b, n, 1))
    products = [  # (left, right, how many per step)
        (np.ones((b, 1, 1)), last, 1),  # a_{N-1} = W_N
        (row, hidden, depth - 2),  # left products a_j
        (row, first_t, 2),  # residual M a_1 and C^T a_1
        (r_row, gram, 1),  # K C^T a_1
        (r_row, r_col, 1),  # the loss
        (first_t, r_col, 2),  # M^T r and C (K r)
        (gram, r_col, 1),  # K r
        (hidden, col, depth - 2),  # right products b_j
    ]
    total = 0.0
    for left, right, count in products:
        if count:
            out = np.matmul(left, right)
            total += count * _cpu_per_call(
                lambda l=left, r=right, o=out: np.matmul(l, r, out=o), 2000
            )
    return total


def step_rate() -> None:
    """CPU time per trainer step against its products alone (the same-shape GEMM rate)."""
    b, n, d, h = 20, 20, 200, 16
    rng = np.random.default_rng(7)
    ts, tt, x, y = _setting(d, n, b, alpha=0.5, seed=7)
    print(f"[0] trainer step rate (B={b}, n={n}, d={d}, width {h}; CPU time, 1 BLAS thread)")
    for depth in (2, 5, 10):
        w = dl.balanced_init(ts, depth, h, seed=1)
        lr = dl.default_lr(x, y, w)
        t0 = time.process_time()
        res = dl.train(x, y, w, lr=lr, max_steps=3000, strict=False)
        per_step = (time.process_time() - t0) / max(int(res.steps.max()), 1)
        floor = _step_products(b, n, h, depth, rng)
        print(
            f"    depth {depth:2d}: {per_step * 1e6:6.0f} us per step, its products alone "
            f"{floor * 1e6:5.0f} us: {floor / per_step:5.1%} of the same-shape GEMM rate"
            + (" (target >= 30%)" if depth == 5 else "")
        )


def batched_vs_loop() -> None:
    ts, tt, x, y = _setting(200, 20, 20, alpha=0.5)
    print("[1] batched trainer vs a plain per-repeat loop (d=200, n=20, 20 repeats, alpha=0.5)")
    total_b = total_l = 0.0
    for depth in (2, 5, 10):
        w = dl.balanced_init(ts, depth, 16, seed=1)
        lr = dl.default_lr(x, y, w)
        t0 = time.perf_counter()
        res = dl.train(x, y, w, lr=lr)
        t_b = time.perf_counter() - t0
        t0 = time.perf_counter()
        loop = np.stack([plain_train([v[b] for v in w], x[b], y[b], lr[b]) for b in range(20)])
        t_l = time.perf_counter() - t0
        agree = np.max(np.linalg.norm(loop - res.theta, axis=1) / np.linalg.norm(loop, axis=1))
        total_b += t_b
        total_l += t_l
        print(
            f"    depth {depth:2d}: {int(res.steps.max()):5d} steps, batched {t_b:6.2f} s, "
            f"loop {t_l:6.2f} s, ratio {t_l / t_b:5.1f}x (results agree to {agree:.0e})"
        )
    print(f"    overall ratio loop / batched = {total_l / total_b:.1f}x (target >= 5x)")


def paper_scale() -> None:
    exp = get("depth")
    cfg = exp.config("paper")
    t0 = time.perf_counter()
    records = exp.run_all(cfg, seed=0)
    wall = time.perf_counter() - t0
    trained = records[np.isfinite(records["depth"])]
    print(
        f"[2] E2 at the paper's scale: d={cfg.d}, n={cfg.n}, depths {cfg.depths[0]}-"
        f"{cfg.depths[-1]} + inf, {cfg.repeats} repeats, alphas {cfg.alphas}, pretrained "
        f"sources at depths {cfg.pretrained_depths}"
    )
    print(
        f"    {len(trained)} networks trained to convergence in {wall:.1f} s "
        f"(target < 120 s); median distance to the closed form {trained['gap'].median():.1e}"
    )


def closed_vs_training() -> None:
    ts, tt, x, y = _setting(200, 20, 20, alpha=0.5, seed=3)
    print("[3] closed form vs training (d=200, n=20, 20 repeats, alpha=0.5)")
    for depth in (2, 10):
        w = dl.balanced_init(ts, depth, 16, seed=1)
        best = np.inf
        for _ in range(5):
            t0 = time.perf_counter()
            closed = dl.finetune(x, y, ts, depth)
            best = min(best, time.perf_counter() - t0)
        for fraction in (dl.DEFAULT_LR_FRACTION, 0.1):
            t0 = time.perf_counter()
            res = dl.train(x, y, w, lr=dl.default_lr(x, y, w, fraction=fraction))
            t_t = time.perf_counter() - t0
            gap = np.max(
                np.linalg.norm(res.theta - closed, axis=1) / np.linalg.norm(closed, axis=1)
            )
            print(
                f"    depth {depth:2d}, step fraction {fraction:g}: training {t_t:.3f} s, closed "
                f"form {best * 1e3:.2f} ms, ratio {t_t / best:,.0f}x (largest gap {gap:.1e})"
            )


def drift() -> None:
    print(
        "[4] distance trained vs closed form against the step (d=40, n=8, alpha 0.5 and 2; "
        "step = fraction / curvature bound)"
    )
    ts, tt, x, y = _setting(40, 8, 2, alpha=0.5, seed=5)
    ts2, tt2, x2, y2 = _setting(40, 8, 2, alpha=2.0, seed=6)
    ts, x, y = np.concatenate([ts, ts2]), np.concatenate([x, x2]), np.concatenate([y, y2])
    fractions = (1.0, 0.5, 0.2, 0.05, 0.01)
    print("    depth  " + "  ".join(f"{f:>8g}" for f in fractions))
    for depth in (2, 3, 5):
        w = dl.balanced_init(ts, depth, 12, seed=0)
        closed = dl.finetune(x, y, ts, depth)
        errs = []
        for f in fractions:
            res = dl.train(
                x, y, w, lr=dl.default_lr(x, y, w, fraction=f), tol=1e-15, max_steps=10**6
            )
            errs.append(
                np.max(np.linalg.norm(res.theta - closed, axis=1) / np.linalg.norm(closed, axis=1))
            )
        print(f"    {depth:5d}  " + "  ".join(f"{e:8.1e}" for e in errs))


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    print(f"cores: {os.cpu_count()}, BLAS threads: 1")
    step_rate()
    batched_vs_loop()
    if "--quick" not in sys.argv:
        paper_scale()
    closed_vs_training()
    drift()
