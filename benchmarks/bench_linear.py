"""Speed of the linear engine, as ratios measured in one run (CPU time, one BLAS thread).

1. A whole learning curve: ``expected_risk`` at 100 sample sizes (d = 2000, power-law
   spectrum) against the Monte Carlo that reaches a 1 % standard error at every size
   (``simulate_risk``; its cost is extrapolated from a short run at every tenth size: repeats
   needed = repeats run x (relative standard error / 1 %)^2). Target: >= 10^5x, and the curve
   under 30 ms on a quiet machine.
2. ``sample_complexity`` and ``sample_complexity_reduction`` at d = 1000 (bracket and bisect
   on n) against the scan of every n up to the rank that they replace (the same answers,
   checked here). Target: under 50 ms.
3. ``curves.learning_curve`` (one call for every n) against one call per n.
4. The README's quick tour, run as the README shows it. Target: under 5 s wall.
5. ``simulate_risk`` (all repeats in one batch) against a plain per-repeat loop written the way
   a researcher writes it first (``multivariate_normal`` from the covariance matrix, then
   ``np.linalg.pinv`` and the risk), at d = 100, n = 10, 2000 repeats. Target: at least 5x.
   Also against a tuned loop that shares the package's cheap draws: there, drawing the 2
   million Gaussian numbers is a floor common to both, so the ratio is printed with and
   without it.

Run: ``python benchmarks/bench_linear.py`` (``--quick`` for a smaller check). Times are CPU
seconds of this process (``time.process_time``), the best of three, so that a loaded machine
changes them less than wall-clock times.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from finetune_theory import covariance, linear


def _timed(fn, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def learning_curve(d: int, points: int, stride: int, repeats: int) -> None:
    cov = covariance.power_law(d, 1.0)
    rng = np.random.default_rng(0)
    ts, tt = rng.standard_normal((2, d)) / np.sqrt(d)
    ns = np.unique(np.geomspace(5, d - 10, points).astype(int))
    t_pred = _timed(lambda: linear.expected_risk(cov, ts, tt, ns, noise=0.1))
    cost = 0.0
    sub = ns[::stride]
    for n in sub:
        t0 = time.process_time()
        sim = linear.simulate_risk(cov, ts, tt, int(n), noise=0.1, repeats=repeats, seed=1)
        spent = time.process_time() - t0
        needed = repeats * (float(sim.stderr) / float(sim.mean) / 0.01) ** 2
        cost += spent * needed / repeats
    cost *= len(ns) / len(sub)
    print(f"[1] learning curve, d={d}, {len(ns)} sizes of n (5 .. d - 10, noise 0.1)")
    print(f"    expected_risk: {t_pred * 1e3:.1f} ms CPU for the whole curve (target < 30 ms)")
    print(
        f"    Monte Carlo to 1 % standard error at every size: {cost:,.0f} CPU-s "
        f"(extrapolated from {repeats} repeats at {len(sub)} of the sizes)"
    )
    print(f"    ratio Monte Carlo / prediction = {cost / t_pred:,.0f}x (target >= 100,000x)")


def _scan(cov, ts, tt, eps, noise):
    """The smallest n by a scan of every n up to the rank (what the search replaces)."""
    ns = np.arange(1, cov.d + 1)
    risk = np.atleast_1d(linear.expected_risk(cov, ts, tt, ns, noise=noise))
    hits = np.flatnonzero(risk <= eps)
    return int(ns[hits[0]]) if hits.size else None


def _search(cov, ts, tt, eps, noise):
    return linear.sample_complexity_reduction(cov, ts, tt, eps, noise=noise)


def sample_complexity(d: int) -> None:
    cov = covariance.power_law(d, 1.5)
    rng = np.random.default_rng(0)
    tt = rng.standard_normal(d)
    ts = tt.copy()
    ts[:10] += 0.5 * rng.standard_normal(10)
    eps = 0.1 * float(cov.quad(tt))
    print(f"[2] sample complexity, d={d}, power law a = 1.5, eps = 0.1 of the target's risk")
    for noise in (0.0, 0.1):
        got = _search(cov, ts, tt, eps, noise)
        t_one = _timed(lambda s=noise: linear.sample_complexity(cov, ts, tt, eps, noise=s))
        t_red = _timed(lambda s=noise: _search(cov, ts, tt, eps, s))
        t0 = time.process_time()
        want = (_scan(cov, ts, tt, eps, noise), _scan(cov, np.zeros(d), tt, eps, noise))
        t_scan = time.process_time() - t0
        same = got.n_finetune == want[0] and (want[1] is None or got.n_scratch == want[1])
        print(
            f"    noise {noise}: sample_complexity {t_one * 1e3:.0f} ms, reduction "
            f"{t_red * 1e3:.0f} ms (target < 50 ms); the scans of every n {t_scan:.2f} s: "
            f"ratio {t_scan / t_red:.0f}x; same answers: {same} ({got.n_finetune}, "
            f"{got.n_scratch})"
        )


def curves_vectorised(d: int) -> None:
    from finetune_theory import curves
    from finetune_theory.teachers import scaled_pair

    sizes = list(np.unique(np.geomspace(5, d // 2, 30).astype(int)))
    t_vec = _timed(lambda: curves.learning_curve(d=d, n_values=sizes, noise=0.1))
    cov = curves.make_covariance("power-law", d)
    pair = scaled_pair(d, alpha=1.0, eps=0.1, seed=0)

    def one_per_n() -> None:
        for n in sizes:
            linear.expected_risk(cov, pair.theta_source, pair.theta_target, n, noise=0.1)
            linear.expected_risk(cov, np.zeros(d), pair.theta_target, n, noise=0.1)

    t_loop = _timed(one_per_n)
    print(f"[3] curves.learning_curve, d={d}, {len(sizes)} sizes")
    print(
        f"    one call: {t_vec * 1e3:.0f} ms; one call per n: {t_loop * 1e3:.0f} ms: "
        f"ratio {t_loop / t_vec:.1f}x"
    )


def quick_tour() -> None:
    import contextlib
    import io
    import sys as _sys
    from pathlib import Path

    _sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_readme import README, quick_tour_blocks

    code, _ = quick_tour_blocks(README.read_text(encoding="utf-8"))
    w0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "README quick tour", "exec"), {"__name__": "__readme__"})
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"[4] README quick tour: {wall:.2f} s wall, {cpu:.2f} s CPU (target < 5 s wall)")


def batched_vs_loop(d: int, n: int, repeats: int) -> None:
    cov = covariance.power_law(d, 1.0)
    sigma = cov.matrix
    rng = np.random.default_rng(0)
    ts, tt = rng.standard_normal((2, d)) / np.sqrt(d)

    def batched() -> None:
        linear.simulate_risk(cov, ts, tt, n, repeats=repeats, seed=2)

    def first_loop() -> None:
        # what a researcher writes first: one design at a time from the covariance matrix
        g = np.random.default_rng(2)
        risks = []
        for _ in range(repeats):
            x = g.multivariate_normal(np.zeros(d), sigma, size=n)
            theta = ts + np.linalg.pinv(x) @ (x @ tt - x @ ts)
            risks.append((theta - tt) @ sigma @ (theta - tt))
        np.mean(risks)

    def tuned_loop() -> None:
        # the same loop with the package's cheap sampling (scaled standard normals)
        g = np.random.default_rng(2)
        sqrt_lam = np.sqrt(cov.eigvals)
        risks = []
        for _ in range(repeats):
            x = g.standard_normal((n, d)) * sqrt_lam
            theta = ts + np.linalg.pinv(x) @ (x @ tt - x @ ts)
            diff = theta - tt
            risks.append(diff @ (cov.eigvals * diff))
        np.mean(risks)

    def draws_only() -> None:
        np.random.default_rng(2).standard_normal((repeats, n, d))

    t_b = _timed(batched)
    t_f = _timed(first_loop)
    t_t = _timed(tuned_loop)
    t_z = _timed(draws_only)
    print(f"[5] simulate_risk d={d}, n={n}, {repeats} repeats")
    print(
        f"    batched {t_b * 1e3:.1f} ms (of which drawing the Gaussian designs alone "
        f"{t_z * 1e3:.1f} ms)"
    )
    print(
        f"    first per-repeat loop (multivariate_normal, pinv) {t_f * 1e3:.1f} ms: "
        f"ratio {t_f / t_b:.1f}x (target >= 5x)"
    )
    print(
        f"    tuned per-repeat loop (same cheap draws, pinv) {t_t * 1e3:.1f} ms: "
        f"ratio {t_t / t_b:.1f}x; excluding the draws both share: "
        f"{(t_t - t_z) / max(t_b - t_z, 1e-9):.1f}x"
    )


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    quick = "--quick" in sys.argv
    with threadpool_limits(1):
        if quick:
            learning_curve(d=300, points=100, stride=20, repeats=20)
            sample_complexity(d=300)
            curves_vectorised(d=300)
            quick_tour()
            batched_vs_loop(d=100, n=10, repeats=200)
        else:
            learning_curve(d=2000, points=100, stride=20, repeats=20)
            sample_complexity(d=1000)
            curves_vectorised(d=1000)
            quick_tour()
            batched_vs_loop(d=100, n=10, repeats=2000)
