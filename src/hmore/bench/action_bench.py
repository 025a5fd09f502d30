"""``hmore bench action --data nw_ucla``: skeleton action models on NW-UCLA's cross-view split (train views 1-2, test
view 3, 464 sequences): top-1 accuracy, per-class accuracy and confusion matrices, with the published anchor beside;
``results.json`` and ``report.html``.

The models' input is stated in their metadata (``hmore.train.tasks.action``): for the shipped NW-UCLA models, the
Kinect v1 joints mapped to H36M-17 (``hmore.data.nw_ucla.TO_H36M17``), in camera axes, root-relative per frame and
normalised as the model's metadata says (``normalize``: none, or ``view``: the body's own axes, unit torso), each
sequence resampled to the model's frame count.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hmore.errors import InputError, UsageError

DEFAULT_MODELS = ("action_ucla", "action_ucla_stgcn")
ANCHORS: tuple[dict[str, Any], ...] = (
    {"method": "CTR-GCN (4-stream ensemble, 3D joints)", "top1": 96.5, "source": "ICCV 2021"},
)


def _load(spec: str):
    from hmore.lift.classify import load_action_model
    from hmore.weights import list_weights

    name, _, path = spec.partition("=")
    if path:
        return name, load_action_model(checkpoint=path), path
    if name not in list_weights():
        raise InputError(f"no shipped weights named {name!r} (give NAME=RUN_OR_CHECKPOINT)")
    return name, load_action_model(weights=name), f"shipped weights {name}"


def run(*, models: Sequence[str] = DEFAULT_MODELS, data: str = "nw_ucla", out_dir: str | Path, root: str | None = None,
        command: str = "") -> dict[str, Any]:
    """Score ``models`` on NW-UCLA's test view and write ``results.json`` and ``report.html``; returns the summary."""
    from hmore.data.nw_ucla import ACTIONS
    from hmore.lift.classify import PreparedInputs, classify_inputs
    from hmore.train.tasks.action import nw_ucla_inputs

    if data != "nw_ucla":
        raise UsageError(f"unknown action benchmark data {data!r}; known: nw_ucla")
    test: dict[str, list] = {}  # normalisation -> inputs

    def prepared(normalize: str) -> PreparedInputs:
        if normalize not in test:
            test[normalize] = nw_ucla_inputs("test", root, normalize=normalize)
        t = test[normalize]
        return PreparedInputs(names=[i.name for i in t], labels=[i.label for i in t], xs=[i.x for i in t], notes=[])

    labels = np.array(prepared("none").labels)
    summary: dict[str, Any] = {
        "benchmark": "NW-UCLA cross-view: train views 1-2, test view 3",
        "test_sequences": len(labels), "classes": list(ACTIONS), "models": {}, "unavailable": {},
        "anchors": list(ANCHORS), "command": command,
    }
    for spec in models:
        try:
            name, am, origin = _load(spec)
        except InputError as exc:
            summary["unavailable"][spec.partition("=")[0]] = str(exc)
            continue
        if am.input != "3d" or am.classes != list(ACTIONS):
            summary["unavailable"][name] = "not an NW-UCLA model (3D input, its 10 classes)"
            continue
        pred = classify_inputs(am, prepared(am.normalize)).argmax(axis=1)
        conf = np.zeros((len(ACTIONS), len(ACTIONS)), np.int64)
        np.add.at(conf, (labels, pred), 1)
        per_class = {a: float(conf[i, i] / max(1, conf[i].sum())) for i, a in enumerate(ACTIONS)}
        summary["models"][name] = {"origin": origin, "top1": float((pred == labels).mean()), "per_class": per_class,
                                   "normalize": am.normalize,
                                   "confusion": conf.tolist(),
                                   "params": int(sum(p.numel() for p in am.model.parameters()))}
    if not summary["models"]:
        raise UsageError("no model to score: " + "; ".join(f"{k}: {v}" for k, v in summary["unavailable"].items()))
    write_outputs(out_dir, summary)
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """Top-1 of every model and the published anchor (markdown)."""
    lines = ["| model | top-1 (%) | parameters |", "|---|---|---|"]
    for name, e in summary["models"].items():
        lines.append(f"| {name} | {100 * e['top1']:.1f} | {e['params'] / 1e6:.2f} M |")
    for a in summary["anchors"]:
        lines.append(f"| {a['method']}, published | {a['top1']} | |")
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
    rows = [[n, round(100 * e["top1"], 1), e["params"]] for n, e in summary["models"].items()]
    rows += [[f"{a['method']} (published)", a["top1"], "-"] for a in summary["anchors"]]
    rep.add_table(rows, header=["model", "top-1 (%)", "parameters"])
    classes = summary["classes"]
    rep.add_table([[c] + [round(100 * e["per_class"][c], 1) for e in summary["models"].values()] for c in classes],
                  header=["class"] + list(summary["models"]))
    for name, e in summary["models"].items():
        png = _confusion_png(out / f"confusion_{name}.png", np.asarray(e["confusion"]), classes,
                             f"{name}: top-1 {100 * e['top1']:.1f}%")
        rep.add_figure(png, f"{name}: confusion matrix on view 3 (counts)")
    if summary["unavailable"]:
        rep.add_section("Not scored", "\n\n".join(f"{k}: {v}" for k, v in summary["unavailable"].items()))
    if summary["command"]:
        rep.add_section("Command")
        rep.add_code(summary["command"])
    return rep.save(out / "report.html")
