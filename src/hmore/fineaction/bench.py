"""``hmore bench action-flow``: a small (2+1)D CNN on RGB alone and with each kind of flow added, on the generated
fine-grained action set (:mod:`hmore.fineaction.data`), beside the paper's Diving48 figures.

Stages as ``hmore bench gait`` (resumable; ``--flow-weights`` re-runs only the H-MoRe rows): the set with its DIS,
exact and H-MoRe flows, one training run per row, test scores cached beside each run, then ``results.json``,
``report.html`` (accuracy table, confusion matrices) and the tables.

Rows of three kinds: early fusion (``rgb+dis``: flow channels widen the RGB network's input), a flow stream (``dis``,
``world+local``: a flow-only network, :data:`ActionRecipe.stream_model`, regularised harder) and two streams
(``rgb|dis``: the ``rgb`` row's and the ``dis`` row's runs of the same seed, trained apart, their class probabilities
averaged with the flow stream's weight chosen on the validation identities, :func:`hmore.models.fusion.
choose_fusion_weight`; nothing more is trained). ``split="val"`` scores and reports the validation identities only
(where recipes are chosen); the test split is scored once per final recipe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hmore.bench.downstream import (
    BenchSpec,
    Recipe,
    heatmaps,
    input_panels,
    markdown_table,
    mean_over_seeds,
    mean_std,
    pct,
    report_setup,
    run_bench,
    std_over_seeds,
    summary_head,
)
from hmore.fineaction.data import ActionSetConfig, action_preset
from hmore.fineaction.motions import CLASSES

log = logging.getLogger(__name__)

ROWS = ("rgb", "rgb+dis", "rgb+world", "rgb+local", "rgb+world+local", "rgb+exact_world+exact_local")
# the two-stream comparison: the flow streams alone, each fused with the RGB stream, and RGB alone
TWO_STREAM_ROWS = ("rgb", "dis", "world+local", "exact_world+exact_local", "rgb|dis", "rgb|world+local",
                   "rgb|exact_world+exact_local")
ROW_LABELS = {
    "rgb": "RGB",
    "dis": "DIS flow only (stream)",
    "world+local": "hmore world+local only (stream)",
    "world": "hmore world only (stream)",
    "local": "hmore local only (stream)",
    "exact_world+exact_local": "exact world+local only (stream)",
    "rgb|dis": "two streams: RGB & DIS flow",
    "rgb|world+local": "two streams: RGB & hmore world+local",
    "rgb|world": "two streams: RGB & hmore world",
    "rgb|local": "two streams: RGB & hmore local",
    "rgb|exact_world+exact_local": "two streams: RGB & exact world+local (ceiling)",
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
    "rgb|dis": ("+ VideoFlow flow", (71.45, 96.72)),
    "rgb|world+local": ("+ H-MoRe world+local", (72.99, 97.62)),
}


@dataclass(frozen=True)
class ActionRecipe(Recipe):
    """The action rows' recipe: the common fields of :class:`hmore.bench.downstream.Recipe`, plus the window
    (``frames`` taken every ``frame_step`` frames) and the flow representation every flow row shares (exact rows
    included), the gait recipe's: ``flow_mask`` (:class:`hmore.fineaction.task.ActionFlowDataConfig`: flow masked
    to the person) and ``flow_init`` (the model's ``extra_init_scale``: 0 starts the stem's flow weights at zero),
    and ``flow_scale`` (flow channels are divided by it, pixels of the crop: 0.5 brings the on-person flow, ~0.3-0.5
    px of a 64-pixel crop on average, to about the RGB's unit scale; the 4 it replaces left the flow ~1/10 of it and
    even the exact flow at chance, README "Downstream"). The README's ``mid`` table predates all three
    (``--recipe flow_mask=false --recipe flow_init=1 --recipe flow_scale=4`` reproduces it).

    Flow-stream rows (no ``rgb``) train ``stream_model`` with ``stream_weight_decay`` for ``stream_steps`` steps (0:
    ``steps``; the decay steps scaled alike) and, with ``stream_flip``, left-right mirroring (``data.flip``);
    ``flow_init`` does not apply to them."""

    model: str = "r2plus1d_cpu"
    steps: int = 1200
    lr: float = 2e-3
    weight_decay: float = 1e-3
    frames: int = 12
    frame_step: int = 2
    val_identities: int = 3
    eval_every: int = 400
    flow_mask: bool = True
    flow_init: float = 0.0
    flow_scale: float = 0.5
    stream_model: str = "r2plus1d_flow"
    stream_steps: int = 0
    stream_weight_decay: float = 0.05
    stream_flip: bool = False


RECIPES = {
    "full": ActionRecipe(),
    "quick": ActionRecipe(steps=200, batch_size=8, frames=8, decay_every=130, warmup_steps=10, val_identities=0,
                          eval_every=0),
    "mid": ActionRecipe(steps=600, batch_size=16, frames=8, decay_every=250, warmup_steps=20, val_identities=0,
                        eval_every=0),
    # full24 (the session-budget subset of full): 8 frames every 3rd cover 22 of the 24 frames (the order classes
    # need the whole clip) at 2/3 of the 12-frame window's cost; all training identities train unless
    # --recipe val_identities=N (the two-stream table: 4); flow streams 1500 steps and no flip (chosen on validation)
    "full24": ActionRecipe(steps=500, batch_size=16, frames=8, frame_step=3, decay_every=200, warmup_steps=20,
                           val_identities=0, eval_every=0, stream_steps=1500),
    "test": ActionRecipe(model="r2plus1d_test", steps=2, batch_size=2, frames=2, warmup_steps=0, val_identities=0,
                         eval_every=0, stream_model="r2plus1d_test"),
}


def row_config(row: str, *, set_root: Path, recipe: ActionRecipe, seed: int, flow_key: str | None,
               threads: int | None) -> Any:
    """The ``action_flow`` task's run config of a row (a flow stream's when ``row`` has no ``rgb``)."""
    from hmore.fineaction.task import ActionFlowDataConfig, ActionFlowModelConfig, ActionFlowRunConfig

    stream = "rgb" not in row.split("+")
    if stream:
        model = ActionFlowModelConfig(name=recipe.stream_model)
        steps = recipe.stream_steps or recipe.steps
        train = replace(recipe, weight_decay=recipe.stream_weight_decay, steps=steps,
                        decay_every=max(1, round(recipe.decay_every * steps / recipe.steps))
                        ).train_config(seed=seed, threads=threads)
    else:
        kwargs = {"extra_init_scale": recipe.flow_init} if recipe.flow_init != 1.0 else {}
        model = ActionFlowModelConfig(name=recipe.model, kwargs=kwargs)
        train = recipe.train_config(seed=seed, threads=threads)
    return ActionFlowRunConfig(
        model=model,
        data=ActionFlowDataConfig(root=str(set_root), channels=row, flow_key=flow_key or "", frames=recipe.frames,
                                  frame_step=recipe.frame_step, flow_scale=recipe.flow_scale,
                                  flow_mask=recipe.flow_mask, flip=stream and recipe.stream_flip,
                                  val_identities=recipe.val_identities, seed=seed),
        train=train)


def _task(row: str, seed: int, key: str | None, set_root: Path, recipe: ActionRecipe, threads: int | None
          ) -> tuple[Any, Any]:
    from hmore.fineaction.task import ActionFlowTask

    cfg = row_config(row, set_root=set_root, recipe=recipe, seed=seed, flow_key=key, threads=threads)
    return ActionFlowTask(config=cfg), cfg


def streams_of(row: str) -> tuple[str, ...]:
    """The rows a row is made of: ``("rgb", "dis")`` for the two-stream ``rgb|dis``, else the row itself.

    Raises:
        UsageError: a two-stream row that is not ``rgb|<flow channels>``.
    """
    from hmore.errors import UsageError
    from hmore.flowfeed import channels_of

    if "|" not in row:
        return (row,)
    parts = row.split("|")
    if len(parts) != 2 or parts[0] != "rgb" or "rgb" in parts[1].split("+") or not channels_of(parts[1]):
        raise UsageError(f"a two-stream row is rgb|<flow channels>, e.g. rgb|world+local, got {row!r}")
    return (parts[0], parts[1])


def two_stream(base: dict[str, Any], flow: dict[str, Any]) -> dict[str, Any]:
    """One seed's two-stream scores from its RGB and flow streams' scores (:meth:`ActionFlowTask.scores`, the same
    split): the flow's weight chosen on the validation probabilities, the fused probabilities scored (``pred``: the
    fused class of every clip).

    Raises:
        InputError: scores without probabilities (a run scored before they were stored: delete its test.json) or
            without a validation split (``--recipe val_identities=N``).
    """
    from hmore.errors import InputError
    from hmore.metrics.classification import confusion_matrix, topk_accuracy
    from hmore.models.fusion import choose_fusion_weight, late_fusion

    for r in (base, flow):
        if r.get("probs") is None or r.get("val_probs") is None:
            raise InputError(f"{r.get('run')}: no class probabilities of both splits to fuse (a validation split "
                             "needs --recipe val_identities=N; old scores: delete the run's test.json)")
    labels, val_labels = np.array(base["labels"]), np.array(base["val_labels"])
    if not (np.array_equal(labels, flow["labels"]) and np.array_equal(val_labels, flow["val_labels"])):
        raise InputError(f"{base.get('run')} and {flow.get('run')} scored different clips")
    weight, val_top1 = choose_fusion_weight(np.array(base["val_probs"]), np.array(flow["val_probs"]), val_labels)
    prob = late_fusion(np.array(base["probs"]), np.array(flow["probs"]), weight)
    return {"top1": topk_accuracy(prob, labels, 1), "top5": topk_accuracy(prob, labels, 5),
            "confusion": confusion_matrix(labels, prob.argmax(axis=1), len(CLASSES)).tolist(), "n": int(len(labels)),
            "val_top1": val_top1, "weight": weight, "train_top1": None, "pred": prob.argmax(axis=1).tolist(),
            "run": f"{base.get('run')} | {flow.get('run')}", "flow_key": flow.get("flow_key")}


def add_two_stream_rows(results: dict[str, dict[int, dict[str, Any]]], rows: Sequence[str]
                        ) -> dict[str, dict[int, dict[str, Any]]]:
    """``results`` of the trained rows, in the order of ``rows``, with each two-stream row's seeds fused from its
    streams' results (:func:`two_stream`; seeds both streams have)."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        streams = streams_of(row)
        if len(streams) == 1:
            if row in results:
                out[row] = results[row]
            continue
        base, flow = results.get(streams[0], {}), results.get(streams[1], {})
        fused = {seed: two_stream(base[seed], flow[seed]) for seed in base if seed in flow}
        if fused:
            out[row] = fused
    return out


