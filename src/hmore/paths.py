"""Where hmore finds the shared real data and its own packaged assets."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "HMORE_DATA"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[1]  # meaningful for a source checkout (editable install)


def shared_data_dir() -> Path:
    """The shared real-data folder: ``$HMORE_DATA`` if set, else ``../shared/data`` beside the project root.

    The folder may not exist: callers (tests, benchmarks) check and skip with a reason.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    beside_repo = REPO_ROOT.parent / "shared" / "data"
    if beside_repo.is_dir():
        return beside_repo
    return (Path.cwd().parent / "shared" / "data").resolve()


def shared_data(*parts: str) -> Path:
    """A path inside :func:`shared_data_dir` (not checked for existence)."""
    return shared_data_dir().joinpath(*parts)


def assets_dir() -> Path:
    """Files shipped inside the package (weights, demo motion)."""
    return PACKAGE_DIR / "assets"
