"""``finetune_theory.runner``: its names load their module on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from finetune_theory import runner


@pytest.mark.parametrize("name", runner.__all__)
def test_every_name_is_its_modules_object(name):
    module = importlib.import_module(f"finetune_theory.runner.{runner._NAMES[name]}")
    assert getattr(runner, name) is getattr(module, name)
    assert name in dir(runner)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        runner.nothing  # noqa: B018


def test_importing_the_runner_loads_none_of_its_modules():
    code = (
        "import sys, finetune_theory.runner as r; "
        "print(sorted(m for m in sys.modules if m.startswith('finetune_theory.runner.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
