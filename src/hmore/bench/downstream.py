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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmore.config import to_dict
from hmore.errors import UsageError
from hmore.flowfeed import CHANNEL_SOURCE, channels_of
from hmore.io.atomic import write_json_atomic
from hmore.train import checkpoint as ckpt
from hmore.train.engine import OptimConfig, TrainConfig, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """The training recipe every row of a benchmark shares (AdamW through hmore's engine, step decay).

    Attributes: model (registered name), steps, batch_size, lr, decay_every / decay_gamma (step decay),
    warmup_steps, weight_decay, val_identities (training identities held out for the periodic evaluation),
    eval_every (0: only at the end).
    """

    model: str = ""
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    decay_every: int = 400
    decay_gamma: float = 0.3
    warmup_steps: int = 50
    weight_decay: float = 5e-4
    val_identities: int = 0
    eval_every: int = 0

    def train_config(self, *, seed: int, threads: int | None) -> TrainConfig:
        """The engine settings of a row (CPU, no AMP, one kept checkpoint, no TensorBoard)."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, seed=seed, device="cpu", amp=False,
                           log_every=10, ckpt_every=100, eval_every=self.eval_every, keep_checkpoints=1,
                           tensorboard=False, threads=threads or 0,
                           optim=OptimConfig(lr=self.lr, weight_decay=self.weight_decay, decay_gamma=self.decay_gamma,
                                             decay_every=self.decay_every, warmup_steps=self.warmup_steps,
                                             grad_clip=5.0))


@dataclass(frozen=True)
class BenchSpec:
    """What makes a downstream benchmark (see :func:`run_bench`).

    Attributes:
        name: ``gait`` / ``action-flow``.
        base_channel: the channel every row starts with (``sil`` / ``rgb``).
        preset: preset name -> the set's config.
        recipes: preset name -> :class:`Recipe` (``full`` for presets without their own).
        build: ``(root, config, flow_model=, shard=, progress=)`` -> build summary (resumable).
        make_task: ``(row, seed, flow_key, set_root, recipe, threads)`` -> ``(task, run_config)``.
        score: ``(task, model)`` -> the test scores of a row.
        score_val: ``(task, model)`` -> the validation scores of a row (held-out training identities), for
            ``run_bench(split="val")``; None: the benchmark has no validation split.
        flow_only_rows: rows may leave out ``base_channel`` (a flow stream).
        summarise: ``(results, config=, recipe=, preset=, seeds=, fm=, timing=, command=)`` -> results.json.
        write_report: ``(out_dir, summary)`` -> report.html.
    """

    name: str
    base_channel: str
    preset: Callable[[str], Any]
    recipes: Mapping[str, Recipe]
    build: Callable[..., Any]
    make_task: Callable[..., tuple[Any, Any]]
    score: Callable[[Any, torch.nn.Module], dict[str, Any]]
    summarise: Callable[..., dict[str, Any]]
    write_report: Callable[[Path, dict[str, Any]], Path]
    score_val: Callable[[Any, torch.nn.Module], dict[str, Any]] | None = None
    flow_only_rows: bool = False


def run_bench(spec: BenchSpec, out_dir: str | Path, *, preset: str = "full", rows: Sequence[str],
              seeds: Sequence[int] = (0,), flow_model: str = "hmore_flow_cpu", flow_weights: str | None = None,
              flow_pipeline: str = "raw", data_dir: str | Path | None = None, steps: int | None = None,
              stage: str = "all", shard: tuple[int, int] = (0, 1), threads: int | None = 1,
              progress: bool | None = None, command: str = "", recipe_overrides: Mapping[str, Any] | None = None,
              split: str = "test"
              ) -> dict[str, Any]:
    """A whole downstream benchmark: the set, one run per row and seed, scores, results.json and report.html.

    Args:
        spec: the benchmark.
        out_dir: output folder (runs, results.json, report.html).
        preset: the set preset and its recipe.
        rows: input-channel rows (each starts with ``spec.base_channel``).
        seeds: training seeds (the tables show their mean).
        flow_model, flow_weights: the H-MoRe model (and weights file; default its shipped weights).
        flow_pipeline: how the H-MoRe rows' flow is made (:data:`hmore.flowfeed.FLOW_PIPELINES`).
        data_dir: the set folder (default ``out_dir/set``).
        steps: override the recipe's training steps (its decay then every third of them).
        stage: ``data`` (only build the set), ``train`` (set + runs) or ``all`` (+ scores and report).
        shard: ``(i, n)`` for the data stage: build every n-th item (parallel processes).
        threads: torch/OpenCV threads (None: their defaults).
        progress: progress bars (None: on a terminal).
        command: the command line, for the report.
        recipe_overrides: recipe fields replaced (strict: an unknown field is an error), e.g. ``{"flow_mask": False}``.
        split: the split scored and reported: ``test``, or ``val`` (the held-out training identities, where recipes
            are chosen; scores cached as ``val.json`` beside ``test.json``).

    Returns:
        The summary written to ``results.json`` (``stage="all"``), else what the stage did.
    """
    from hmore.bench.flow_bench import set_threads

    if stage not in ("data", "train", "all"):
        raise UsageError(f"stage must be data, train or all, got {stage!r}")
    if split not in ("val", "test") or (split == "val" and spec.score_val is None):
        raise UsageError(f"{spec.name} scores split {'test or val' if spec.score_val else 'test'}, got {split!r}")
    for r in rows:
        channels_of(r)
        if r.split("+")[0] != spec.base_channel and not (spec.flow_only_rows and spec.base_channel not in r.split("+")):
            raise UsageError(f"{spec.name} rows start with {spec.base_channel}, got {r!r}")
    set_threads(threads)
    config = spec.preset(preset)
    recipe = spec.recipes.get(preset, spec.recipes["full"])
    if recipe_overrides:
        from hmore.config import from_dict

        recipe = from_dict(type(recipe), {**to_dict(recipe), **recipe_overrides})
    if steps is not None:
        recipe = replace(recipe, steps=int(steps), decay_every=max(1, int(steps) // 3))
    out = Path(out_dir)
    set_root = Path(data_dir) if data_dir is not None else out / "set"
    fm = None
    if any(uses_hmore(r) for r in rows):
        from hmore.flowfeed import load_flow_model

        fm = load_flow_model(flow_model, flow_weights, flow_pipeline)
    timer = Timer()
    built = spec.build(set_root, config, flow_model=fm, shard=shard, progress=progress)
    log.info("%s set: %s", spec.name, built)
    if stage == "data":
        return {"stage": "data", "set": str(set_root), "build": json_clean(built.__dict__)}
    results = run_rows(out, rows=rows, seeds=seeds, flow_key=None if fm is None else fm.key, stage=stage,
                       make=lambda row, seed, key: spec.make_task(row, seed, key, set_root, recipe, threads),
                       score=spec.score if split == "test" else spec.score_val, cache=f"{split}.json")
    if stage == "train":
        return {"stage": "train", "rows": list(results)}
    summary = spec.summarise(results, config=config, recipe=recipe, preset=preset, seeds=seeds, fm=fm,
                             timing=timer.as_dict(), command=command)
    summary["set_root"] = str(set_root)
    write_json_atomic(out / "results.json", json_clean(summary))
    spec.write_report(out, summary)
    return summary


def summary_head(benchmark: str, *, preset: str, config: Any, recipe: Recipe, seeds: Sequence[int], fm: Any,
                 timing: dict[str, Any], command: str) -> dict[str, Any]:
    """The entries every results.json starts with."""
    return {"benchmark": benchmark, "preset": preset, "set": json_clean(config.__dict__),
            "recipe": json_clean(recipe.__dict__), "seeds": list(seeds),
            "flow_model": None if fm is None else {"name": fm.name, "weights": fm.weights, "sha256": fm.sha256,
                                                   "pipeline": fm.pipeline, "key": fm.key},
            "timing": timing, "command": command}


def report_setup(rep: Any, summary: dict[str, Any]) -> None:
    """The report's closing section: the set, the recipe and the flow model."""
    rep.add_section("Setup")
    rep.add_table([[k, str(v)] for k, v in summary["set"].items()], header=["set", "value"])
    rep.add_table([[k, str(v)] for k, v in summary["recipe"].items()], header=["recipe", "value"])
    if summary.get("flow_model"):
        rep.add_text(f"H-MoRe flow: {summary['flow_model']['name']} ({summary['flow_model']['weights']}, sha256 "
                     f"{summary['flow_model']['sha256'][:12]}, pipeline "
                     f"{summary['flow_model'].get('pipeline', 'raw')}).")
    t = summary.get("timing") or {}
    if t:
        rep.add_text(f"This run: {t['seconds']:.0f} s wall, {t['cpu_seconds']:.0f} s CPU, load average "
                     f"{' '.join(str(v) for v in t['load_average'])}.")


