"""``hmore bench concepts``: do the motion concepts mean something, are video and motion aligned, can questions be
answered from them, and how fast is encoding.

* **Clustering** (held-out Bandai-Namco takes, NW-UCLA view 3): NMI and purity of every frame's concept id against
  the action label, for each concept model given and for k-means with the same number of clusters on the raw
  per-frame pose features (and on pose + velocity), fitted on training frames; when the first model uses fewer
  concepts than its codebook holds, k-means with that smaller K too (NMI favours fewer clusters, purity more).
  The Bandai rows also give the NMI against the style label, and the report lists which of the main model's
  concepts follow the action and which the style.
* **Retrieval**: video -> motion R@1 and R@5 on held-out paired windows (generated renders of held-out Bandai takes
  and procedural identities, hmore's flow), against chance 1/N.
* **QA**: accuracy per query type of the answerer and of the question-only baseline on questions generated from
  held-out sequences.
* **Speed**: skeleton encoding frames/s (warm, the threads used and the load average stated).

Data: a concepts data folder (``--data``, what ``hmore concepts data`` wrote) or, without one, read from the shared
data folder (``--quick`` limits every set so the run takes a few minutes). Writes ``results.json`` (no NaN: missing
values are ``null``) and ``report.html``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmore.bench import json_clean
from hmore.bench.flow_bench import set_threads
from hmore.concepts.motion import SkeletonSequence, load_sequences, procedural_sequences
from hmore.concepts.pairs import PairedClip
from hmore.errors import InputError, UsageError
from hmore.io.atomic import write_json_atomic
from hmore.report.charts import save_png

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("concepts_cpu", "concepts_cpu_vqvae")
DEFAULT_QA = ("concept_qa_cpu", "concept_qa_cpu_qonly")
EVAL_SETS = ("bandai", "nw_ucla")


@dataclass(frozen=True)
class BenchData:
    """Held-out sequences per set, training sequences for k-means, held-out pairs, and where they came from."""

    test: dict[str, list[SkeletonSequence]]
    train: dict[str, list[SkeletonSequence]]
    pairs: list[PairedClip]
    qa_sequences: list[SkeletonSequence]
    source: str


def _spread(items: list, n: int | None) -> list:
    if n is None or len(items) <= n:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def load_bench_data(cache: str | Path | None, *, quick: bool, pairs: int | None = None,
                    progress: bool = False) -> BenchData:
    """The benchmark's data from a concepts data folder, or (``cache`` None) from the shared data folder."""
    from hmore.concepts.motion import PROCEDURAL_TEST_IDS, bandai_sequences, nw_ucla_sequences
    from hmore.concepts.pairs import build_pair_cache, list_pairs, load_pair, pair_specs

    n_test = 60 if quick else None
    n_train = 150 if quick else 400
    n_pairs = pairs if pairs is not None else (24 if quick else 100)
    test: dict[str, list[SkeletonSequence]] = {}
    train: dict[str, list[SkeletonSequence]] = {}
    if cache is not None:
        cache = Path(cache)
        for src in EVAL_SETS:
            path = cache / f"skeleton_{src}.npz"
            if not path.is_file():
                raise InputError(f"{path} not found: run hmore concepts data --out {cache} first")
            seqs = load_sequences(path)
            test[src] = _spread([s for s in seqs if s.split == "test" and s.action], n_test)
            train[src] = _spread([s for s in seqs if s.split == "train"], n_train)
        loaded = [load_pair(p) for p in list_pairs(cache)]
        bench_pairs = _spread([p for p in loaded if p.meta.get("split") == "test" and p.meta.get("kind") != "real"],
                              n_pairs)
        source = f"concepts data folder {cache}"
    else:
        from hmore.data import bandai

        try:
            index = bandai.load_index()
        except InputError as exc:
            raise InputError(f"no --data folder and no shared data: {exc}") from None
        held = _spread([t for t in index if bandai.is_held_out(t)], n_test)
        rest = _spread([t for t in index if not bandai.is_held_out(t)], n_train)
        test["bandai"] = bandai_sequences(takes=held, progress=progress)
        train["bandai"] = bandai_sequences(takes=rest, progress=progress)
        ucla = nw_ucla_sequences()
        test["nw_ucla"] = _spread([s for s in ucla if s.split == "test"], None if not quick else 200)
        train["nw_ucla"] = _spread([s for s in ucla if s.split == "train"], n_train)
        specs = [s for s in pair_specs(bandai_train=0) if s.split == "test"]
        specs = _spread(sorted(specs, key=lambda s: s.name), n_pairs)
        out = Path(os.environ.get("HMORE_CACHE", Path.home() / ".cache" / "hmore")) / "bench_concepts"
        files = build_pair_cache(out, specs, flow="hmore", progress=progress)
        bench_pairs = [load_pair(f) for f in files]
        source = f"shared data folder (Bandai held-out takes, NW-UCLA view 3); pairs rendered into {out}"
    qa_seqs = test["bandai"] + test["nw_ucla"] + procedural_sequences(identities=PROCEDURAL_TEST_IDS, split="test",
                                                                      num_frames=64)
    return BenchData(test=test, train=train, pairs=bench_pairs, qa_sequences=qa_seqs, source=source)


