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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmore.bench.downstream import (
    BenchSpec,
    Recipe,
    heatmaps,
    input_panels,
    line_chart,
    markdown_table,
    mean_over_seeds,
    mean_std,
    pct,
    report_setup,
    run_bench,
    std_over_seeds,
    summary_head,
)
from hmore.errors import InputError
from hmore.gait.data import GaitSetConfig, gait_preset

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
class GaitRecipe(Recipe):
    """The gait rows' recipe (ours: AdamW through hmore's engine instead of GaitBase's SGD 0.1): the common fields
    of :class:`hmore.bench.downstream.Recipe`, plus ``seqs_per_id`` (K of the triplet sampler) and ``frames`` (per
    sequence in training), and the flow representation every flow row shares (exact rows included):
    ``flow_mask``, ``flow_smooth``, ``flow_dropout`` (:class:`hmore.gait.task.GaitDataConfig`) and
    ``flow_init`` (the model's ``extra_init_scale``). The defaults (flow masked to the silhouette, the stem's flow
    weights starting at zero) are what held on the validation identities of ``full46`` (README "Downstream")."""

    model: str = "gaitbase_cpu"
    seqs_per_id: int = 2
    frames: int = 8
    val_identities: int = 4
    eval_every: int = 250
    flow_mask: bool = True
    flow_smooth: int = 1
    flow_dropout: float = 0.0
    flow_init: float = 0.0


RECIPES = {
    "full": GaitRecipe(),
    "quick": GaitRecipe(steps=150, batch_size=8, frames=6, decay_every=100, warmup_steps=10, val_identities=0,
                        eval_every=0),
    "test": GaitRecipe(model="gaitbase_test", steps=2, batch_size=4, frames=2, warmup_steps=0, val_identities=0,
                       eval_every=0),
}


def row_config(row: str, *, set_root: Path, recipe: GaitRecipe, seed: int, flow_key: str | None,
               threads: int | None) -> Any:
    """The ``gait`` task's run config of a row."""
    from hmore.gait.task import GaitDataConfig, GaitModelConfig, GaitRunConfig

    kwargs: dict[str, Any] = {"parts": 4} if recipe.model == "gaitbase_test" else {}
    if recipe.flow_init != 1.0:
        kwargs["extra_init_scale"] = recipe.flow_init
    return GaitRunConfig(
        model=GaitModelConfig(name=recipe.model, kwargs=kwargs),
        data=GaitDataConfig(root=str(set_root), channels=row, flow_key=flow_key or "",
                            val_identities=recipe.val_identities, seqs_per_id=recipe.seqs_per_id,
                            frames=recipe.frames, flow_mask=recipe.flow_mask, flow_smooth=recipe.flow_smooth,
                            flow_dropout=recipe.flow_dropout, seed=seed),
        train=recipe.train_config(seed=seed, threads=threads))


def _task(row: str, seed: int, key: str | None, set_root: Path, recipe: GaitRecipe, threads: int | None
          ) -> tuple[Any, Any]:
    from hmore.gait.task import GaitTask

    cfg = row_config(row, set_root=set_root, recipe=recipe, seed=seed, flow_key=key, threads=threads)
    return GaitTask(config=cfg), cfg


