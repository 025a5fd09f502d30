"""``hmore bench lift``: 2D-to-3D lifters on Human3.6M with MotionBERT's protocol (``hmore.lift.h36m``), one table,
``results.json`` and ``report.html`` (per-action bars, predicted-vs-true skeletons), with published figures beside.

Each model is scored on each input source (SH detections, ground-truth 2D): Protocol 1 and 2 per action and averaged
over the actions; on the SH input also with a fraction of the joints missing (score 0, default 20%) next to the
complete input; and the steadiness of its bones (std / mean of each predicted bone's length over a sequence).

Held-out people (``data="bandai"`` / ``"generated"``, :mod:`hmore.lift.views`): mocap and bodies the lifters never
trained on, each motion seen whole by one fixed seeded virtual camera, COCO-derived noisy 2D as real detectors give;
the same table (P1 and P2 over all frames), per style (Bandai-Namco) or per action (generated), at 50 fps.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmore.errors import InputError, UsageError
from hmore.lift.views import GENERATED_IDENTITIES as GEN_IDENTITIES

log = logging.getLogger(__name__)

#: Default rows: the shipped lifters (Human3.6M-trained, generated-data-trained) and the two baselines trained on
#: Human3.6M here.
DEFAULT_MODELS = ("dstformer_cpu_h36m_pose", "dstformer_cpu_h36m", "dstformer_cpu", "lift_tcn_h36m", "lift_mlp_h36m")
SOURCE_LABELS = {"sh": "SH detections", "gt": "ground-truth 2D"}
DATA = ("h36m", "bandai", "generated")
#: Held-out sets of the held-out-people benchmarks: name -> (label, the examples' attribute grouped over).
VIEW_SETS = {"bandai": {"bandai": ("Bandai-Namco held-out takes, COCO-derived noisy 2D", "style")},
             "generated": {"gen_capsule": ("held-out generated people, capsule bodies, noisy 2D", "action"),
                           "gen_anny": ("held-out generated people, Anny bodies, noisy 2D", "action")}}
VIEW_FPS = 50.0  # Human3.6M's rate, the one the Human3.6M lifters and the generated-data arms train at
QUICK_NOTE = " (from a fixed pseudo-random offset in each sequence: hmore.lift.h36m.sample_offset)"

#: Published Human3.6M Protocol-1 figures (mm), for orientation only: other detectors, frames and training.
ANCHORS: tuple[dict[str, Any], ...] = (
    {"method": "Martinez et al. 2017 (MLP)", "input": "SH detections (these, not fine-tuned)", "p1": 67.5,
     "source": "ICCV 2017, Table 1"},
    {"method": "Martinez et al. 2017 (MLP)", "input": "SH fine-tuned on Human3.6M", "p1": 62.9,
     "source": "ICCV 2017, Table 1"},
    {"method": "Martinez et al. 2017 (MLP)", "input": "ground-truth 2D", "p1": 45.5, "source": "ICCV 2017, Table 1"},
    {"method": "VideoPose3D (TCN, 243 frames)", "input": "CPN detections (fine-tuned)", "p1": 46.8,
     "source": "CVPR 2019, Table 1"},
    {"method": "VideoPose3D (TCN, 243 frames)", "input": "ground-truth 2D", "p1": 37.2, "source": "CVPR 2019"},
    {"method": "MotionBERT (DSTformer, 243 frames)", "input": "its own SH detections, from scratch", "p1": 39.2,
     "source": "ICCV 2023"},
    {"method": "MotionBERT (DSTformer, 243 frames)", "input": "ground-truth 2D", "p1": 16.9, "source": "ICCV 2023"},
)


@dataclass(frozen=True)
class LiftModelSpec:
    """A model to score: its row name, the model (eval mode) and where its weights came from."""

    name: str
    model: torch.nn.Module
    origin: str


def load_models(specs: Sequence[str]) -> tuple[list[LiftModelSpec], dict[str, str]]:
    """Models from specs: a shipped weights name, or ``NAME=PATH`` (a run folder, checkpoint or exported
    ``.safetensors``). Returns the models found and, for the others, why they are missing."""
    from hmore.lift.pipeline import load_lifter
    from hmore.weights import list_weights

    found, missing = [], {}
    shipped = set(list_weights())
    for spec in specs:
        name, _, path = spec.partition("=")
        if path:
            try:
                model = load_lifter(checkpoint=path)
            except InputError as exc:
                missing[name] = str(exc)
                continue
            found.append(LiftModelSpec(name=name, model=model.float().eval(), origin=path))
        elif name in shipped:
            found.append(LiftModelSpec(name=name, model=load_lifter(weights=name).float().eval(),
                                       origin=f"shipped weights {name}"))
        else:
            missing[name] = f"no shipped weights named {name!r} (give NAME=RUN_OR_CHECKPOINT)"
    return found, missing


def run(*, models: Sequence[str] = DEFAULT_MODELS, data: str = "h36m", sources: Sequence[str] = ("sh", "gt"),
        every: int = 1, missing: float = 0.2, flip: bool = True, out_dir: str | Path, root: str | None = None,
        pictures: int = 4, command: str = "", progress: bool | None = None) -> dict[str, Any]:
    """Score ``models`` and write ``results.json`` and ``report.html`` into ``out_dir``; returns the summary."""
    import sys

    from hmore.data.h36m import TEST_SUBJECTS, load_h36m
    from hmore.lift.h36m import build_arrays

    if data not in DATA:
        raise UsageError(f"unknown lifting benchmark data {data!r}; known: {', '.join(DATA)}")
    if every < 1:
        raise UsageError(f"--quick must be >= 1, got {every}")
    if not 0 <= missing < 1:
        raise UsageError(f"--missing must lie in [0, 1), got {missing}")
    if data != "h36m":
        return run_views(models=models, data=data, every=every, missing=missing, flip=flip, out_dir=out_dir,
                         root=root, pictures=pictures, command=command, progress=progress)
    show = sys.stderr.isatty() if progress is None else progress
    specs, unavailable = load_models(models)
    if not specs:
        raise UsageError("no model to score: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()))
    h36m = load_h36m(root)
    examples = h36m.examples(TEST_SUBJECTS)
    arrays = build_arrays(h36m, examples, sources=sources, progress=show)
    summary: dict[str, Any] = {
        "benchmark": "Human3.6M 2D-to-3D lifting, MotionBERT's protocol",
        "protocol": {
            "test_subjects": list(TEST_SUBJECTS), "examples": len(examples), "frames_total": arrays.num_frames,
            "every_nth_window": every, "flip": flip, "missing_fraction": missing,
            "frames": "every (sequence, camera) of S9 and S11 with 3D and 2D: S9/Discussion 1 has no 3D in the data, "
                      "S11/Directions camera 54138969 no 2D; all their frames at 50 fps"
                      + ("" if every == 1 else f", every {every}-th window only{QUICK_NOTE}"),
            "sources": {s: SOURCE_LABELS[s] for s in sources},
        },
        "models": {},
        "unavailable": unavailable,
        "anchors": list(ANCHORS),
        "command": command,
    }
    preds: dict[tuple[str, str], Any] = {}
    for spec in specs:
        entry: dict[str, Any] = {"origin": spec.origin, "params": int(sum(p.numel() for p in spec.model.parameters()))}
        for src in sources:
            entry[src], preds[(spec.name, src)] = _score(spec, arrays, src, flip=flip, every=every,
                                                         missing=missing if src == "sh" else 0.0, show=show)
        summary["models"][spec.name] = entry
    write_outputs(out_dir, summary, arrays=arrays, preds=preds, pictures=pictures)
    return summary


def _score(spec: LiftModelSpec, arrays: Any, source: str, *, flip: bool, every: int, missing: float, show: bool,
           group_by: str = "action", over_frames: bool = False) -> tuple[dict[str, Any], Any]:
    """One model on one input: its ``results.json`` entry and the :class:`~hmore.lift.h36m.ProtocolResult`. P1 and
    P2 are the means over the groups (Human3.6M's actions), or with ``over_frames`` over all frames (the group means
    then go to ``p1_groups`` / ``p2_groups``)."""
    from hmore.lift.h36m import evaluate

    def means(r: Any) -> tuple[float, float]:
        return (r.p1_frames, r.p2_frames) if over_frames else (r.p1, r.p2)

    t0 = time.perf_counter()
    r = evaluate(spec.model, arrays, source=source, flip=flip, every=every, group_by=group_by, progress=show)
    p1, p2 = means(r)
    res = {"p1": p1, "p2": p2, "per_action": r.per_action, "frames": r.frames, "bone_cv": r.bone_cv,
           "seconds": time.perf_counter() - t0}
    if over_frames:
        res.update(p1_groups=r.p1, p2_groups=r.p2, group_by=group_by)
    if missing > 0:
        rm = evaluate(spec.model, arrays, source=source, flip=flip, every=every, missing=missing, group_by=group_by,
                      progress=show)
        m1, m2 = means(rm)
        res["missing"] = {"fraction": missing, "p1": m1, "p2": m2, "ratio": m1 / p1}
    log.info("%s on %s: P1 %.1f P2 %.1f mm", spec.name, source, p1, p2)
    return res, r


def _view_arrays(data: str, name: str, root: str | None, limit: int | None) -> Any:
    from hmore.lift.views import bandai_arrays, generated_arrays

    if data == "bandai":
        return bandai_arrays(fps=VIEW_FPS, root=root, limit=limit)
    return generated_arrays(body=name.removeprefix("gen_"), fps=VIEW_FPS,
                            identities=GEN_IDENTITIES[:limit] if limit else GEN_IDENTITIES)


def run_views(*, models: Sequence[str], data: str, every: int = 1, missing: float = 0.2, flip: bool = True,
              out_dir: str | Path, root: str | None = None, pictures: int = 4, command: str = "",
              progress: bool | None = None, limit: int | None = None) -> dict[str, Any]:
    """The held-out-people benchmark ``data`` (``"bandai"`` or ``"generated"``, see the module doc) of ``models``;
    ``limit``: the first n takes / identities only (tests). Writes and returns the summary as :func:`run` does."""
    import sys

    from hmore.lift.views import NOISE_EVERY, SOURCE

    show = sys.stderr.isatty() if progress is None else progress
    specs, unavailable = load_models(models)
    if not specs:
        raise UsageError("no model to score: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()))
    sets = {name: _view_arrays(data, name, root, limit) for name in VIEW_SETS[data]}
    summary: dict[str, Any] = {
        "benchmark": f"held-out people: 2D-to-3D lifting on {data} motions seen by fixed virtual cameras",
        "protocol": {
            "data": data, "fps": VIEW_FPS, "every_nth_window": every, "flip": flip, "missing_fraction": missing,
            "examples": sum(len(a.examples) for a in sets.values()),
            "frames_total": sum(a.num_frames for a in sets.values()),
            "frames": ("each motion seen whole by one fixed camera (seed [0, 31, motion index]), resampled to "
                       f"{VIEW_FPS:g} fps; 2D: the body's COCO-17 keypoints converted to H36M-17, MotionBERT's noise "
                       f"(a keyframe every {NOISE_EVERY} frames) on every motion; P1/P2 over all frames, per-group "
                       "means in per_action" + ("" if every == 1 else f"; every {every}-th window only{QUICK_NOTE}")),
            "sets": {k: a.num_frames for k, a in sets.items()},
            "sources": {k: VIEW_SETS[data][k][0] for k in sets},
        },
        "models": {},
        "unavailable": unavailable,
        "anchors": [],
        "command": command,
    }
    if data == "bandai":
        summary["protocol"]["takes"] = [e.sequence for e in sets["bandai"].examples]
    preds: dict[tuple[str, str], Any] = {}
    for spec in specs:
        entry: dict[str, Any] = {"origin": spec.origin, "params": int(sum(p.numel() for p in spec.model.parameters()))}
        for name, arrays in sets.items():
            entry[name], preds[(spec.name, name)] = _score(spec, arrays, SOURCE, flip=flip, every=every,
                                                           missing=missing, show=show,
                                                           group_by=VIEW_SETS[data][name][1], over_frames=True)
        summary["models"][spec.name] = entry
    write_outputs(out_dir, summary, arrays=sets, preds=preds, pictures=pictures)
    return summary


# ---- tables ---------------------------------------------------------------------------------------------------------
def table_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """One row per (model, source): P1, P2, P1 with joints missing and its ratio, bone std/mean, frames."""
    rows = []
    for name, e in summary["models"].items():
        for src in summary["protocol"]["sources"]:
            if src not in e:
                continue
            r = e[src]
            m = r.get("missing")
            rows.append([name, summary["protocol"]["sources"][src], round(r["p1"], 1), round(r["p2"], 1),
                         "-" if m is None else round(m["p1"], 1), "-" if m is None else round(m["ratio"], 3),
                         round(100 * r["bone_cv"], 2), r["frames"]])
    return rows


TABLE_HEADER = ["model", "input", "P1 (mm)", "P2 (mm)", "P1, joints missing", "ratio", "bone std/mean (%)", "frames"]


def format_table(summary: dict[str, Any]) -> str:
    """The markdown table of :func:`table_rows` and the published anchors."""
    miss = summary["protocol"]["missing_fraction"]
    header = [h if h != "P1, joints missing" else f"P1, {round(100 * miss)}% joints missing" for h in TABLE_HEADER]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in table_rows(summary)]
    if summary["anchors"]:
        lines += ["", "Published (Protocol 1, mm; other detectors, windows and training budgets):", "",
                  "| method | input | P1 (mm) |", "|---|---|---|"]
        lines += [f"| {a['method']} | {a['input']} | {a['p1']} |" for a in summary["anchors"]]
    else:
        for src in summary["protocol"]["sources"]:
            lines += ["", f"P1 (mm) per group, {summary['protocol']['sources'][src]}:", "",
                      format_per_action(summary, src)]
    return "\n".join(lines)


def _groups(summary: dict[str, Any], source: str) -> list[str]:
    """The groups of ``source``'s per-group scores (Human3.6M's actions in order; others as scored)."""
    from hmore.data.h36m import ACTIONS

    if source in SOURCE_LABELS:
        return list(ACTIONS)
    return list(dict.fromkeys(g for e in summary["models"].values() if source in e for g in e[source]["per_action"]))


def format_per_action(summary: dict[str, Any], source: str) -> str:
    """Per-action (per-group) P1 of every model on ``source``."""
    names = [n for n, e in summary["models"].items() if source in e]
    group = next((e[source].get("group_by", "action") for e in summary["models"].values() if source in e), "action")
    lines = [f"| {group} | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for a in _groups(summary, source):
        cells = [summary["models"][n][source]["per_action"].get(a, {}).get("p1") for n in names]
        lines.append(f"| {a} | " + " | ".join("-" if c is None else f"{c:.1f}" for c in cells) + " |")
    return "\n".join(lines)


# ---- report ---------------------------------------------------------------------------------------------------------
def _per_action_chart(path: Path, summary: dict[str, Any], source: str) -> Path:
    from hmore.report.charts import save_png

    names = [n for n, e in summary["models"].items() if source in e]
    groups = _groups(summary, source)
    where = ("Human3.6M S9/S11, " + SOURCE_LABELS[source] if source in SOURCE_LABELS
             else summary["protocol"]["sources"][source])

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        width = 0.8 / max(1, len(names))
        for j, n in enumerate(names):
            pa = summary["models"][n][source]["per_action"]
            vals = [pa.get(a, {}).get("p1", math.nan) for a in groups]
            ax.bar(np.arange(len(groups)) + (j - (len(names) - 1) / 2) * width, vals, width, color=f"C{j}",
                   label=f"{n} (mean {summary['models'][n][source]['p1']:.1f})")
        ax.set_xticks(range(len(groups)), groups, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel("P1 MPJPE (mm)")
        ax.set_title(f"{where}: P1 per group (lower is better)", fontsize=10)
        ax.legend(fontsize=8)

    return save_png(path, draw, figsize=(11, 4))


def _skeleton_views(pose: np.ndarray, *, size: int, extent: float) -> list[np.ndarray]:
    """Camera-frame root-relative pose (17, 3) as 2D pixel points in a front (x, y) and a side (z, y) view."""
    scale = 0.45 * size / extent
    front = np.stack([pose[:, 0], pose[:, 1]], axis=-1) * scale + size / 2
    side = np.stack([pose[:, 2], pose[:, 1]], axis=-1) * scale + size / 2
    return [front, side]


def skeleton_picture(pred: np.ndarray, true: np.ndarray, *, label: str, size: int = 220) -> np.ndarray:
    """Front and side views of a predicted (red) and true (grey) skeleton (17, 3), side by side, with a label."""
    from hmore.report.draw import draw_skeleton
    from hmore.report.draw import label as put_label
    from hmore.skeleton import H36M17

    p, t = pred - pred[:1], true - true[:1]
    extent = float(max(np.abs(p).max(), np.abs(t).max(), 0.5))
    panels = []
    for view_p, view_t, title in zip(_skeleton_views(p, size=size, extent=extent),
                                     _skeleton_views(t, size=size, extent=extent), ("front", "side")):
        img = np.full((size, size, 3), 255, np.uint8)
        ones = np.ones((17, 1))
        img = draw_skeleton(img, np.concatenate([view_t, ones], 1), layout=H36M17, colors=[(150, 150, 150)],
                            thickness=3)
        img = draw_skeleton(img, np.concatenate([view_p, ones], 1), layout=H36M17, colors=[(220, 40, 40)],
                            thickness=2)
        panels.append(put_label(img, title))
    return put_label(np.concatenate(panels, axis=1), label)


def _pick_frames(arrays: Any, count: int, covered: np.ndarray) -> list[int]:
    """``count`` scored frames from different actions, spread over the test set (fixed for a given ``covered``)."""
    from hmore.data.h36m import ACTIONS

    labels = list(dict.fromkeys(e.action for e in arrays.examples))
    present = [a for a in ACTIONS if a in labels] or labels
    picks = []
    for k, action in enumerate(present[:: max(1, len(present) // max(count, 1))][:count]):
        exs = [i for i, e in enumerate(arrays.examples) if e.action == action]
        if not exs:
            continue
        e = exs[k % len(exs)]
        a, b = arrays.offsets[e], arrays.offsets[e + 1]
        scored = np.flatnonzero(covered[a:b])
        if scored.size:
            picks.append(int(a + scored[np.argmin(np.abs(scored - (b - a) // 3))]))
    return picks


def write_outputs(out_dir: str | Path, summary: dict[str, Any], *, arrays: Any, preds: dict, pictures: int) -> Path:
    """``results.json``, charts, skeleton pictures and ``report.html``. ``arrays``: the Human3.6M arrays, or for the
    held-out-people benchmarks a dict set name -> arrays (each set its own pictures)."""
    import cv2

    from hmore.bench import json_clean
    from hmore.io.atomic import atomic_path, write_json_atomic
    from hmore.report.html import Report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", json_clean(summary))
    by_source = arrays if isinstance(arrays, dict) else {s: arrays for s in summary["protocol"]["sources"]}
    if isinstance(arrays, dict):
        rep = Report("hmore bench lift: held-out people", intro=(
            f"{summary['benchmark']}. Root-relative camera-frame 3D, 2D normalised by the image size, test-time flip. "
            "P1 = MPJPE after root alignment, P2 = P-MPJPE after a similarity Procrustes alignment per frame, both "
            f"over all frames.\n\nFrames: {summary['protocol']['frames']}."))
    else:
        rep = Report("hmore bench lift: Human3.6M", intro=(
            "2D-to-3D lifting on Human3.6M S9 and S11 with MotionBERT's protocol: root-relative camera-frame 3D, 2D "
            "normalised by the image size, test-time flip. P1 = MPJPE after root alignment, P2 = P-MPJPE after a "
            "similarity Procrustes alignment per frame; per-action means, then their mean over the 15 actions.\n\n"
            f"Frames: {summary['protocol']['frames']} ({sum(1 for _ in arrays.examples)} sequence x camera pairs)."))
    rep.add_section("Results")
    rep.add_table(table_rows(summary), header=TABLE_HEADER)
    if summary["anchors"]:
        rep.add_text("Published figures, for orientation (other detectors, windows and budgets):")
        rep.add_table([[a["method"], a["input"], a["p1"], a["source"]] for a in summary["anchors"]],
                      header=["method", "input", "P1 (mm)", "source"])
    for src, label in summary["protocol"]["sources"].items():
        chart = _per_action_chart(out / f"per_action_{src}.png", summary, src)
        rep.add_figure(chart, f"P1 per group, {label}")
    if pictures > 0 and preds:
        rep.add_section("Predicted (red) and true (grey) skeletons",
                        "Camera-frame 3D, root at the centre: front view (x right, y down) and side view (z right).")
        picks_of = {}
        for (name, src), r in preds.items():
            if src == "gt":
                continue
            arrays = by_source[src]
            if src not in picks_of:
                picks_of[src] = _pick_frames(arrays, pictures, r.covered)
            picks = picks_of[src]
            rows = []
            ex_of = arrays.example_of_frame()
            for f in picks:
                if not r.covered[f]:
                    continue
                k = int(ex_of[f])
                e = arrays.examples[k]
                rows.append(skeleton_picture(r.pred[f], arrays.y[f],
                                             label=f"{e.sequence} cam {e.camera} frame {f - arrays.offsets[k]}"))
            if not rows:
                continue
            img = np.concatenate(rows, axis=0)
            path = out / (f"skeletons_{name}.png" if src == "sh" else f"skeletons_{name}_{src}.png")
            with atomic_path(path, suffix=".png") as tmp:
                cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            rep.add_figure(path, f"{name}, {summary['protocol']['sources'][src]}")
    if summary.get("unavailable"):
        rep.add_section("Not scored", "\n\n".join(f"{k}: {v}" for k, v in summary["unavailable"].items()))
    if summary.get("command"):
        rep.add_section("Command")
        rep.add_code(summary["command"])
    return rep.save(out / "report.html")
