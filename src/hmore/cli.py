"""The ``hmore`` command: parses arguments, calls the library, prints results.

Each subcommand lives in ``hmore.commands.<name>`` and provides ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Errors of the user's making (:class:`hmore.errors.HmoreError`, a missing file) become one
line on stderr and a non-zero exit code: 2 for usage errors, 1 for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from hmore import __version__
from hmore.errors import HmoreError

# name -> module under hmore.commands; add one line per subcommand.
COMMANDS: dict[str, str] = {
    "models": "models",
    "train": "train",
    "demo": "demo",
    "priors": "priors",
    "synth": "synth",
    "flow": "flow",
    "bench": "bench",
    "lift": "lift",
    "classify": "classify",
    "concepts": "concepts",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as argparse does, with the usage on the line before
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hmore", description="Human-centric motion representation and action analysis.")
    parser.add_argument("--version", action="version", version=f"hmore {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"hmore.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
    except FileNotFoundError as exc:
        print(f"hmore {args.command}: error: file not found: {exc.filename or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hmore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
