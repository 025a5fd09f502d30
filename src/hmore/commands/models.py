"""List the registered models, with their parameter counts."""

from __future__ import annotations

import argparse

HELP = "list registered models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name filter, e.g. 'hmore_flow*'")
    p.add_argument("--params", action="store_true", help="build each model and print its parameter count")


def run(args: argparse.Namespace) -> int:
    from hmore.errors import InputError
    from hmore.registry import create_model, list_models

    names = list_models(args.pattern)
    if not names:
        raise InputError(f"no registered model matches {args.pattern!r} ({len(list_models())} models: "
                         "`hmore models` lists them)")
    for name in names:
        if args.params:
            model = create_model(name)
            n = sum(p.numel() for p in model.parameters())
            print(f"{name:32s} {n / 1e6:8.3f} M")
        else:
            print(name)
    return 0
