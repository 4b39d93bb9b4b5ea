"""The ``finetune-theory`` command: argument parsing only; the work is in the library.

Each subcommand lives in its own module (``reproduce``, ``risk``, ``advise``) as two small
functions: ``add_<name>(subparsers)`` declares its arguments and sets ``handler``;
``_cmd_<name>(args) -> int`` calls library code and prints. To add a command, write both and
append the ``add_`` function to :data:`COMMANDS`. Shared argument types are in ``_common``.

Errors a user can cause (unknown experiment, unwritable folder, unreachable scheduler, a file
that is not a results store, ...) end with one line on standard error and a non-zero exit
status; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._common import PROG, Parser, formatter
from .advise import add_advise
from .reproduce import add_list, add_reproduce
from .risk import add_risk

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS: list[Callable[[Any], None]] = [add_reproduce, add_list, add_risk, add_advise]

_MAIN_EPILOG = """\
examples:
  finetune-theory list
  finetune-theory reproduce --size quick
  finetune-theory risk --depth inf --alpha 2
  finetune-theory advise --data target.csv --target y --source coef.json
  finetune-theory reproduce --help
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand of :data:`COMMANDS`."""
    from .. import __version__

    parser = Parser(
        prog=PROG,
        description="Fine-tuning with linear teachers: reproduce the experiments, predict risks.",
        epilog=_MAIN_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..runner.errors import RunnerError
    from ..runner.store import StoreError

    return (ValueError, OSError, RunnerError, StoreError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status (0 success, 1 failure, 2 usage, 130 Ctrl-C)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: already printed
        return exc.code if isinstance(exc.code, int) else 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    previous = _interrupt_on_sigterm()
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        hint = getattr(args, "interrupted", "")
        print(f"{PROG}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _interrupt_on_sigterm() -> Any:
    """Treat SIGTERM like Ctrl-C (clean stop, workers ended); the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