def summarise(results: dict[str, dict[int, dict[str, Any]]], *, config: ActionSetConfig, recipe: ActionRecipe,
              preset: str, seeds: Sequence[int], fm: Any, timing: dict[str, Any], command: str,
              split: str = "test") -> dict[str, Any]:
    """results.json: per row the mean over seeds of top-1/top-5 (%) on ``split`` and of the validation top-1 (for
    two-stream rows: of the fused scores at the weight chosen on it, with the weights), the confusion matrix summed
    over seeds, the seeds' own values, and the paper pattern checks."""
    def mean(per_seed: dict[int, dict[str, Any]], key: str) -> float | None:
        return mean_over_seeds([100 * r[key] if r.get(key) is not None else None for r in per_seed.values()])

    rows: dict[str, Any] = {}
    for row, per_seed in results.items():
        conf = np.sum([np.array(r["confusion"]) for r in per_seed.values()], axis=0)
        top1 = [100 * r["top1"] for r in per_seed.values()]
        rows[row] = {"label": ROW_LABELS.get(row, row),
                     "top1": mean_over_seeds(top1), "top1_std": std_over_seeds(top1),
                     "top5": mean(per_seed, "top5"),
                     "n": next(iter(per_seed.values())).get("n"),
                     "train_top1": mean(per_seed, "train_top1"), "val_top1": mean(per_seed, "val_top1"),
                     "weights": {s: r["weight"] for s, r in per_seed.items() if "weight" in r} or None,
                     "per_class": (100 * np.diag(conf) / np.maximum(conf.sum(axis=1), 1)).tolist(),
                     "confusion": conf.tolist(), "seeds": {s: {"top1": r["top1"], "top5": r["top5"]}
                                                           for s, r in per_seed.items()},
                     "runs": {s: r["run"] for s, r in per_seed.items()},
                     "flow_key": next(iter(per_seed.values())).get("flow_key"), "paper": PAPER.get(row)}
    head = summary_head("action-flow", preset=preset, config=config, recipe=recipe, seeds=seeds, fm=fm,
                        timing=timing, command=command)
    return {**head, "split": split, "classes": list(CLASSES), "rows": rows, "checks": pattern_checks(rows)}


