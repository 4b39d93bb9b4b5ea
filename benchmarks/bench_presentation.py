"""Speed of what a user meets first: ``finetune-theory --help`` and drawing a report figure.

1. Start-up: CPU time (user + system, of the child process) of ``python -m
   finetune_theory.cli --help`` against a bare ``python -c pass``, the median of five runs, and
   the heavy libraries imported by parsing ``--help``. Target: under 0.2 s and none of SciPy,
   Matplotlib, pandas, scikit-learn or dask.
2. Figures: a 3 x 5 grid of log-log scatter panels (the shape of E1's figure, synthetic data)
   written as PNG and SVG, the way the experiments finish a figure
   (``experiments._plotting.finish``: one layout, the PNG from the drawn canvas, plain log
   labels, text kept as text in the SVG) against the plain Matplotlib route (``tight_layout``
   then ``savefig`` twice, default log labels typeset as powers of ten, SVG text as paths),
   CPU time in one process, the median of three.

Run: ``.venv/bin/python benchmarks/bench_presentation.py``.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEAVY = ("scipy", "matplotlib", "pandas", "sklearn", "dask")
TARGET_S = 0.2


def _child_cpu(argv: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup() -> None:
    cli = [sys.executable, "-m", "finetune_theory.cli", "--help"]
    bare = [sys.executable, "-c", "pass"]
    t_cli = statistics.median(_child_cpu(cli) for _ in range(5))
    t_bare = statistics.median(_child_cpu(bare) for _ in range(5))
    probe = (
        "import contextlib, io, sys\n"
        "from finetune_theory.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    heavy = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.split()
    verdict = "meets" if t_cli < TARGET_S and not heavy else "misses"
    print(
        f"finetune-theory --help: {t_cli:.3f} s CPU (bare python {t_bare:.3f} s); "
        f"heavy modules imported: {', '.join(heavy) or 'none'} -> {verdict} the target "
        f"(< {TARGET_S} s CPU, none imported)"
    )


def _grid(plt, rng):
    fig, axes = plt.subplots(3, 5, figsize=(13.9, 8.0))
    for ax in axes.flat:
        x = np.exp(rng.normal(0, 1.5, 80))
        ax.scatter(x, x * np.exp(rng.normal(0, 0.3, 80)), s=9, c=rng.normal(size=80))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title("measure")
    return fig


def figures() -> None:
    from finetune_theory.experiments import _plotting

    plt = _plotting.pyplot()
    out = Path(tempfile.mkdtemp())
    plain_times, finish_times = [], []
    for i in range(3):
        fig = _grid(plt, np.random.default_rng(i))
        t = time.process_time()
        with plt.rc_context({"svg.fonttype": "path"}):
            fig.tight_layout()
            fig.savefig(out / f"plain{i}.png", dpi=_plotting.DEFAULT_DPI)
            fig.savefig(out / f"plain{i}.svg")
        plain_times.append(time.process_time() - t)
        plt.close(fig)
        fig = _grid(plt, np.random.default_rng(i))
        t = time.process_time()
        _plotting.finish(fig, out / f"finish{i}", caption="a grid")
        finish_times.append(time.process_time() - t)
    plain, fin = statistics.median(plain_times), statistics.median(finish_times)
    print(
        f"3 x 5 log-log figure, PNG + SVG: plain Matplotlib {plain:.2f} s CPU, "
        f"finish {fin:.2f} s CPU (ratio {fin / plain:.2f})"
    )


if __name__ == "__main__":
    startup()
    figures()