def summarise(results: dict[str, dict[int, dict[str, Any]]], *, config: GaitSetConfig, recipe: GaitRecipe,
              preset: str, seeds: Sequence[int], fm: Any, timing: dict[str, Any], command: str) -> dict[str, Any]:
    """results.json: per row the mean and standard deviation over seeds of each condition's rank-1 (%) and of
    their mean, the per-view curves, the seeds' own values, and the paper pattern checks."""
    rows: dict[str, Any] = {}
    for row, per_seed in results.items():
        seed_r1 = {c: [100 * (r["rank1"]["mean"].get(c) or np.nan) for r in per_seed.values()] for c in CONDITIONS}
        means = {c: mean_over_seeds(v) for c, v in seed_r1.items()}
        seed_mean = [float(np.mean(v)) for v in zip(*seed_r1.values())]  # each seed's NM/BG/CL mean
        views = next(iter(per_seed.values()))["rank1"]["views"]
        per_view = {c: [mean_over_seeds([100 * (r["rank1"]["per_view"][c][i] or np.nan) for r in per_seed.values()])
                        for i in range(len(views))] for c in CONDITIONS}
        rows[row] = {"label": ROW_LABELS.get(row, row), "rank1": means,
                     "std": {c: std_over_seeds(v) for c, v in seed_r1.items()},
                     "mean": mean_over_seeds([means[c] for c in CONDITIONS]), "mean_std": std_over_seeds(seed_mean),
                     "views": views, "per_view": per_view,
                     "matrix": {s: r["rank1"]["matrix"] for s, r in per_seed.items()},
                     "seeds": {s: {c: r["rank1"]["mean"].get(c) for c in CONDITIONS} for s, r in per_seed.items()},
                     "runs": {s: r["run"] for s, r in per_seed.items()}, "flow_key": next(iter(per_seed.values()))
                     .get("flow_key"), "paper": PAPER.get(row)}
    head = summary_head("gait", preset=preset, config=config, recipe=recipe, seeds=seeds, fm=fm, timing=timing,
                        command=command)
    return {**head, "train_identities": len(config.train_subjects) - recipe.val_identities,
            "val_identities": recipe.val_identities, "test_identities": config.test_identities, "rows": rows,
            "checks": pattern_checks(rows)}


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
        # "raises": CL must gain at all, not merely lose least
        checks.append({"claim": f"{ROW_LABELS.get(row, row)}: adding flow raises CL the most",
                       "holds": gains["CL"] > 0 and gains["CL"] >= max(gains["NM"], gains["BG"]), "gains": gains})
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
            f"identical views, mean (± std) of seeds {summary['seeds']}")
    base_cl = rows.get("sil", {}).get("rank1", {}).get("CL")
    table = []
    for e in rows.values():
        paper = e.get("paper") or ("", (None, None, None))
        cl = e["rank1"]["CL"]
        gain = None if cl is None or base_cl is None else cl - base_cl
        std = e.get("std") or {}
        table.append([e["label"], *[mean_std(e["rank1"][c], std.get(c)) for c in CONDITIONS],
                      mean_std(e["mean"], e.get("mean_std")), gain, paper[0], *paper[1]])
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
        body.append([e["label"], *[pct(e["rank1"][c]) for c in CONDITIONS], pct(e["mean"]), paper[0],
                     *[pct(v) for v in paper[1]]])
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
    _example_inputs(rep, summary, figs)
    report_setup(rep, summary)
    return rep.save(out / "report.html")


def _example_inputs(rep: Any, summary: dict[str, Any], figs: Path) -> None:
    """Pictures of the inputs: one test subject's NM, BG and CL sequence (the view nearest 90), middle frame."""
    from hmore.flowfeed import dequantise_flow, load_clip_cache
    from hmore.gait.data import GaitSequence

    root = Path(summary.get("set_root", ""))
    if not (root / "set.json").is_file():
        return
    s = summary["set"]
    view = min(s["views"], key=lambda v: abs(v - 90.0))
    subject = s["identities"] - s["test_identities"] + 1
    keys = [GaitSequence(subject=subject, type=t, index=1, view=view).key for t in ("nm", "bg", "cl")]
    key = next((e.get("flow_key") for e in summary["rows"].values() if e.get("flow_key")), None)
    channels = ["dis", *(["world", "local"] if key else []), "exact_world", "exact_local"]
    try:
        got = load_clip_cache(root, keys, arrays=("sil",), channels=channels, flow_key=key)
    except InputError:
        return
    rep.add_section("Inputs", "One test subject at the view nearest 90 degrees, middle frame: silhouette and the "
                    "flow channels (one colour scale per row; white = still).")
    for i, k in enumerate(keys):
        t = len(got["sil"][i]) // 2 - 1
        flows = {c: dequantise_flow(got[c][i][t]) for c in channels}
        rep.add_figure(input_panels(figs / f"inputs_{k}.png", got["sil"][i][t], flows, label=k), k)


def run(out_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """The whole benchmark (:func:`hmore.bench.downstream.run_bench` with the gait spec; rows default
    :data:`ROWS`)."""
    from hmore.gait.data import build_gait_set

    spec = BenchSpec(name="gait", base_channel="sil", preset=gait_preset, recipes=RECIPES, build=build_gait_set,
                     make_task=_task, score=lambda task, model: {"rank1": task.test(model).as_dict()},
                     summarise=summarise, write_report=write_report)
    return run_bench(spec, out_dir, **{"rows": ROWS, **kwargs})