def _load(spec: str):
    """A model from ``NAME=SOURCE`` or ``SOURCE`` (shipped weights name, run folder or checkpoint)."""
    from hmore.concepts.encode import load_concept_model

    name, _, source = spec.partition("=")
    source = source or name
    path = Path(source)
    model = (load_concept_model(checkpoint=path, answerer=True) if path.exists()
             else load_concept_model(weights=source, answerer=True))
    return name, source, model


def _concept_source(source: str) -> str | None:
    """The concept weights an answerer was trained with (from its metadata), if recorded."""
    from hmore.train.checkpoint import read_metadata, resolve_checkpoint
    from hmore.weights import read_weights_metadata

    path = Path(source)
    try:
        cfg = (read_metadata(resolve_checkpoint(path)).get("model_config") if path.exists()
               else read_weights_metadata(source)["model"])
    except InputError:
        return None
    return ((cfg or {}).get("concept_model") or {}).get("source")


def encode_speed(model: Any, seqs: Sequence[SkeletonSequence], *, repeats: int = 3) -> dict[str, float]:
    """Warm skeleton encoding speed: model-rate frames/s (best of ``repeats``), and at the 30 fps of the inputs."""
    from hmore.concepts.encode import encode_sequences

    joints = [s.joints for s in seqs]
    frames = sum(len(j) for j in joints)
    encode_sequences(model, joints[:1])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        encode_sequences(model, joints)
        best = min(best, time.perf_counter() - t0)
    return {"frames": float(frames), "seconds": best, "model_fps": frames / best, "source_fps_30": 2 * frames / best}


def run(*, out_dir: str | Path, models: Sequence[str] = DEFAULT_MODELS, qa_models: Sequence[str] = DEFAULT_QA,
        data: str | Path | None = None, quick: bool = False, pairs: int | None = None, threads: int | None = 1,
        seed: int = 0, command: str = "", progress: bool = False) -> dict[str, Any]:
    """Run the benchmark and write ``results.json`` and ``report.html`` into ``out_dir``; returns the summary."""
    from hmore.concepts.evaluate import (
        cluster_scores,
        concept_kinds,
        encode_labelled,
        kmeans_scores,
        retrieval_scores,
    )

    if not models:
        raise UsageError("give at least one concept model")
    used_threads = set_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    bd = load_bench_data(data, quick=quick, pairs=pairs, progress=progress)
    loaded = [_load(s) for s in models]
    k = int(loaded[0][2].config.codebook_size)
    clustering: dict[str, dict[str, dict[str, float]]] = {}
    kinds: list[dict[str, Any]] = []
    for src, seqs in bd.test.items():
        rows: dict[str, dict[str, float]] = {}
        labels = np.concatenate([[s.action] * s.num_frames for s in seqs])
        styles = np.concatenate([[s.style] * s.num_frames for s in seqs])
        for i, (name, _, model) in enumerate(loaded):
            fl = encode_labelled(model, seqs)
            rows[name] = cluster_scores(fl.ids, labels)
            if src == "bandai":
                rows[name]["nmi_style"] = cluster_scores(fl.ids, styles)["nmi"]
                if i == 0:
                    kinds = concept_kinds(fl.ids, fl.action, fl.style)
        used = int(rows[loaded[0][0]]["clusters"])
        baselines = [("k-means (pose)", k, False), ("k-means (pose + velocity)", k, True)]
        if used < k:  # fewer clusters raise NMI and lower purity: also compare at the main model's count
            baselines.append((f"k-means (pose), K = {used}", used, False))
        for name, kk, velocity in baselines:
            scores, ids = kmeans_scores(bd.train[src], seqs, k=kk, velocity=velocity, seed=seed)
            if src == "bandai":
                scores["nmi_style"] = cluster_scores(ids, styles)["nmi"]
            rows[name] = scores
        clustering[src] = rows
    retrieval = {name: retrieval_scores(model, bd.pairs) for name, _, model in loaded}
    qa: dict[str, dict[str, float]] = {}
    qa_counts: dict[str, int] = {}
    for spec in qa_models:
        try:
            name, source, answerer = _load(spec)
        except InputError as exc:
            log.warning("QA model %s unavailable: %s", spec, exc)
            continue
        qa[name] = qa_accuracy(answerer, _concept_source(source) or models[0], bd.qa_sequences, seed=seed,
                               counts=qa_counts)
    speed = encode_speed(loaded[0][2], bd.test["bandai"][:40])
    summary = {
        "command": command, "quick": quick, "data": bd.source, "threads": used_threads,
        "load_average": list(os.getloadavg()), "codebook_size": k,
        "sets": {src: {"sequences": len(s), "frames": int(sum(x.num_frames for x in s))} for src, s in bd.test.items()},
        "models": {name: source for name, source, _ in loaded},
        "clustering": clustering, "retrieval": retrieval, "qa": qa, "qa_questions": qa_counts,
        "concept_kinds": kinds, "speed": speed, "seconds": time.perf_counter() - t_start,
    }
    summary = json_clean(summary)
    write_json_atomic(out / "results.json", summary)
    write_report(out, summary)
    return summary


