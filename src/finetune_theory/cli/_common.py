"""Pieces every command shares: the one-line-error parser, help layout, argument types.

Conventions every command follows:

- every error is one line on standard error that starts with ``finetune-theory: error:``
  (:data:`ERROR_PREFIX`), usage errors with exit status 2, the others with 1;
- a list argument takes its values separated by spaces after one option (``--n 5 10 20``,
  ``nargs="+"``); a comma inside a value separates values too (``--n 5,10,20``), see
  :func:`list_of`;
- output files named on the command line are checked before any computation
  (:func:`check_output`).

This module imports nothing heavy: ``finetune-theory --help`` must start fast.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # pathlib is imported when a path is checked, not at start-up
    from pathlib import Path

PROG = "finetune-theory"
#: the start of every error line the command prints
ERROR_PREFIX = f"{PROG}: error:"


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{ERROR_PREFIX} {message} (see '{self.prog} --help')\n")


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


# ------------------------------------------------------------------ argument types
def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def depth(text: str) -> float:
    if text.strip().lower() in {"inf", "infinity", "∞"}:
        return math.inf
    return positive_int(text)


def nonnegative_float(text: str) -> float:
    """An argparse type: a finite number ``>= 0``.

    Examples
    --------
    >>> nonnegative_float("0.5")
    0.5
    >>> nonnegative_float("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a number >= 0, got '-1'
    """
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def list_of(parse: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """An argparse type for ``nargs="+"`` options: one value, or several separated by commas.

    Each parsed item is a list; :func:`flatten` joins the items of an option into one list.

    Examples
    --------
    >>> parse = list_of(int)
    >>> flatten([parse("5,10"), parse("20")])  # --n 5,10 20
    [5, 10, 20]
    """

    def parse_list(text: str) -> list[Any]:
        parts = [part.strip() for part in text.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"expected values separated by spaces, got {text!r}")
        return [parse(part) for part in parts]

    return parse_list


def flatten(items: Sequence[Sequence[Any]] | None) -> list[Any] | None:
    """The values of a :func:`list_of` option as one list (``None`` when it was not given).

    Examples
    --------
    >>> flatten([[1.0], [2.0, 3.0]]), flatten(None)
    ([1.0, 2.0, 3.0], None)
    """
    if items is None:
        return None
    return [value for item in items for value in item]


#: the figure formats ``--plot`` accepts
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_output(path: str, option: str, suffixes: Sequence[str] | None = None) -> Path:
    """Fail, naming ``option``, when ``path`` cannot be written; run it before any computation.

    Parameters
    ----------
    path
        The file name given on the command line.
    option
        The option that named it, for the message (``"--plot"``).
    suffixes
        The allowed file suffixes (lower case, with the dot); any when ``None``.

    Returns
    -------
    pathlib.Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    ValueError
        One readable line: a folder given, a missing or read-only folder, a read-only file or a
        suffix outside ``suffixes``.

    Examples
    --------
    >>> check_output("/no/such/folder/curve.png", "--plot")
    Traceback (most recent call last):
    ...
    ValueError: --plot /no/such/folder/curve.png: the folder /no/such/folder does not exist
    """
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file name")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise ValueError(
            f"{option} {path}: the file name must end in {', '.join(suffixes)}"
            + (f", not {p.suffix!r}" if p.suffix else "")
        )
    parent = p.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{option} {path}: not writable")
    return p