def pct(v: float | None) -> float | str:
    """A percentage for a report table (``-`` when missing)."""
    return "-" if v is None else round(float(v), 2)


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
             score: Callable[[Any, torch.nn.Module], dict[str, Any]], stage: str = "all", cache: str = "test.json"
             ) -> dict[str, dict[int, dict[str, Any]]]:
    """Train every (row, seed) and score its last checkpoint (cached in the run's ``cache`` file); ``stage="train"``
    skips the scores.

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
            done = finished_scores(folder, cfg.train.steps, cache) if stage == "all" else None
            if done is not None:  # trained to the end and scored: neither the data nor the model is loaded
                results.setdefault(row, {})[seed] = {**done, "run": str(folder), "flow_key": key}
                continue
            model, step = train_row(task, cfg, folder)
            res: dict[str, Any] = {"step": step}
            if stage == "all":
                res = cached_scores(folder, step, lambda task=task, model=model: score(task, model), cache)
            results.setdefault(row, {})[seed] = {**res, "run": str(folder), "flow_key": key}
    return results


def finished_scores(folder: Path, steps: int, name: str = "test.json") -> dict[str, Any] | None:
    """``folder/name`` when it scores step ``steps`` (a run's final step), else None (missing or corrupt)."""
    path = folder / name
    try:
        found = json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None
    return found if found is not None and found.get("step") == steps else None


def cached_scores(folder: Path, step: int, compute: Callable[[], dict[str, Any]], name: str = "test.json"
                  ) -> dict[str, Any]:
    """``folder/name`` if it scores checkpoint ``step``, else ``compute()`` written there."""
    found = finished_scores(folder, step, name)
    if found is not None:
        return found
    scores = {"step": step, **compute()}
    write_json_atomic(folder / name, json_clean(scores))
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


def std_over_seeds(values: Sequence[float | None]) -> float | None:
    """The seeds' sample standard deviation (ddof 1); None with fewer than two finite values."""
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.std(vals, ddof=1)) if len(vals) >= 2 else None


