"""What the downstream benchmarks (``hmore bench gait``, ``hmore bench action-flow``) share: one training run per
input row through the engine (resumable), test scores cached beside each run, markdown tables and charts.

A row is an input-channel spec (``sil+world+local``, ``rgb+dis`` ...). Its run folder is named after the channels,
the seed and, for rows that use H-MoRe flow, the flow model's cache key (``<model>-<sha12>``): new flow weights train
new runs and leave the others as they are.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmore.config import to_dict
from hmore.flowfeed import CHANNEL_SOURCE, channels_of
from hmore.io.atomic import write_json_atomic
from hmore.train import checkpoint as ckpt
from hmore.train.engine import train

log = logging.getLogger(__name__)


def uses_hmore(row: str) -> bool:
    """Whether a row's channels include H-MoRe flow (``world`` / ``local``)."""
    return any(CHANNEL_SOURCE[c] == "hmore" for c in channels_of(row))


def run_dir(out: Path, row: str, *, seed: int, flow_key: str | None) -> Path:
    """The run folder of a row: ``runs/<channels>[@<flow key>]-s<seed>``."""
    name = row.replace("+", "_")
    if uses_hmore(row):
        name += f"@{flow_key}"
    return out / "runs" / f"{name}-s{seed}"


def train_row(task: Any, run_config: Any, folder: Path) -> tuple[torch.nn.Module, int]:
    """Train (or resume, or find finished) ``task`` with ``run_config.train``; returns the model with the last
    checkpoint's weights, in eval mode, and its step."""
    train(task, run_config.train, folder, resume=True, run_config=to_dict(run_config))
    last = ckpt.last_checkpoint(folder)
    if last is None:  # pragma: no cover - train() always writes a final checkpoint
        raise RuntimeError(f"no checkpoint in {folder} after training")
    model = task.build_model()
    ckpt.load_weights_into(model, last)
    step = int(ckpt.read_metadata(last).get("step", run_config.train.steps))
    return model.eval(), step


def run_rows(out: Path, *, rows: Sequence[str], seeds: Sequence[int], flow_key: str | None,
             make: Callable[[str, int, str | None], tuple[Any, Any]],
             score: Callable[[Any, torch.nn.Module], dict[str, Any]], stage: str = "all"
             ) -> dict[str, dict[int, dict[str, Any]]]:
    """Train every (row, seed) and score its last checkpoint (cached); ``stage="train"`` skips the scores.

    ``make(row, seed, key)`` returns ``(task, run_config)``; ``key`` is ``flow_key`` for rows with H-MoRe channels,
    else None. Returns ``results[row][seed]`` = the scores plus ``run`` (folder) and ``flow_key``.
    """
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        key = flow_key if uses_hmore(row) else None
        for seed in seeds:
            folder = run_dir(out, row, seed=seed, flow_key=key)
            task, cfg = make(row, seed, key)
            log.info("row %s seed %d -> %s", row, seed, folder)
            model, step = train_row(task, cfg, folder)
            res: dict[str, Any] = {"step": step}
            if stage == "all":
                res = cached_scores(folder, step, lambda task=task, model=model: score(task, model))
            results.setdefault(row, {})[seed] = {**res, "run": str(folder), "flow_key": key}
    return results


def cached_scores(folder: Path, step: int, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``folder/test.json`` if it scores checkpoint ``step``, else ``compute()`` written there."""
    path = folder / "test.json"
    if path.is_file():
        try:
            found = json.loads(path.read_text())
            if found.get("step") == step:
                return found
        except json.JSONDecodeError:
            pass
    scores = {"step": step, **compute()}
    write_json_atomic(path, json_clean(scores))
    return scores


def json_clean(obj: Any) -> Any:
    """JSON-able copy: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(obj, Mapping):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_clean(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats with 2 decimals, None as ``-``."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "-" if not np.isfinite(v) else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


class Timer:
    """Wall and CPU seconds since creation, with the load average (speed figures on a shared machine need it)."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(time.perf_counter() - self.wall0, 1),
                "cpu_seconds": round(time.process_time() - self.cpu0, 1),
                "load_average": [round(v, 2) for v in os.getloadavg()]}


def mean_over_seeds(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


# ---- pictures ----------------------------------------------------------------------------------------------------


def line_chart(path: Path, x: Sequence[float], series: Mapping[str, Sequence[float | None]], *, title: str,
               xlabel: str, ylabel: str) -> Path:
    """One line per series over ``x`` (missing values skipped)."""
    from hmore.bench.flow_bench import _save_png

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for j, (name, ys) in enumerate(series.items()):
            pts = [(a, b) for a, b in zip(x, ys) if b is not None and np.isfinite(b)]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=f"C{j}", label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xticks(list(x))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=7)

    return _save_png(path, draw, figsize=(6.0, 3.6))


def heatmaps(path: Path, mats: Mapping[str, np.ndarray], *, xlabels: Sequence[str], ylabels: Sequence[str],
             xlabel: str, ylabel: str, vmax: float | None = None, annotate: bool = True, cols: int = 3) -> Path:
    """A grid of matrices (confusion matrices, probe x gallery view rank-1), one panel per entry."""
    from hmore.bench.flow_bench import _save_png

    n = len(mats)
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    size = max(2.8, 0.32 * len(xlabels) + 1.4)

    def draw(fig: Any) -> None:
        for i, (title, m) in enumerate(mats.items()):
            ax = fig.add_subplot(rows, cols, i + 1)
            m = np.asarray(m, float)
            ax.imshow(np.nan_to_num(m, nan=0.0), cmap="viridis", vmin=0.0, vmax=vmax or max(float(np.nanmax(m)), 1e-9))
            ax.set_xticks(range(len(xlabels)), xlabels, rotation=60, fontsize=6)
            ax.set_yticks(range(len(ylabels)), ylabels, fontsize=6)
            ax.set_xlabel(xlabel, fontsize=7)
            ax.set_ylabel(ylabel, fontsize=7)
            ax.set_title(title, fontsize=8)
            if annotate and m.shape[0] * m.shape[1] <= 169:
                for (r, c), v in np.ndenumerate(m):
                    if np.isfinite(v) and v > 0:
                        ax.text(c, r, f"{v:.0f}" if v >= 1 else f"{v:.2f}", ha="center", va="center", fontsize=5,
                                color="w" if v < 0.6 * (vmax or np.nanmax(m)) else "k")

    return _save_png(path, draw, figsize=(size * cols, size * rows))
