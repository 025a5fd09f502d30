"""Charts for reports: a matplotlib figure drawn by a callback and saved as a PNG (headless, atomic)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def save_png(path: str | Path, draw: Callable[[Any], None], *, figsize: tuple[float, float], dpi: int = 90) -> Path:
    """Make a matplotlib figure of ``figsize`` inches, let ``draw(fig)`` fill it, save it atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hmore.io.atomic import atomic_path

    path = Path(path)
    fig = plt.figure(figsize=figsize, dpi=dpi)
    try:
        draw(fig)
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return path
