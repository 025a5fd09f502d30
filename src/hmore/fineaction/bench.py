"""``hmore bench action-flow``: a small (2+1)D CNN on RGB alone and with each kind of flow added, on the generated
fine-grained action set (:mod:`hmore.fineaction.data`), beside the paper's Diving48 figures.

Stages as ``hmore bench gait`` (resumable; ``--flow-weights`` re-runs only the H-MoRe rows): the set with its DIS,
exact and H-MoRe flows, one training run per row, test scores cached beside each run, then ``results.json``,
``report.html`` (accuracy table, confusion matrices) and the tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hmore.bench.downstream import Timer, heatmaps, json_clean, markdown_table, mean_over_seeds, run_rows, uses_hmore
from hmore.errors import UsageError
from hmore.fineaction.data import ActionSetConfig, action_preset, build_action_set
from hmore.fineaction.motions import CLASSES
from hmore.flowfeed import channels_of
from hmore.io.atomic import write_json_atomic

log = logging.getLogger(__name__)

ROWS = ("rgb", "rgb+dis", "rgb+world", "rgb+local", "rgb+world+local", "rgb+exact_world+exact_local")
ROW_LABELS = {
    "rgb": "RGB",
    "rgb+dis": "RGB + DIS flow",
    "rgb+world": "RGB + hmore world",
    "rgb+local": "RGB + hmore local",
    "rgb+world+local": "RGB + hmore world+local",
    "rgb+exact_world+exact_local": "RGB + exact world+local (ceiling)",
}
# The paper's Diving48 top-1 / top-5 (docs/hmore.md) beside our rows.
PAPER = {
    "rgb": ("no flow", (64.07, 95.08)),
    "rgb+dis": ("+ VideoFlow flow", (71.45, 96.72)),
    "rgb+world": ("world only (ablation)", (70.91, None)),
    "rgb+local": ("local only (ablation)", (72.64, None)),
    "rgb+world+local": ("+ H-MoRe world+local", (72.99, 97.62)),
}


@dataclass(frozen=True)
class ActionRecipe:
    """Training recipe of every row (AdamW through hmore's engine)."""

    model: str = "r2plus1d_cpu"
    steps: int = 1200
    batch_size: int = 16
    frames: int = 12
    frame_step: int = 2
    lr: float = 2e-3
    decay_every: int = 400
    decay_gamma: float = 0.3
    warmup_steps: int = 50
    weight_decay: float = 1e-3
    val_identities: int = 3
    eval_every: int = 400


RECIPES = {
    "full": ActionRecipe(),
    "quick": ActionRecipe(steps=80, batch_size=8, frames=8, decay_every=50, warmup_steps=5, val_identities=0,
                          eval_every=0),
    "test": ActionRecipe(model="r2plus1d_test", steps=2, batch_size=2, frames=2, warmup_steps=0, val_identities=0,
                         eval_every=0),
}


def row_config(row: str, *, set_root: Path, recipe: ActionRecipe, seed: int, flow_key: str | None,
               threads: int | None) -> Any:
    """The ``action_flow`` task's run config of a row."""
    from hmore.fineaction.task import ActionFlowDataConfig, ActionFlowModelConfig, ActionFlowRunConfig
    from hmore.train.engine import OptimConfig, TrainConfig

    return ActionFlowRunConfig(
        model=ActionFlowModelConfig(name=recipe.model),
        data=ActionFlowDataConfig(root=str(set_root), channels=row, flow_key=flow_key or "", frames=recipe.frames,
                                  frame_step=recipe.frame_step, val_identities=recipe.val_identities, seed=seed),
        train=TrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, seed=seed, device="cpu", amp=False,
                          log_every=10, ckpt_every=100, eval_every=recipe.eval_every, keep_checkpoints=1,
                          tensorboard=False, threads=threads or 0,
                          optim=OptimConfig(lr=recipe.lr, weight_decay=recipe.weight_decay,
                                            decay_gamma=recipe.decay_gamma, decay_every=recipe.decay_every,
                                            warmup_steps=recipe.warmup_steps, grad_clip=5.0)),
    )


