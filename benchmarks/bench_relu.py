"""Speed of ReLU fine-tuning: one wide network fine-tuned to convergence.

Width 10,000, n = 500 target samples, d = 50, labels ``sqrt(d) theta^T x``; the network is
first pretrained on 500 source samples (timed separately, not part of the target), then
fine-tuned on the target by full-batch gradient descent until the training loss is 1e-8 of its
start. Target: the fine-tuning run in under 30 seconds of wall time on 2 cores.

Also printed: the steps taken, the time per step, and the same run with BLAS limited to one
thread.

Run: ``.venv/bin/python benchmarks/bench_relu.py`` (``--quick`` for width 2,000).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from finetune_theory import relu

TARGET_S = 30.0


def main(width: int = 10_000, n: int = 500, d: int = 50) -> None:
    rng = np.random.default_rng(0)
    theta_s = rng.standard_normal(d)
    theta_s /= np.linalg.norm(theta_s)
    u = rng.standard_normal(d)
    u -= (u @ theta_s) * theta_s
    theta_t = theta_s + 0.5 * u / np.linalg.norm(u)
    scale = np.sqrt(d)
    threads = sum(p.get("num_threads", 0) for p in threadpool_info() if p["user_api"] == "blas")

    t0 = time.perf_counter()
    pre = relu.pretrain(
        theta_s, width=width, n_source=500, label_scale=scale, seed=1, lr_fraction=1.5, tol=1e-8
    )
    t_pre = time.perf_counter() - t0
    print(
        f"pretraining: width {width}, 500 source samples, d={d}: {t_pre:.1f} s, "
        f"{int(pre.training.steps)} steps, weights moved {float(pre.training.movement):.2%}"
    )

    x = relu.sample_sphere(n, d, seed=2)
    y = scale * x @ theta_t
    results = {}
    for label, limit in ((f"{threads} BLAS thread(s)", None), ("1 BLAS thread", 1)):
        with threadpool_limits(limits=limit):
            t0 = time.perf_counter()
            lr = relu.default_lr(x, y, pre.weights, fraction=1.5)
            res = relu.train(x, y, pre.weights, lr=lr, tol=1e-8)
            results[label] = (time.perf_counter() - t0, res)
    for label, (sec, res) in results.items():
        steps = int(res.steps)
        print(
            f"fine-tuning ({label}): n={n}, {steps} steps to loss {float(res.loss):.2e} "
            f"(start {float(res.initial_loss):.2e}), {sec:.2f} s, "
            f"{1e3 * sec / max(steps, 1):.1f} ms per step, weights moved "
            f"{float(res.movement):.2%}"
        )
    sec = results[f"{threads} BLAS thread(s)"][0]
    print(
        f"measured {sec:.2f} s; ratio to the {TARGET_S:.0f} s target = {sec / TARGET_S:.2f} "
        f"({'meets' if sec < TARGET_S else 'misses'} the target)"
    )


if __name__ == "__main__":
    main(width=2_000 if "--quick" in sys.argv else 10_000)