def qa_accuracy(answerer: Any, concept_source: str, seqs: Sequence[SkeletonSequence], *, seed: int = 0,
                counts: dict[str, int] | None = None) -> dict[str, float]:
    """Accuracy per query type (and ``all``) of an answerer on questions generated from held-out ``seqs``."""
    import torch

    from hmore.concepts.qa import encode_question, generate_qa
    from hmore.train.tasks.concepts import concept_tokens

    _, _, concept_model = _load(concept_source)
    c = answerer.config
    items = [it for it in generate_qa(seqs, seed=seed + 1) if it.answer in set(c.answers)]
    if not items:
        return {}
    tokens = concept_tokens(concept_model, items, max_tokens=c.max_concepts)
    words = np.stack([encode_question(it.question, c.vocab, max_words=c.max_words) for it in items])
    index = {a: i for i, a in enumerate(c.answers)}
    answer = np.array([index[it.answer] for it in items])
    with torch.no_grad():
        pred = np.concatenate([answerer(torch.from_numpy(tokens[b : b + 256]), torch.from_numpy(words[b : b + 256]))
                               .argmax(dim=-1).numpy() for b in range(0, len(items), 256)])
    types = np.array([it.query_type for it in items])
    ok = pred == answer
    out = {"all": float(ok.mean())}
    for t in sorted(set(types)):
        out[t] = float(ok[types == t].mean())
        if counts is not None:
            counts[t] = int((types == t).sum())
    return out


