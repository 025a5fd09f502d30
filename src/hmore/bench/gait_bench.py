"""``hmore bench gait``: GaitBase-style gait recognition on a CASIA-B-like generated set, with silhouettes alone and
with each kind of flow added, scored with the CASIA-B protocol beside the paper's figures.

Stages (each resumable; run the same command again to continue): the set (``hmore.gait.data``: silhouettes, DIS
and exact flows; H-MoRe flows of the chosen flow model), one training run per row (``hmore.gait.task`` through the
training engine), the test scores of each run (cached beside it), then ``results.json``, ``report.html`` and the
tables. ``--flow-weights`` re-runs only the H-MoRe rows with other flow weights (their cache key includes the
weights' sha256).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hmore.bench.downstream import (
    Timer,
    heatmaps,
    json_clean,
    line_chart,
    markdown_table,
    mean_over_seeds,
    run_rows,
    uses_hmore,
)
from hmore.errors import UsageError
from hmore.flowfeed import channels_of
from hmore.gait.data import GaitSetConfig, build_gait_set, gait_preset
from hmore.io.atomic import write_json_atomic

log = logging.getLogger(__name__)

ROWS = ("sil", "sil+dis", "sil+world", "sil+local", "sil+world+local", "sil+exact_world+exact_local")
ROW_LABELS = {
    "sil": "silhouettes",
    "sil+dis": "+ DIS flow",
    "sil+world": "+ hmore world",
    "sil+local": "+ hmore local",
    "sil+world+local": "+ hmore world+local",
    "sil+exact_world+exact_local": "+ exact world+local (ceiling)",
    "sil+exact_world": "+ exact world",
    "sil+exact_local": "+ exact local",
    "sil+dis+local": "+ DIS + hmore local",
}
CONDITIONS = ("NM", "BG", "CL")
# The paper's CASIA-B rank-1 (GaitBase), docs/hmore.md: the row each of ours stands beside.
PAPER = {
    "sil": ("silhouettes only", (96.51, 91.50, 78.02)),
    "sil+dis": ("+ RAFT flow", (96.91, 93.12, 80.52)),
    "sil+world": ("world only (ablation)", (None, None, 80.78)),
    "sil+local": ("local only (ablation)", (None, None, 82.82)),
    "sil+world+local": ("+ H-MoRe world+local", (98.26, 95.62, 87.66)),
}


@dataclass(frozen=True)
class GaitRecipe:
    """The training recipe of every row (ours: AdamW through hmore's engine instead of GaitBase's SGD 0.1).

    Attributes: model, steps, batch_size (sequences), seqs_per_id, frames (per sequence), lr, decay_every,
    decay_gamma, warmup_steps, val_identities, eval_every, weight_decay.
    """

    model: str = "gaitbase_cpu"
    steps: int = 1000
    batch_size: int = 16
    seqs_per_id: int = 2
    frames: int = 8
    lr: float = 1e-3
    decay_every: int = 400
    decay_gamma: float = 0.3
    warmup_steps: int = 50
    val_identities: int = 4
    eval_every: int = 250
    weight_decay: float = 5e-4


RECIPES = {
    "full": GaitRecipe(),
    "casia11": GaitRecipe(),
    "quick": GaitRecipe(steps=60, batch_size=8, frames=6, decay_every=40, decay_gamma=0.3, warmup_steps=5,
                        val_identities=0, eval_every=0),
    "test": GaitRecipe(model="gaitbase_test", steps=2, batch_size=4, frames=2, warmup_steps=0, val_identities=0,
                       eval_every=0),
}


def row_config(row: str, *, set_root: Path, recipe: GaitRecipe, seed: int, flow_key: str | None,
               threads: int | None) -> Any:
    """The ``gait`` task's run config of a row."""
    from hmore.gait.task import GaitDataConfig, GaitModelConfig, GaitRunConfig
    from hmore.train.engine import OptimConfig, TrainConfig

    kwargs: dict[str, Any] = {}
    if recipe.model == "gaitbase_test":
        kwargs = {"parts": 4}
    return GaitRunConfig(
        model=GaitModelConfig(name=recipe.model, kwargs=kwargs),
        data=GaitDataConfig(root=str(set_root), channels=row, flow_key=flow_key or "",
                            val_identities=recipe.val_identities, seqs_per_id=recipe.seqs_per_id,
                            frames=recipe.frames, seed=seed),
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
    """The whole benchmark (see the module docstring). Returns the summary written to ``results.json``.

    Args:
        out_dir: output folder (runs, results.json, report.html).
        preset: the gait set (:data:`hmore.gait.data.PRESETS`) and its recipe (:data:`RECIPES`).
        rows: input-channel rows.
        seeds: training seeds (the table shows their mean).
        flow_model, flow_weights: the H-MoRe model (and weights file; default its shipped weights).
        data_dir: the set folder (default ``out_dir/set``).
        steps: override the recipe's training steps.
        stage: ``data`` (only build the set), ``train`` (set + runs) or ``all`` (+ scores and report).
        shard: ``(i, n)`` for the data stage: build every n-th sequence (parallel processes).
        threads: torch/OpenCV threads (None: their defaults).
        progress: progress bars (None: on a terminal).
        command: the command line, for the report.
    """
    from hmore.bench.flow_bench import set_threads

    if stage not in ("data", "train", "all"):
        raise UsageError(f"stage must be data, train or all, got {stage!r}")
    for r in rows:
        channels_of(r)
        if not r.startswith("sil"):
            raise UsageError(f"gait rows start with sil, got {r!r}")
    set_threads(threads)
    config = gait_preset(preset)
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
    built = build_gait_set(set_root, config, flow_model=fm, shard=shard, progress=progress)
    log.info("gait set: %s", built)
    if stage == "data":
        return {"stage": "data", "set": str(set_root), "build": json_clean(built.__dict__)}
    results = run_rows(
        out, rows=rows, seeds=seeds, flow_key=None if fm is None else fm.key, stage=stage,
        make=lambda row, seed, key: _task(row, seed=seed, key=key, set_root=set_root, recipe=recipe, threads=threads),
        score=lambda task, model: {"rank1": task.test(model).as_dict()})
    if stage == "train":
        return {"stage": "train", "rows": list(results)}
    summary = summarise(results, config=config, recipe=recipe, preset=preset, seeds=seeds, fm=fm,
                        timing=timer.as_dict(), command=command)
    write_json_atomic(out / "results.json", json_clean(summary))
    write_report(out, summary)
    return summary


def _task(row: str, *, seed: int, key: str | None, set_root: Path, recipe: GaitRecipe, threads: int | None
          ) -> tuple[Any, Any]:
    from hmore.gait.task import GaitTask

    cfg = row_config(row, set_root=set_root, recipe=recipe, seed=seed, flow_key=key, threads=threads)
    return GaitTask(config=cfg), cfg


def summarise(results: dict[str, dict[int, dict[str, Any]]], *, config: GaitSetConfig, recipe: GaitRecipe,
              preset: str, seeds: Sequence[int], fm: Any, timing: dict[str, Any], command: str) -> dict[str, Any]:
    """results.json: per row the mean over seeds of each condition's rank-1 (%), the per-view curves, the seeds'
    own values, and the paper pattern checks."""
    rows: dict[str, Any] = {}
    for row, per_seed in results.items():
        means = {c: mean_over_seeds([100 * (r["rank1"]["mean"].get(c) or np.nan) for r in per_seed.values()])
                 for c in CONDITIONS}
        views = next(iter(per_seed.values()))["rank1"]["views"]
        per_view = {c: [mean_over_seeds([100 * (r["rank1"]["per_view"][c][i] or np.nan) for r in per_seed.values()])
                        for i in range(len(views))] for c in CONDITIONS}
        rows[row] = {"label": ROW_LABELS.get(row, row), "rank1": means,
                     "mean": mean_over_seeds([means[c] for c in CONDITIONS]), "views": views, "per_view": per_view,
                     "matrix": {s: r["rank1"]["matrix"] for s, r in per_seed.items()},
                     "seeds": {s: {c: r["rank1"]["mean"].get(c) for c in CONDITIONS} for s, r in per_seed.items()},
                     "runs": {s: r["run"] for s, r in per_seed.items()}, "flow_key": next(iter(per_seed.values()))
                     .get("flow_key"), "paper": PAPER.get(row)}
    return {"benchmark": "gait", "preset": preset, "set": json_clean(config.__dict__),
            "train_identities": len(config.train_subjects) - recipe.val_identities,
            "val_identities": recipe.val_identities, "test_identities": config.test_identities,
            "recipe": json_clean(recipe.__dict__), "seeds": list(seeds),
            "flow_model": None if fm is None else {"name": fm.name, "weights": fm.weights, "sha256": fm.sha256},
            "rows": rows, "checks": pattern_checks(rows), "timing": timing, "command": command}


def pattern_checks(rows: dict[str, Any]) -> list[dict[str, Any]]:
    """The paper's claims, each checked on our rows: ``holds`` True/False (None when a row is missing)."""
    def r1(row: str, c: str) -> float | None:
        return rows.get(row, {}).get("rank1", {}).get(c)

    checks = []
    base = "sil"
    for row in rows:
        if row == base or r1(base, "CL") is None:
            continue
        gains = {c: (None if r1(row, c) is None or r1(base, c) is None else r1(row, c) - r1(base, c))
                 for c in CONDITIONS}
        if None in gains.values():
            continue
        checks.append({"claim": f"{ROW_LABELS.get(row, row)}: adding flow raises CL the most",
                       "holds": gains["CL"] >= max(gains["NM"], gains["BG"]), "gains": gains})
    for better, worse in (("sil+world+local", "sil+dis"), ("sil+world+local", "sil+world"),
                          ("sil+world+local", "sil+local"), ("sil+exact_world+exact_local", "sil+world+local")):
        a, b = r1(better, "CL"), r1(worse, "CL")
        if a is not None and b is not None:
            checks.append({"claim": f"CL: {ROW_LABELS.get(better, better)} > {ROW_LABELS.get(worse, worse)}",
                           "holds": a > b, "values": [a, b]})
    return checks


def _check_line(c: dict[str, Any]) -> str:
    if "gains" in c:
        detail = ", ".join(f"{k} {v:+.2f}" for k, v in c["gains"].items())
    else:
        detail = " vs ".join(f"{v:.2f}" for v in c["values"])
    return f"- {c['claim']}: {'holds' if c['holds'] else 'DOES NOT HOLD'} ({detail})"


def format_tables(summary: dict[str, Any]) -> str:
    """Our rank-1 table beside the paper's, then the pattern checks."""
    rows = summary["rows"]
    s = summary["set"]
    head = (f"Gait, CASIA-B protocol on the generated set '{summary['preset']}' ({summary['test_identities']} test "
            f"identities, {len(s['views'])} views, NM {s['nm']} / BG {s['bg']} / CL {s['cl']}), rank-1 % excluding "
            f"identical views, mean of seeds {summary['seeds']}")
    base_cl = rows.get("sil", {}).get("rank1", {}).get("CL")
    table = []
    for e in rows.values():
        paper = e.get("paper") or ("", (None, None, None))
        cl = e["rank1"]["CL"]
        gain = None if cl is None or base_cl is None else cl - base_cl
        table.append([e["label"], *[e["rank1"][c] for c in CONDITIONS], e["mean"], gain, paper[0], *paper[1]])
    out = [head, "", markdown_table(["input", "NM", "BG", "CL", "mean", "CL vs sil", "paper row", "paper NM",
                                     "paper BG", "paper CL"], table)]
    if summary["checks"]:
        out += ["", "Paper pattern:", *[_check_line(c) for c in summary["checks"]]]
    return "\n".join(out)


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """``report.html`` with the table, per-view rank-1 curves and probe x gallery view matrices."""
    from hmore.report.html import Report

    figs = out / "figures"
    rows = summary["rows"]
    rep = Report("hmore bench gait", intro="GaitBase-style recogniser, one training run per input row, CASIA-B "
                 "protocol: gallery NM 1-4, probes NM 5-6, BG 1-2, CL 1-2; rank-1 excluding the identical view, "
                 "averaged over views. Paper: GaitBase on CASIA-B (H-MoRe, CVPR 2025).")
    if summary.get("command"):
        rep.add_code(summary["command"])
    rep.add_section("Rank-1")
    header = ["input", "NM", "BG", "CL", "mean", "paper row", "paper NM", "paper BG", "paper CL"]
    body = []
    for e in rows.values():
        paper = e.get("paper") or ("-", (None, None, None))
        body.append([e["label"], *[_pct(e["rank1"][c]) for c in CONDITIONS], _pct(e["mean"]), paper[0],
                     *[_pct(v) for v in paper[1]]])
    rep.add_table(body, header=header)
    for c in summary["checks"]:
        rep.add_text(f"{c['claim']}: {'holds' if c['holds'] else 'does NOT hold'}.")
    views = next(iter(rows.values()))["views"]
    rep.add_section("Rank-1 per probe view", "Identical view excluded; one line per input row.")
    for cond in CONDITIONS:
        series = {e["label"]: e["per_view"][cond] for e in rows.values()}
        rep.add_figure(line_chart(figs / f"per_view_{cond}.png", views, series, title=f"{cond} probes",
                                  xlabel="probe view (degrees)", ylabel="rank-1 %"), f"{cond}: rank-1 per probe view")
    rep.add_section("Probe view x gallery view", "Rank-1 % of each probe/gallery view pair (first seed), CL probes.")
    mats = {e["label"]: 100 * np.array(next(iter(e["matrix"].values()))["CL"], dtype=float) for e in rows.values()}
    labels = [f"{v:.0f}" for v in views]
    rep.add_figure(heatmaps(figs / "matrix_CL.png", mats, xlabels=labels, ylabels=labels, xlabel="gallery view",
                            ylabel="probe view", vmax=100.0), "CL probes: probe view (rows) x gallery view (columns)")
    rep.add_section("Setup")
    rep.add_table([[k, str(v)] for k, v in summary["set"].items()], header=["set", "value"])
    rep.add_table([[k, str(v)] for k, v in summary["recipe"].items()], header=["recipe", "value"])
    if summary.get("flow_model"):
        rep.add_text(f"H-MoRe flow: {summary['flow_model']['name']} ({summary['flow_model']['weights']}, sha256 "
                     f"{summary['flow_model']['sha256'][:12]}).")
    return rep.save(out / "report.html")


def _pct(v: float | None) -> float | str:
    return "-" if v is None else round(float(v), 2)
