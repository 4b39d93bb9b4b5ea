"""Experiments E1-E9, found by name (E9 optional).

Each module holds one :class:`~finetune_theory.experiments.base.Experiment` named
``EXPERIMENT``. Modules are imported only when asked for, so a missing optional dependency of
one experiment does not stop the others.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Experiment, Verdict

__all__ = ["Experiment", "Verdict", "OPTIONAL", "REGISTRY", "available", "get", "skipped"]

#: experiment name -> module path, in report order
REGISTRY: dict[str, str] = {
    "measure": "finetune_theory.experiments.measure",  # E1 linear regression
    "depth": "finetune_theory.experiments.depth",  # E2 deep linear, effect of depth
    "scaling": "finetune_theory.experiments.scaling",  # E3 scaling in a 7-layer model
    "freezing": "finetune_theory.experiments.freezing",  # E4 freezing layers
    "relu": "finetune_theory.experiments.relu",  # E5 two-layer ReLU in the NTK regime
    "realistic": "finetune_theory.experiments.realistic",  # E6 real covariances and tasks
    "reduction": "finetune_theory.experiments.reduction",  # E7 sample-complexity reduction
    "networks": "finetune_theory.experiments.networks",  # E8 real pretrained networks
    "pretrained": "finetune_theory.experiments.pretrained",  # E9 CHGNet (optional)
}

#: optional experiments -> (the modules they need, the line that installs them); an optional
#: experiment whose modules are missing is left out of :func:`available` (see :func:`skipped`)
OPTIONAL: dict[str, tuple[tuple[str, ...], str]] = {
    "pretrained": (("chgnet", "ase"), 'pip install "finetune-theory[pretrained]"'),
}


def skipped() -> dict[str, str]:
    """Optional experiments whose packages are missing -> the line that installs them.

    Examples
    --------
    >>> set(skipped()) <= set(OPTIONAL)
    True
    """
    return {
        name: install
        for name, (modules, install) in OPTIONAL.items()
        if any(importlib.util.find_spec(m) is None for m in modules)
    }


def available() -> list[str]:
    """Names of the experiments whose module (and optional packages) are present, in order.

    Examples
    --------
    >>> available()[:3]
    ['measure', 'depth', 'scaling']
    """
    missing = skipped()
    return [
        name
        for name, mod in REGISTRY.items()
        if name not in missing and importlib.util.find_spec(mod) is not None
    ]


def get(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` for an unknown one.

    Parameters
    ----------
    name : str
        A name of the registry whose module can be imported (see :func:`available`).

    Returns
    -------
    Experiment
        The module's ``EXPERIMENT``.

    Examples
    --------
    >>> get("measure").title
    'E1 - linear regression: the covariance-aware similarity measure'
    >>> get("nothing")
    Traceback (most recent call last):
    ...
    ValueError: unknown experiment 'nothing'; choose from measure, ...
    """
    names = available()
    if name not in names:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(names)}")
    return importlib.import_module(REGISTRY[name]).EXPERIMENT


def __getattr__(name: str) -> Any:
    # Experiment and Verdict load pandas: imported on first use, so that reading REGISTRY
    # (the command line's help) stays light
    if name in ("Experiment", "Verdict"):
        from . import base

        return getattr(base, name)
    if name in ("figure_options", "read_caption", "DEFAULT_DPI"):  # for the runner's report
        from . import _plotting

        return getattr(_plotting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