# ---- output ------------------------------------------------------------------------------------------------------
def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def format_tables(summary: dict[str, Any]) -> str:
    """The printed tables (clustering per set, retrieval, QA, speed)."""
    lines = []
    for src, rows in summary["clustering"].items():
        info = summary["sets"][src]
        lines.append(f"{src} held-out ({info['sequences']} sequences, {info['frames']} frames at 15 fps), "
                     f"K = {summary['codebook_size']}:")
        style = src == "bandai"
        lines.append(f"  {'method':32s} {'NMI':>7s} {'purity':>7s} {'used':>5s}" + ("  NMI(style)" if style else ""))
        for name, r in rows.items():
            lines.append(f"  {name:32s} {_fmt(r.get('nmi')):>7s} {_fmt(r.get('purity')):>7s} "
                         f"{_fmt(r.get('clusters'), 0):>5s}" + (f"  {_fmt(r.get('nmi_style')):>10s}" if style else ""))
    lines.append("video -> motion retrieval (held-out pairs):")
    for name, r in summary["retrieval"].items():
        lines.append(f"  {name:32s} R@1 {_fmt(r.get('r1'))}  R@5 {_fmt(r.get('r5'))}  N {_fmt(r.get('n'), 0)}  "
                     f"chance {_fmt(r.get('chance'))}")
    if summary["qa"]:
        types = sorted({t for r in summary["qa"].values() for t in r})
        lines.append("QA accuracy (questions generated from held-out sequences):")
        lines.append("  " + f"{'answerer':24s}" + "".join(f"{t:>14s}" for t in types))
        for name, r in summary["qa"].items():
            lines.append("  " + f"{name:24s}" + "".join(f"{_fmt(r.get(t)):>14s}" for t in types))
    s = summary["speed"]
    lines.append(f"encode speed: {s['model_fps']:.0f} frames/s at 15 fps = {s['source_fps_30']:.0f} frames/s of 30 fps "
                 f"input ({summary['threads']['torch']} torch thread(s), load average "
                 f"{summary['load_average'][0]:.1f})")
    return "\n".join(lines)


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """``report.html``: the tables, an NMI chart, the concept kinds."""
    from hmore.report.html import Report

    rep = Report("hmore bench concepts", intro=f"Data: {summary['data']}. Quick: {summary['quick']}. "
                                               f"{summary['seconds']:.0f} s.")
    if summary["command"]:
        rep.add_code(summary["command"])
    sets = list(summary["clustering"])

    def draw(fig: Any) -> None:
        for i, src in enumerate(sets):
            ax = fig.add_subplot(1, len(sets), i + 1)
            names = list(summary["clustering"][src])
            vals = [summary["clustering"][src][n]["nmi"] or 0.0 for n in names]
            ax.bar(range(len(names)), vals, color=[f"C{j}" for j in range(len(names))])
            ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=7)
            ax.set_title(f"NMI vs action, {src} held-out", fontsize=8)

    chart = save_png(out / "nmi.png", draw, figsize=(4.0 * len(sets), 3.2))
    rep.add_section("Concepts against action labels",
                    f"NMI and purity of per-frame concept ids against the action, K = {summary['codebook_size']} "
                    "for every method (k-means fitted on training frames).")
    rep.add_figure(chart, "NMI per method and set")
    for src in sets:
        rows = [[n, r.get("nmi"), r.get("purity"), r.get("clusters"), r.get("nmi_style", "")]
                for n, r in summary["clustering"][src].items()]
        rep.add_text(f"{src}: {summary['sets'][src]['sequences']} held-out sequences, {summary['sets'][src]['frames']} "
                     "frames")
        rep.add_table(rows, header=["method", "NMI", "purity", "clusters used", "NMI vs style"])
    if summary["concept_kinds"]:
        kinds = summary["concept_kinds"]
        n_action = sum(1 for d in kinds if d["kind"] == "action")
        rep.add_section("Which concepts are action and which are style",
                        f"The first model's concepts on Bandai-Namco's held-out takes (actions crossed with styles): "
                        f"{n_action} follow the action, {len(kinds) - n_action} the style (a concept is 'action' when "
                        "its top action's share over chance beats its top style's).")
        rep.add_table([[d["concept"], d["kind"], d["frames"], d["action"], d["action_share"], d["style"],
                        d["style_share"]] for d in kinds],
                      header=["concept", "kind", "frames", "top action", "share", "top style", "share"])
    rep.add_section("Video -> motion retrieval", "Held-out paired windows (generated renders of held-out takes and "
                                                 "identities, hmore's flow); chance = 1/N.")
    rep.add_table([[n, r.get("r1"), r.get("r5"), r.get("n"), r.get("chance")] for n, r in summary["retrieval"].items()],
                  header=["model", "R@1", "R@5", "N", "chance"])
    if summary["qa"]:
        types = sorted({t for r in summary["qa"].values() for t in r})
        rep.add_section("Motion QA", "Accuracy per query type on questions generated from held-out sequences; the "
                                     "question-only answerer never sees the motion. Questions per type: "
                        + ", ".join(f"{t} {n}" for t, n in summary["qa_questions"].items()))
        rep.add_table([[n, *[r.get(t) for t in types]] for n, r in summary["qa"].items()], header=["answerer", *types])
    s = summary["speed"]
    rep.add_section("Encoding speed", f"{s['model_fps']:.0f} frames/s at the model's 15 fps ({s['source_fps_30']:.0f} "
                                      f"frames/s of 30 fps input), warm, {summary['threads']['torch']} torch "
                                      f"thread(s), load average {summary['load_average'][0]:.1f} while measured.")
    return rep.save(out / "report.html")
