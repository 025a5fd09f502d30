"""``hmore bench action --data nw_ucla``: skeleton action models on NW-UCLA's cross-view split (train views 1-2, test
view 3, 464 sequences): top-1 accuracy, per-class accuracy and confusion matrices, with the published anchor beside;
``results.json`` and ``report.html``. ``on="view2"`` scores view 2 instead: the validation proxy of models trained on
view 1 alone (``data.validate_on: view2``), for choosing recipes and ensemble weights without reading view 3.
Models are shipped weights, run folders / checkpoints, or score ensembles of them
(:func:`hmore.lift.classify.load_ensemble`: a shipped ``<name>.ensemble.json`` or ``NAME=A*W+B*W``).

The models' input is stated in their metadata (``hmore.train.tasks.action``): for the shipped NW-UCLA models, the
Kinect v1 joints mapped to H36M-17 (``hmore.data.nw_ucla.TO_H36M17``), in camera axes, root-relative per frame and
normalised as the model's metadata says (``normalize``: none, or ``view``: the body's own axes, unit torso), each
sequence resampled to the model's frame count.

Top-1 is also given without the evaluated sequences that are byte-identical copies of a training sequence
(:meth:`hmore.data.nw_ucla.NWUCLA.copies`: 95 of view 3's 464 in the shared release, all "pick up with two hands" and
"drop trash"), which every model trained on views 1-2 has seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hmore.errors import InputError, UsageError

DEFAULT_MODELS = ("action_ucla_stgcn_k20", "action_ucla_ens", "action_ucla_stgcn", "action_ucla")
ANCHORS: tuple[dict[str, Any], ...] = (
    {"method": "CTR-GCN (4-stream ensemble, 3D joints)", "top1": 96.5, "source": "ICCV 2021"},
)


def _load(spec: str):
    """``NAME`` (shipped weights or ensemble), ``NAME=RUN_OR_CHECKPOINT`` or ``NAME=A*W+B*W`` (an ensemble)."""
    from hmore.lift.classify import load_action_model
    from hmore.weights import list_ensembles, list_weights

    name, _, path = spec.partition("=")
    if "+" in path:
        am = load_action_model(ensemble=path)
        return name, am, f"ensemble {' + '.join(am.members)}"
    if path:
        return name, load_action_model(checkpoint=path), path
    if name in list_ensembles():
        am = load_action_model(ensemble=name)
        return name, am, f"shipped ensemble {name}: {' + '.join(am.members)}"
    if name not in list_weights():
        raise InputError(f"no shipped weights named {name!r} (give NAME=RUN_OR_CHECKPOINT or NAME=A+B)")
    return name, load_action_model(weights=name), f"shipped weights {name}"


def run(*, models: Sequence[str] = DEFAULT_MODELS, data: str = "nw_ucla", out_dir: str | Path, root: str | None = None,
        command: str = "", on: str = "test") -> dict[str, Any]:
    """Score ``models`` on NW-UCLA's test view (``on="view2"``: on view 2, the validation proxy of models trained on
    view 1 alone) and write ``results.json`` and ``report.html``; returns the summary."""
    from hmore.data.nw_ucla import ACTIONS, load_nw_ucla
    from hmore.lift.classify import PreparedInputs, classify_inputs
    from hmore.train.tasks.action import nw_ucla_inputs

    if data != "nw_ucla":
        raise UsageError(f"unknown action benchmark data {data!r}; known: nw_ucla")
    if on not in ("test", "view2"):
        raise UsageError(f"on must be 'test' or 'view2', got {on!r}")
    split, views = ("test", None) if on == "test" else ("train", (2,))
    test: dict[tuple[str, str], list] = {}  # (joints, normalisation) -> inputs

    def prepared(normalize: str, layout: str = "nw_ucla_h36m17") -> PreparedInputs:
        key = ("kinect20" if layout == "nw_ucla_kinect20" else "h36m17", normalize)
        if key not in test:
            test[key] = nw_ucla_inputs(split, root, normalize=normalize, layout=key[0], views=views)
        t = test[key]
        return PreparedInputs(names=[i.name for i in t], labels=[i.label for i in t], xs=[i.x for i in t], notes=[])

    first = prepared("none")
    labels = np.array(first.labels)
    copies = load_nw_ucla(root or None).copies((3,) if on == "test" else (2,), (1, 2) if on == "test" else (1,))
    unseen = np.array([n not in copies for n in first.names])  # evaluated sequences that are not training copies
    summary: dict[str, Any] = {
        "benchmark": ("NW-UCLA cross-view: train views 1-2, test view 3" if on == "test" else
                      "NW-UCLA validation proxy: train view 1, evaluate view 2 (not the benchmark)"),
        "test_sequences": len(labels), "classes": list(ACTIONS), "models": {}, "unavailable": {},
        "anchors": list(ANCHORS) if on == "test" else [], "command": command, "on": on,
        "copies_of_training": sorted(copies),
    }
    for spec in models:
        try:
            name, am, origin = _load(spec)
        except InputError as exc:
            summary["unavailable"][spec.partition("=")[0]] = str(exc)
            continue
        if am.input != "3d" or am.classes != list(ACTIONS) or not am.layout.startswith("nw_ucla_"):
            summary["unavailable"][name] = "not an NW-UCLA model (3D input of NW-UCLA's layouts, its 10 classes)"
            continue
        pred = classify_inputs(am, prepared(am.normalize, am.layout)).argmax(axis=1)
        conf = np.zeros((len(ACTIONS), len(ACTIONS)), np.int64)
        np.add.at(conf, (labels, pred), 1)
        per_class = {a: float(conf[i, i] / max(1, conf[i].sum())) for i, a in enumerate(ACTIONS)}
        summary["models"][name] = {"origin": origin, "top1": float((pred == labels).mean()), "per_class": per_class,
                                   "top1_without_copies": float((pred == labels)[unseen].mean()) if unseen.any()
                                   else None,
                                   "normalize": am.normalize, "layout": am.layout,
                                   "confusion": conf.tolist(),
                                   "params": int(sum(p.numel() for p in am.model.parameters()))}
    if not summary["models"]:
        raise UsageError("no model to score: " + "; ".join(f"{k}: {v}" for k, v in summary["unavailable"].items()))
    write_outputs(out_dir, summary)
    return summary


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def format_table(summary: dict[str, Any]) -> str:
    """Top-1 of every model (and without the evaluated sequences that copy training ones, when there are any) and
    the published anchor (markdown)."""
    n = len(summary.get("copies_of_training", ()))
    extra = [f"top-1 without the {n} copies of training sequences (%)"] if n else []
    lines = ["| " + " | ".join(["model", "top-1 (%)", *extra, "parameters"]) + " |", "|---" * (3 + len(extra)) + "|"]
    for name, e in summary["models"].items():
        cut = [_pct(e["top1_without_copies"])] if n else []
        lines.append("| " + " | ".join([name, f"{100 * e['top1']:.1f}", *cut, f"{e['params'] / 1e6:.2f} M"]) + " |")
    for a in summary["anchors"]:
        lines.append("| " + " | ".join([f"{a['method']}, published", str(a["top1"]), *[""] * len(extra), ""]) + " |")
    return "\n".join(lines)


def _confusion_png(path: Path, conf: np.ndarray, classes: Sequence[str], title: str) -> Path:
    from hmore.report.charts import save_png

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        rate = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
        ax.imshow(rate, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(classes)):
            for j in range(len(classes)):
                if conf[i, j]:
                    ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rate[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)

    return save_png(path, draw, figsize=(6, 5.2))


def write_outputs(out_dir: str | Path, summary: dict[str, Any]) -> Path:
    """``results.json``, confusion matrices and ``report.html``."""
    from hmore.bench import json_clean
    from hmore.io.atomic import write_json_atomic
    from hmore.report.html import Report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", json_clean(summary))
    rep = Report("hmore bench action: NW-UCLA", intro=(
        f"{summary['benchmark']}; {summary['test_sequences']} test sequences, top-1 accuracy. Input: the models' "
        "own (see each model's metadata); the NW-UCLA models take the Kinect joints mapped to H36M-17, in camera axes, "
        "root-relative per frame, normalised as each model's metadata says (normalize: none or view)."))
    n = len(summary.get("copies_of_training", ()))
    rows = [[name, round(100 * e["top1"], 1)] + ([_pct(e["top1_without_copies"])] if n else [])
            + [e["params"]] for name, e in summary["models"].items()]
    rows += [[f"{a['method']} (published)", a["top1"]] + (["-"] if n else []) + ["-"] for a in summary["anchors"]]
    rep.add_table(rows, header=["model", "top-1 (%)"] + ([f"top-1 without the {n} evaluated sequences that are "
                                                           "byte-identical copies of training ones (%)"] if n else [])
                  + ["parameters"])
    classes = summary["classes"]
    rep.add_table([[c] + [round(100 * e["per_class"][c], 1) for e in summary["models"].values()] for c in classes],
                  header=["class"] + list(summary["models"]))
    for name, e in summary["models"].items():
        png = _confusion_png(out / f"confusion_{name}.png", np.asarray(e["confusion"]), classes,
                             f"{name}: top-1 {100 * e['top1']:.1f}%")
        rep.add_figure(png, f"{name}: confusion matrix on view {3 if summary.get('on', 'test') == 'test' else 2} "
                            "(counts)")
    if summary["unavailable"]:
        rep.add_section("Not scored", "\n\n".join(f"{k}: {v}" for k, v in summary["unavailable"].items()))
    if summary["command"]:
        rep.add_section("Command")
        rep.add_code(summary["command"])
    return rep.save(out / "report.html")