def mean_std(mean: float | None, std: float | None) -> float | str | None:
    """A table cell: the mean alone (one seed) or ``mean ± std``."""
    return mean if std is None or mean is None else f"{mean:.2f} ± {std:.2f}"


# ---- pictures ----------------------------------------------------------------------------------------------------


def line_chart(path: Path, x: Sequence[float], series: Mapping[str, Sequence[float | None]], *, title: str,
               xlabel: str, ylabel: str) -> Path:
    """One line per series over ``x`` (missing values skipped)."""
    from hmore.report.charts import save_png

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

    return save_png(path, draw, figsize=(6.0, 3.6))


def input_panels(path: Path, image: np.ndarray, flows: Mapping[str, np.ndarray], *, label: str,
                 height: int = 128) -> Path:
    """One model input as people see it: ``image`` ((H, W) grey or (H, W, 3) RGB) and each flow channel
    ((2, H, W) pixels) colour-coded with one shared scale (Middlebury wheel, white = still)."""
    import cv2

    from hmore.io.atomic import atomic_path
    from hmore.report.draw import hstack_panels
    from hmore.report.flowviz import flow_to_color, robust_max_magnitude

    fields = [np.asarray(f, np.float32).transpose(1, 2, 0) for f in flows.values()]
    scale = robust_max_magnitude(np.stack(fields), percentile=98.0, floor=0.25) if fields else 1.0
    img = np.asarray(image)
    panels = [img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)]
    panels += [flow_to_color(f, max_mag=scale) for f in fields]
    out = hstack_panels(panels, [label, *flows], height=height)
    with atomic_path(path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    return path


def heatmaps(path: Path, mats: Mapping[str, np.ndarray], *, xlabels: Sequence[str], ylabels: Sequence[str],
             xlabel: str, ylabel: str, vmax: float | None = None, annotate: bool = True, cols: int = 3) -> Path:
    """A grid of matrices (confusion matrices, probe x gallery view rank-1), one panel per entry."""
    from hmore.report.charts import save_png

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

    return save_png(path, draw, figsize=(size * cols, size * rows))