def difference_se(a: float, b: float, n: int) -> float:
    """The binomial standard error (points) of the difference of two top-1 accuracies ``a``, ``b`` (%) each measured
    on ``n`` test clips, taken as independent (the rows share their clips, so this over-states the noise a little)."""
    pa, pb = a / 100.0, b / 100.0
    return 100.0 * float(np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / max(n, 1)))


def pattern_checks(rows: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals: RGB + hmore flow above RGB alone and above RGB + DIS; world+local above either alone.

    Each check also says whether the difference is beyond noise: ``se`` is :func:`difference_se` on the test clips,
    ``beyond_noise`` that the difference exceeds twice it and, with several seeds, twice the larger seed standard
    deviation of the two rows."""
    def top1(row: str) -> float | None:
        return rows.get(row, {}).get("top1")

    checks = []
    for better, worse in (("rgb+world+local", "rgb"), ("rgb+world+local", "rgb+dis"), ("rgb+dis", "rgb"),
                          ("rgb+world+local", "rgb+world"), ("rgb+world+local", "rgb+local"),
                          ("rgb+exact_world+exact_local", "rgb+world+local"), ("rgb+exact_world+exact_local", "rgb"),
                          ("rgb|world+local", "rgb"), ("rgb|world+local", "rgb|dis"), ("rgb|dis", "rgb"),
                          ("world+local", "dis"), ("rgb|exact_world+exact_local", "rgb|world+local")):
        a, b = top1(better), top1(worse)
        if a is None or b is None:
            continue
        n = rows[better].get("n") or 0
        se = difference_se(a, b, n) if n else None
        stds = [v for v in (rows[better].get("top1_std"), rows[worse].get("top1_std")) if v is not None]
        beyond = se is not None and abs(a - b) > 2 * se and all(abs(a - b) > 2 * v for v in stds)
        checks.append({"claim": f"top-1: {ROW_LABELS.get(better, better)} > {ROW_LABELS.get(worse, worse)}",
                       "holds": a > b, "values": [a, b], "difference": a - b, "se": se, "seed_std": stds,
                       "beyond_noise": bool(beyond)})
    return checks


def _noise(c: dict[str, Any]) -> str:
    if c.get("se") is None:
        return ""
    seeds = f", seed std {'/'.join(f'{v:.2f}' for v in c['seed_std'])}" if c.get("seed_std") else ""
    verdict = "beyond noise" if c.get("beyond_noise") else "within noise"
    return f"; difference {c['difference']:+.2f}, binomial s.e. {c['se']:.2f}{seeds}: {verdict}"


def format_tables(summary: dict[str, Any]) -> str:
    """Our accuracy table beside the paper's Diving48 figures, then the pattern checks."""
    s = summary["set"]
    n_test = s["test_per_class"] * len(summary["classes"])
    split = summary.get("split", "test")
    what = (f"{n_test} test clips of {s['test_identities']} unseen identities" if split == "test" else
            f"VALIDATION split: {summary['recipe'].get('val_identities')} held-out training identities")
    head = (f"Fine-grained actions ({len(summary['classes'])} arm-gesture variants), generated set "
            f"'{summary['preset']}' ({what}), accuracy %, mean of seeds {summary['seeds']}")
    table = []
    for e in summary["rows"].values():
        paper = e.get("paper") or ("", (None, None))
        weights = "/".join(f"{w:.1f}" for w in e["weights"].values()) if e.get("weights") else None
        table.append([e["label"], mean_std(e["top1"], e.get("top1_std")), e["top5"], e.get("val_top1"), weights,
                      e.get("train_top1"), paper[0], *paper[1]])
    out = [head, "", markdown_table([f"input ({split}, n = {next(iter(summary['rows'].values()), {}).get('n')})",
                                     "top-1", "top-5", "val top-1", "flow weight", "train top-1",
                                     "paper row (Diving48)", "paper top-1", "paper top-5"], table)]
    if summary["checks"]:
        out += ["", "Pattern:"]
        out += [f"- {c['claim']}: {'holds' if c['holds'] else 'DOES NOT HOLD'} ({c['values'][0]:.2f} vs "
                f"{c['values'][1]:.2f}{_noise(c)})" for c in summary["checks"]]
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
    rep.add_section("Accuracy", f"Split scored: {summary.get('split', 'test')}; val top-1: the validation "
                    "identities (two-stream rows: at the flow weight chosen on them).")
    rep.add_table([[e["label"], pct(e["top1"]), pct(e["top5"]), pct(e.get("val_top1")),
                    (e.get("paper") or ("-",))[0], *[pct(v) for v in (e.get("paper") or ("", (None, None)))[1]]]
                   for e in rows.values()],
                  header=["input", "top-1", "top-5", "val top-1", "paper row", "paper top-1", "paper top-5"])
    for c in summary["checks"]:
        rep.add_text(f"{c['claim']}: {'holds' if c['holds'] else 'does NOT hold'} ({c['values'][0]:.2f} vs "
                     f"{c['values'][1]:.2f}{_noise(c)}).")
    rep.add_section("Per class", "Accuracy % per class (rows: input rows).")
    rep.add_table([[e["label"], *[round(v, 1) for v in e["per_class"]]] for e in rows.values()],
                  header=["input", *summary["classes"]])
    rep.add_section("Confusion matrices", "Rows: true class; columns: predicted class; counts over the seeds.")
    short = [c.replace("_then_", ">").replace("forward", "fwd") for c in summary["classes"]]
    rep.add_figure(heatmaps(figs / "confusion.png", {e["label"]: np.array(e["confusion"]) for e in rows.values()},
                            xlabels=short, ylabels=short, xlabel="predicted", ylabel="true"), "confusion matrices")
    _example_inputs(rep, summary, figs)
    report_setup(rep, summary)
    return rep.save(out / "report.html")


def _example_inputs(rep: Any, summary: dict[str, Any], figs: Path) -> None:
    """Pictures of the inputs: the first test clip of three classes, middle frame of its window."""
    from hmore.errors import InputError
    from hmore.fineaction.data import items, open_set
    from hmore.flowfeed import dequantise_flow, load_clip_cache

    root = Path(summary.get("set_root", ""))
    if not (root / "set.json").is_file():
        return
    config = open_set(root)
    picks = [it for it in items(config, "test")][:12:4]
    key = next((e.get("flow_key") for e in summary["rows"].values() if e.get("flow_key")), None)
    channels = ["dis", *(["world", "local"] if key else []), "exact_world", "exact_local"]
    try:
        got = load_clip_cache(root, [it.key for it in picks], arrays=("rgb",), channels=channels, flow_key=key)
    except InputError:
        return
    rep.add_section("Inputs", "Middle frame of three test clips: RGB and the flow channels (one colour scale per "
                    "row; white = still). DIS sees the camera's motion on the background; H-MoRe's world flow is "
                    "meant to be 0 there, its local flow removes the person's own translation.")
    for i, it in enumerate(picks):
        t = len(got["rgb"][i]) // 2
        flows = {c: dequantise_flow(got[c][i][t], config.flow_step) for c in channels}
        name = f"{it.key} ({CLASSES[it.label]})"
        rep.add_figure(input_panels(figs / f"inputs_{it.key}.png", got["rgb"][i][t], flows, label=it.key), name)


def run(out_dir: str | Path, *, rows: Sequence[str] = ROWS, split: str = "test", **kwargs: Any) -> dict[str, Any]:
    """The whole benchmark (:func:`hmore.bench.downstream.run_bench` with the action spec; rows default
    :data:`ROWS`; a two-stream row trains its two streams' rows and fuses them, :func:`add_two_stream_rows`)."""
    from hmore.fineaction.data import build_action_set

    trained = list(dict.fromkeys(s for r in rows for s in streams_of(r)))
    spec = BenchSpec(name="action-flow", base_channel="rgb", preset=action_preset, recipes=RECIPES,
                     build=build_action_set, make_task=_task, score=lambda task, model: task.scores(model, "test"),
                     score_val=lambda task, model: task.scores(model, "val"), flow_only_rows=True,
                     summarise=lambda results, **kw: summarise(add_two_stream_rows(results, rows), split=split, **kw),
                     write_report=write_report)
    return run_bench(spec, out_dir, rows=trained, split=split, **kwargs)
