"""Every gallery example (``examples/<section>/plot_*.py``) runs, at the small sizes it uses when
``FINETUNE_THEORY_EXAMPLE_SIZE=test``, draws at least one figure and prints its results.

The documentation build (``make docs``) runs the same scripts at their own sizes; this test
keeps them working between builds.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*/plot_*.py"))
# Examples that run a whole experiment (still part of `make test`).
SLOW_EXAMPLES = {"plot_reproduce_scaling"}


def test_the_gallery_has_its_examples():
    names = {p.stem for p in SCRIPTS}
    # every section has its title file, every script is in a section
    for folder in {p.parent for p in SCRIPTS}:
        assert (folder / "README.txt").is_file(), f"gallery section {folder.name} has no README"
    assert not list(EXAMPLES.glob("plot_*.py")), "an example outside the gallery's sections"
    # One per architecture, the estimator, the advisor, a reproduction.
    for word in ("linear", "deep_linear", "relu", "estimator", "advisor", "reproduce"):
        assert any(word in name for name in names), f"no gallery example about {word!r}"


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW_EXAMPLES else [])
        for p in SCRIPTS
    ],
)
def test_example_runs(script, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FINETUNE_THEORY_EXAMPLE_SIZE", "test")
    monkeypatch.chdir(tmp_path)  # anything an example writes lands in a scratch folder
    plt.close("all")
    try:
        runpy.run_path(str(script), run_name="__main__")
        figures = plt.get_fignums()
    finally:
        plt.close("all")
    out = capsys.readouterr().out
    assert figures, f"{script.name} drew no figure"
    assert out.strip(), f"{script.name} printed nothing"
    assert "nan" not in out.lower().replace("nan_", ""), f"{script.name} printed a NaN:\n{out}"
    if "estimator" in script.stem:  # the default beside the leave-one-out ridge
        assert "alpha='loo'" in out, "the estimator example does not show alpha='loo'"
