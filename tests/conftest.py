"""Shared fixtures: the real-data folder (skipped with a reason when absent), seeded RNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hmore.paths import DATA_ENV, shared_data_dir

# The suite's tensors are small: one thread avoids oversubscribing the 2 cores (several times faster when anything
# else runs, e.g. the DDP test's worker processes), and makes timings steadier.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$HMORE_DATA``); skips the test when the folder is absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"shared real data not found at {root} (set {DATA_ENV} to its folder)")
    return root


def require_file(root: Path, *parts: str) -> Path:
    """A file inside the shared data; skips the test with a reason when it is missing."""
    path = root.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared data file missing: {path}")
    return path


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