def run(out_dir: str | Path, *, preset: str = "full", rows: Sequence[str] = ROWS, seeds: Sequence[int] = (0,),
        flow_model: str = "hmore_flow_cpu", flow_weights: str | None = None, data_dir: str | Path | None = None,
        steps: int | None = None, stage: str = "all", shard: tuple[int, int] = (0, 1), threads: int | None = 1,
        progress: bool | None = None, command: str = "") -> dict[str, Any]:
    """The whole benchmark; arguments as :func:`hmore.bench.gait_bench.run`. Returns the summary (results.json)."""
    from hmore.bench.flow_bench import set_threads
    from hmore.fineaction.task import ActionFlowTask

    if stage not in ("data", "train", "all"):
        raise UsageError(f"stage must be data, train or all, got {stage!r}")
    for r in rows:
        channels_of(r)
        if not r.startswith("rgb"):
            raise UsageError(f"action-flow rows start with rgb, got {r!r}")
    set_threads(threads)
    config = action_preset(preset)
    recipe = RECIPES.get(preset, RECIPES["full"])
    if steps is not None:
        recipe = replace(recipe, steps=int(steps), decay_every=max(1, int(steps) // 3))
    out = Path(out_dir)
    set_root = Path(data_dir) if data_dir is not None else out / "set"
    fm = None
    if any(uses_hmore(r) for r in rows):
        from hmore.flowfeed import load_flow_model

        fm = load_flow_model(flow_model, flow_weights)
    timer = Timer()
    built = build_action_set(set_root, config, flow_model=fm, shard=shard, progress=progress)
    log.info("action set: %s", built)
    if stage == "data":
        return {"stage": "data", "set": str(set_root), "build": json_clean(built.__dict__)}

    def make(row: str, seed: int, key: str | None) -> tuple[Any, Any]:
        cfg = row_config(row, set_root=set_root, recipe=recipe, seed=seed, flow_key=key, threads=threads)
        return ActionFlowTask(config=cfg), cfg

    results = run_rows(out, rows=rows, seeds=seeds, flow_key=None if fm is None else fm.key, stage=stage, make=make,
                       score=lambda task, model: task.test(model))
    if stage == "train":
        return {"stage": "train", "rows": list(results)}
    summary = summarise(results, config=config, recipe=recipe, preset=preset, seeds=seeds, fm=fm,
                        timing=timer.as_dict(), command=command)
    write_json_atomic(out / "results.json", json_clean(summary))
    write_report(out, summary)
    return summary


def summarise(results: dict[str, dict[int, dict[str, Any]]], *, config: ActionSetConfig, recipe: ActionRecipe,
              preset: str, seeds: Sequence[int], fm: Any, timing: dict[str, Any], command: str) -> dict[str, Any]:
    """results.json: per row the mean over seeds of top-1/top-5 (%), the confusion matrix summed over seeds, the
    seeds' own values, and the paper pattern checks."""
    rows: dict[str, Any] = {}
    for row, per_seed in results.items():
        conf = np.sum([np.array(r["confusion"]) for r in per_seed.values()], axis=0)
        rows[row] = {"label": ROW_LABELS.get(row, row),
                     "top1": mean_over_seeds([100 * r["top1"] for r in per_seed.values()]),
                     "top5": mean_over_seeds([100 * r["top5"] for r in per_seed.values()]),
                     "per_class": (100 * np.diag(conf) / np.maximum(conf.sum(axis=1), 1)).tolist(),
                     "confusion": conf.tolist(), "seeds": {s: {"top1": r["top1"], "top5": r["top5"]}
                                                           for s, r in per_seed.items()},
                     "runs": {s: r["run"] for s, r in per_seed.items()},
                     "flow_key": next(iter(per_seed.values())).get("flow_key"), "paper": PAPER.get(row)}
    return {"benchmark": "action-flow", "preset": preset, "set": json_clean(config.__dict__), "classes": list(CLASSES),
            "recipe": json_clean(recipe.__dict__), "seeds": list(seeds),
            "flow_model": None if fm is None else {"name": fm.name, "weights": fm.weights, "sha256": fm.sha256},
            "rows": rows, "checks": pattern_checks(rows), "timing": timing, "command": command}


def pattern_checks(rows: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals: RGB + hmore flow above RGB alone and above RGB + DIS; world+local above either alone."""
    def top1(row: str) -> float | None:
        return rows.get(row, {}).get("top1")

    checks = []
    for better, worse in (("rgb+world+local", "rgb"), ("rgb+world+local", "rgb+dis"), ("rgb+dis", "rgb"),
                          ("rgb+world+local", "rgb+world"), ("rgb+world+local", "rgb+local"),
                          ("rgb+exact_world+exact_local", "rgb+world+local")):
        a, b = top1(better), top1(worse)
        if a is not None and b is not None:
            checks.append({"claim": f"top-1: {ROW_LABELS.get(better, better)} > {ROW_LABELS.get(worse, worse)}",
                           "holds": a > b, "values": [a, b]})
    return checks


def format_tables(summary: dict[str, Any]) -> str:
    """Our accuracy table beside the paper's Diving48 figures, then the pattern checks."""
    s = summary["set"]
    n_test = s["test_per_class"] * len(summary["classes"])
    head = (f"Fine-grained actions ({len(summary['classes'])} arm-gesture variants), generated set "
            f"'{summary['preset']}' ({n_test} test clips of {s['test_identities']} unseen identities), accuracy %, "
            f"mean of seeds {summary['seeds']}")
    table = []
    for e in summary["rows"].values():
        paper = e.get("paper") or ("", (None, None))
        table.append([e["label"], e["top1"], e["top5"], paper[0], *paper[1]])
    out = [head, "", markdown_table(["input", "top-1", "top-5", "paper row (Diving48)", "paper top-1", "paper top-5"],
                                    table)]
    if summary["checks"]:
        out += ["", "Pattern:"]
        out += [f"- {c['claim']}: {'holds' if c['holds'] else 'DOES NOT HOLD'} ({c['values'][0]:.2f} vs "
                f"{c['values'][1]:.2f})" for c in summary["checks"]]
    return "\n".join(out)


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """``report.html``: accuracy table, per-class accuracy, confusion matrices."""
    from hmore.report.html import Report

    figs = out / "figures"
    rows = summary["rows"]
    rep = Report("hmore bench action-flow", intro="A small (2+1)D CNN per input row on the generated fine-grained "
                 "action set (arm raises differing only in limb, direction, speed and order; random identity, "
                 "clothing, view, base motion and camera). Paper: Diving48 (H-MoRe, CVPR 2025).")
    if summary.get("command"):
        rep.add_code(summary["command"])
    rep.add_section("Accuracy")
    rep.add_table([[e["label"], _pct(e["top1"]), _pct(e["top5"]), (e.get("paper") or ("-",))[0],
                    *[_pct(v) for v in (e.get("paper") or ("", (None, None)))[1]]] for e in rows.values()],
                  header=["input", "top-1", "top-5", "paper row", "paper top-1", "paper top-5"])
    for c in summary["checks"]:
        rep.add_text(f"{c['claim']}: {'holds' if c['holds'] else 'does NOT hold'} ({c['values'][0]:.2f} vs "
                     f"{c['values'][1]:.2f}).")
    rep.add_section("Per class", "Accuracy % per class (rows: input rows).")
    rep.add_table([[e["label"], *[round(v, 1) for v in e["per_class"]]] for e in rows.values()],
                  header=["input", *summary["classes"]])
    rep.add_section("Confusion matrices", "Rows: true class; columns: predicted class; counts over the seeds.")
    short = [c.replace("_then_", ">").replace("forward", "fwd") for c in summary["classes"]]
    rep.add_figure(heatmaps(figs / "confusion.png", {e["label"]: np.array(e["confusion"]) for e in rows.values()},
                            xlabels=short, ylabels=short, xlabel="predicted", ylabel="true"), "confusion matrices")
    rep.add_section("Setup")
    rep.add_table([[k, str(v)] for k, v in summary["set"].items()], header=["set", "value"])
    rep.add_table([[k, str(v)] for k, v in summary["recipe"].items()], header=["recipe", "value"])
    if summary.get("flow_model"):
        rep.add_text(f"H-MoRe flow: {summary['flow_model']['name']} ({summary['flow_model']['weights']}, sha256 "
                     f"{summary['flow_model']['sha256'][:12]}).")
    return rep.save(out / "report.html")


def _pct(v: float | None) -> float | str:
    return "-" if v is None else round(float(v), 2)
