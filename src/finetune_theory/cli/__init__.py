"""The ``finetune-theory`` command: argument parsing only; the work is in the library.

Each subcommand lives in its own module (``reproduce``, ``risk``, ``advise``) as two small
functions: ``add_<name>(subparsers)`` declares its arguments and sets ``handler``;
``_cmd_<name>(args) -> int`` calls library code and prints. To add a command, write both and
append the ``add_`` function to :data:`COMMANDS`. Shared argument types are in ``_common``.

Errors a user can cause (unknown experiment, unwritable folder, unreachable scheduler, a file
that is not a results store, ...) end with one line on standard error and a non-zero exit
status; ``--debug`` (before or after the command name) shows the full traceback instead.

Start-up imports nothing heavy: the command modules import their libraries (NumPy, pandas,
SciPy, Matplotlib, ...) inside the functions that run a command, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._common import ERROR_PREFIX, PROG, Parser, formatter
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
    """The parser with every subcommand of :data:`COMMANDS`.

    ``--debug`` is accepted before and after the command name.

    Examples
    --------
    >>> args = build_parser().parse_args(["risk", "--n", "5", "10", "--debug"])
    >>> args.debug, args.n
    (True, [[5], [10]])
    """
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
    for command in sub.choices.values():
        command.set_defaults(command_parser=command)  # its usage errors name its --help
        # after the command name too; SUPPRESS keeps a --debug given before it
        command.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show full tracebacks on errors",
        )
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..runner.errors import RunnerError
    from ..runner.store import StoreError

    return (ValueError, OSError, RunnerError, StoreError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status (0 success, 1 failure, 2 usage, 130 Ctrl-C).

    Errors are one line that starts with ``finetune-theory: error:``.
    Ctrl-C (or SIGTERM) prints one line and gives 130 however often it is pressed: the first
    press stops the run, later ones are ignored while the run cleans up (workers stopped, the
    store closed; at most 20 s, then the process ends anyway). Called as the program
    (``argv`` None), both signals are ignored after an interrupt, so that presses during
    interpreter shutdown change nothing either.
    """
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the command's parser, which points to its own --help
            owner = getattr(args, "command_parser", parser)
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, usage errors: already printed
        return exc.code if isinstance(exc.code, int) else 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    hint = getattr(args, "interrupted", "")
    interrupts = _Interrupts(f"{PROG}: interrupted{'; ' + hint if hint else ''}")
    previous = _interrupt_on_sigterm(interrupts)
    interrupted = False
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        interrupted = True
        interrupts.report()
        return 130
    except _user_errors() as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{ERROR_PREFIX} {message}", file=sys.stderr)
        return 1
    finally:
        interrupts.cancel()
        if previous is not None:
            for signum, old in previous.items():
                # as the program, after an interrupt: ignore further presses while Python
                # shuts down (it would restore the default handler, and a press would then
                # end the process with -2 instead of 130)
                signal.signal(signum, signal.SIG_IGN if interrupted and argv is None else old)


class _Interrupts:
    """The SIGINT/SIGTERM handler of a command: one line and status 130, however many.

    The first signal raises :class:`KeyboardInterrupt` (the run stops its workers and closes
    the store); later ones are ignored, so they cannot cut that clean-up short. Should the
    clean-up take longer than ``grace`` seconds, the process ends anyway, with the same line
    and status.
    """

    def __init__(self, line: str, grace: float = 20.0) -> None:
        self.line = line
        self.grace = grace
        self.count = 0
        self.reported = False
        self._timer: threading.Timer | None = None

    def report(self) -> None:
        """Print the line (once)."""
        if not self.reported:
            self.reported = True
            print(self.line, file=sys.stderr, flush=True)

    def _hard_exit(self) -> None:
        self.report()
        os._exit(130)

    def cancel(self) -> None:
        """Stop the clean-up deadline (the command returned in time)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count == 1:
            self._timer = threading.Timer(self.grace, self._hard_exit)
            self._timer.daemon = True
            self._timer.start()
            raise KeyboardInterrupt


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _interrupt_on_sigterm(handler: Any = None) -> dict[int, Any] | None:
    """Route Ctrl-C and SIGTERM to ``handler`` (clean stop, workers ended); the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return None
    handler = handler if handler is not None else _raise_interrupt
    return {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
