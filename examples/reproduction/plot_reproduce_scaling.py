"""
Reproducing an experiment: E3, scaling the source or the target
===============================================================

Every experiment of the package is a module under :mod:`finetune_theory.experiments` with a
frozen ``Config``, a ``run(config, seed)`` that returns tidy records, ``claims`` computed from
those records, a ``plot`` and a summary ``table``. This example runs experiment E3
(``scaling``, the paper's Figure 2b) at its ``quick`` size in this process, prints its
verdicts and shows its figure. The command line does the same with a result store, resume
and an HTML report: ``finetune-theory reproduce scaling --size quick``; the last section calls
the runner behind that command.
"""

import dataclasses
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from finetune_theory import experiments, runner

SMALL = os.environ.get("FINETUNE_THEORY_EXAMPLE_SIZE") == "test"  # tests: tiny sizes

print(experiments.available())
experiment = experiments.get("scaling")
config = experiment.config("quick")
if SMALL:
    config = dataclasses.replace(config, repeats=2, factors=(0.5, 1.0, 2.0))
print(config)

# %%
# Run every unit of work in order (the same records as the runner computes for this seed),
# then test the claims on the records.
records = experiment.run_all(config, seed=0)
print(f"{len(records)} records with columns {list(records.columns)}")
for verdict in experiment.claims(records):
    print(
        f"[{'holds' if verdict.holds else 'FAILS'}] {verdict.claim}\n        {verdict.evidence}"
    )

# %%
# The summary table of the report.
print(experiment.table(records).to_string())

# %%
# The experiment's own figures are written as SVG (vector graphics, what the report inlines).
outdir = Path(tempfile.mkdtemp())
print([p.name for p in experiment.plot(records, outdir)])

# %%
# The runner: the same experiment through the machinery of ``finetune-theory reproduce``,
# here in this process (``workers=1``). It commits every unit of work to a SQLite store (an
# interrupted run resumes where it stopped) and writes ``scaling.csv``, the figures and a
# self-contained ``report.html``. ``dpi`` (``--dpi`` on the command line) also writes each
# figure as PNG at that resolution, for slides; that PNG is shown here.
result = runner.reproduce(
    ["scaling"], size="quick", out=outdir / "results", seed=0, workers=1, dpi=100
)
outcome = result.outcomes[0]
print(
    f"{outcome.name}: {sum(v.holds for v in outcome.verdicts)} of {len(outcome.verdicts)} "
    f"claims hold; report written: {result.report.name}"
)
png = [p for p in outcome.figures if p.suffix == ".png"][0]
fig, ax = plt.subplots(figsize=(8, 5))
ax.imshow(plt.imread(png))
ax.set_axis_off()
fig.tight_layout()
