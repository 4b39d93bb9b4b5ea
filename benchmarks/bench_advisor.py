"""Speed and memory of ``advise`` at the dimensions of practitioners' features.

Each configuration runs in a fresh process (so that its peak resident memory is its own), on
Gaussian inputs with a decaying spectrum, a linear target and one source near it. Printed:
CPU seconds of the ``advise`` call (``time.process_time``: the machine may be loaded, wall
time would be noise), the peak resident memory of the whole process (interpreter and imports
included), and the targets of the advisor's issue: d = 300, n = 75 within 1 s; d = 1000,
n = 250 with 1000 unlabelled rows within 5 s and 1 GB; d = 4096 runs.

Run: ``python benchmarks/bench_advisor.py [--quick]`` (``--quick``: the first two only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

#: (d, labelled n, unlabelled rows, CPU-second target, memory target in MB or None)
CONFIGS = [
    (300, 75, 0, 1.0, None),
    (1000, 250, 1000, 5.0, 1024.0),
    (4096, 1024, 0, None, None),
]

_CHILD = """
import json, resource, sys, time
import numpy as np
from finetune_theory.advisor import advise
d, n, m = map(int, sys.argv[1:4])
rng = np.random.default_rng(0)
lam = 1.0 / np.arange(1, d + 1) ** 0.7
x = rng.standard_normal((n + m, d)) * np.sqrt(lam)
theta = rng.standard_normal(d) / np.sqrt(d)
y = x[:n] @ theta + 0.3 * rng.standard_normal(n)
src = theta + 0.3 * rng.standard_normal(d) / np.sqrt(d)
advise(x[:20, :5], y[:20])  # imports and first-call set-up outside the timing
t0 = time.process_time()
adv = advise(x[:n], y, {"s": src}, X_unlabelled=x[n:] if m else None)
cpu = time.process_time() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"cpu": cpu, "rss": rss, "rec": adv.recommendation.strategy}))
"""


def run(d: int, n: int, m: int) -> dict:
    """One configuration in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(d), str(n), str(m)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="d = 300 and d = 1000 only")
    args = ap.parse_args(argv)
    configs = CONFIGS[:2] if args.quick else CONFIGS
    print(f"{'d':>5s} {'n':>5s} {'unlab.':>6s} {'CPU s':>7s} {'target':>7s} {'peak MB':>8s}")
    for d, n, m, cpu_target, mem_target in configs:
        res = run(d, n, m)
        tgt = f"{cpu_target:.0f} s" if cpu_target else "runs"
        mem = f"{res['rss']:8.0f}" + (f" (target {mem_target:.0f})" if mem_target else "")
        print(f"{d:5d} {n:5d} {m:6d} {res['cpu']:7.2f} {tgt:>7s} {mem}", flush=True)


if __name__ == "__main__":
    main()
