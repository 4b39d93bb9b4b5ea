"""The code fingerprint: which source code computed a stored unit.

The fingerprint is a SHA-256 digest (16 hex digits kept) of the ``.py`` files an experiment
can run: every file of the ``finetune_theory`` package except the command line (``cli/``) and
the modules of the *other* registered experiments, each taken with its path relative to the
package, plus the source file of the experiment's ``run`` function when that lives outside the
package (an experiment registered from elsewhere, such as the tests' toy experiment). So an
edit to the library, the runner, the shared experiment helpers or the experiment's own module
changes it, and stored units of other code are recomputed rather than served; an edit to E5
does not invalidate E1. Comments and docstrings count too: the digest errs on the side of
recomputing.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

__all__ = ["PACKAGE_ROOT", "code_fingerprint", "source_files"]

#: the folder of the installed ``finetune_theory`` package
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_EXCLUDED = ("cli",)


def source_files(experiment: Any = None) -> list[Path]:
    """The files the fingerprint of ``experiment`` covers, in a fixed order.

    >>> names = [p.name for p in source_files()]
    >>> "store.py" in names and "base.py" in names and "reproduce.py" not in names
    True
    """
    module_name = getattr(getattr(experiment, "run_unit", None), "__module__", "") or ""
    others = _other_experiment_files(module_name)
    files = sorted(
        p
        for p in PACKAGE_ROOT.rglob("*.py")
        if p.relative_to(PACKAGE_ROOT).parts[0] not in _EXCLUDED and p not in others
    )
    module = sys.modules.get(module_name)
    extra = getattr(module, "__file__", None)
    if extra:
        path = Path(extra).resolve()
        if PACKAGE_ROOT not in path.parents:
            files.append(path)
    return files


def _other_experiment_files(module_name: str) -> set[Path]:
    """The module files of the registered experiments other than ``module_name``."""
    from .. import experiments

    files = set()
    for dotted in experiments.REGISTRY.values():
        own = module_name == dotted or module_name.startswith(dotted + ".")
        if own or not dotted.startswith("finetune_theory."):
            continue
        parts = dotted.split(".")[1:]
        files.add(PACKAGE_ROOT.joinpath(*parts[:-1], parts[-1] + ".py"))
        files.update(PACKAGE_ROOT.joinpath(*parts).rglob("*.py"))  # a package: all its modules
    return files


def code_fingerprint(experiment: Any = None) -> str:
    """16 hex digits that change whenever a file of :func:`source_files` changes.

    >>> len(code_fingerprint()) == 16 and code_fingerprint() == code_fingerprint()
    True
    """
    digest = hashlib.sha256()
    for path in source_files(experiment):
        try:
            name = path.relative_to(PACKAGE_ROOT).as_posix()
        except ValueError:
            name = f"<external>/{path.name}"
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
