"""The ``hmore`` command: parses arguments, calls the library, prints results.

Each subcommand lives in ``hmore.commands.<name>`` and provides ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Errors of the user's making become one line on stderr, ``hmore CMD: error: ...``, and a
non-zero exit code: 2 for usage errors (:class:`hmore.errors.UsageError`), 1 for bad input
(:class:`hmore.errors.InputError`) and for what the machine refuses: a file system error (missing file, no space
left, a file in the way of an output folder, permission denied: the path is named) or running out of memory (the
size asked for is named). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from hmore import __version__
from hmore.errors import HmoreError

# name -> module under hmore.commands; add one line per subcommand.
COMMANDS: dict[str, str] = {
    "models": "models",
    "weights": "weights",
    "train": "train",
    "demo": "demo",
    "priors": "priors",
    "synth": "synth",
    "flow": "flow",
    "bench": "bench",
    "lift": "lift",
    "classify": "classify",
    "concepts": "concepts",
    "mesh": "mesh",
    "gait": "gait",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as argparse does, with the usage on the line before
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None, *, arguments: bool = True) -> argparse.ArgumentParser:
    """The ``hmore`` parser with every subcommand, or only subcommand ``only``: each subcommand's module is imported
    to build its parser, and some import torch (a second or more), which a command that does not need it should not
    pay for (``hmore priors`` runs MediaPipe only). ``arguments=False`` lists the subcommands with their one-line help
    but builds none of their arguments (``hmore --help`` and ``hmore --version`` need no more; the bench
    subcommands' defaults come from modules that load torch)."""
    parser = _Parser(prog="hmore", description="Human-centric motion representation and action analysis.")
    parser.add_argument("--version", action="version", version=f"hmore {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"hmore.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        if arguments:
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (its first word that is not an option), or None when it names none we know."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_of(argv)
    parser = build_parser(only=command, arguments=command is not None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except HmoreError as exc:
        print(f"hmore {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"hmore {args.command}: error: {describe_os_error(exc, getattr(args, 'out', None))}", file=sys.stderr)
        return 1
    except MemoryError as exc:
        print(f"hmore {args.command}: error: {describe_memory_error(exc)}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # torch's CPU allocator reports exhaustion as a RuntimeError
        if "not enough memory" not in str(exc) and "out of memory" not in str(exc):
            raise
        print(f"hmore {args.command}: error: {describe_memory_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hmore {args.command}: interrupted", file=sys.stderr)
        return 130


def describe_os_error(exc: OSError, out: str | Path | None = None) -> str:
    """One line for a file system error: what happened and the path (the file, else the command's output)."""
    where = exc.filename if exc.filename is not None else out
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device while writing {where or 'the output'} (partial files were removed)"
    if exc.errno == errno.EFBIG:
        return (f"file too large for the file system or the file-size limit while writing {where or 'the output'} "
                "(partial files were removed)")
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename or exc}"
    if exc.errno == errno.ENOMEM:
        return "out of memory (ask for fewer frames or a smaller size)"
    reason = exc.strerror or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return f"{reason}: {where}" if where is not None else reason


def describe_memory_error(exc: BaseException) -> str:
    """One line for running out of memory, with the size asked for when the allocator said it."""
    detail = str(exc).splitlines()[0].strip() if str(exc) else ""
    return f"out of memory{': ' + detail if detail else ''} (ask for fewer frames or a smaller size)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
