"""How concept training runs share their codebook between the datasets (issue 16): for each run's checkpoint at one
step, the training windows of ``--batches`` batches (the run's own sampling, steps 1000 onwards, eval mode) are
encoded, and per dataset the table gives its windows' mean number of frames and mean absolute state (the canonical
features the encoder reads), the concepts its tokens use, their effective number (exp of the entropy of
its concept histogram), how many of them no other dataset uses, and the mean share of the dataset's own tokens in
the concept of each of its tokens (1: its concepts are its own). With ``--dataset`` (default nw_ucla), for the
concepts of a batch that only that dataset's tokens use, the mean sigmoid of their discriminative classifier on
their positive frames, on the other frames of the same dataset and on the frames of the other datasets (the
classifier is trained to put negatives near 0).

    python benchmarks/concepts_sources.py runs/f16/full_c3_s0_1200@1200 runs/c16/v_vqvae@1200

``run@step``; a pair's motion counts as its own row (``pair``: renders of Bandai and procedural motions, and real
videos with lifted motion). Labels are not read. The checkpoints' codebooks and classifiers are read as trained;
the batches are drawn from the cache the run's config names.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch


def source_table(run: Path, step: int, *, batches: int, dataset: str, shared: dict[Any, Any]) -> list[str]:
    """Markdown rows (one per dataset) and a line on the classifiers of ``dataset``'s own concepts."""
    from hmore.concepts.encode import load_concept_model
    from hmore.concepts.motion import SOURCES
    from hmore.config import load_config
    from hmore.train.tasks.concepts import ConceptsRunConfig, ConceptsTask

    cfg = load_config(ConceptsRunConfig, json.loads((run / "config.json").read_text()))
    # the source-negatives option only to get each window's dataset in the batch (the windows do not change)
    cfg = replace(cfg, loss=replace(cfg.loss, dis_negatives="source", dis_positive="concept", dis_source_weights={}))
    key = (cfg.data.cache, cfg.data.sources + cfg.data.eval_sources, cfg.data.val_fraction)
    task = ConceptsTask(config=cfg, sequences=shared.get(key))
    shared[key] = task.sequences()
    model = load_concept_model(checkpoint=run / "checkpoints" / f"step_{step:07d}.safetensors").eval()
    names = [*SOURCES, "other"]
    code = names.index(dataset)
    ids_all: list[np.ndarray] = []
    src_all: list[np.ndarray] = []
    sig: dict[str, list[float]] = {"pos": [], "same": [], "other": []}
    frames: dict[int, list[float]] = {}
    size: dict[int, list[float]] = {}
    for i in range(batches):
        b = task.batch(1000 + i, rank=0, world_size=1, batch_size=cfg.train.batch_size)
        src = b["source"].clone()
        src[cfg.train.batch_size:] = -1  # the pairs' motion: its own row
        with torch.no_grad():
            out = model.motion(b["states"], b["valid"])
        tv = out.token_valid
        for i_win, s_win in enumerate(src.tolist()):
            v = b["valid"][i_win]
            frames.setdefault(s_win, []).append(float(v.sum()))
            size.setdefault(s_win, []).append(float(b["states"][i_win][v].abs().mean()))
        ids_all.append(out.ids[tv].numpy())
        src_all.append(src[:, None].expand_as(out.ids)[tv].numpy())
        if cfg.loss.dis <= 0:  # no trained classifiers
            continue
        valid = b["valid"]
        states = model.hyper_states(b["states"], valid)[valid]  # (M, C) every valid frame, as the classifiers read it
        frame_src = src[:, None].expand_as(valid)[valid]
        frame_ids = out.ids.repeat_interleave(model.config.segment, dim=1)[valid]
        own = [c for c in torch.unique(out.ids[tv & (src == code)[:, None]])
               if not bool((out.ids[tv & (src != code)[:, None]] == c).any())]
        if not own:
            continue
        with torch.no_grad():
            p = torch.sigmoid(model.hypernet.logits(model.codebook("motion")[torch.stack(own)][:, None, :],
                                                    states[None]))  # (U, M)
        for r, c in enumerate(own):
            pos = frame_ids == c
            sig["pos"].append(float(p[r][pos].mean()))
            sig["same"].append(float(p[r][~pos & (frame_src == code)].mean()))
            sig["other"].append(float(p[r][frame_src != code].mean()))
    ids, srcs = np.concatenate(ids_all), np.concatenate(src_all)
    rows = []
    for s, label in [(i, n) for i, n in enumerate(names)] + [(-1, "pair")]:
        m = srcs == s
        if not m.any():
            continue
        codes, counts = np.unique(ids[m], return_counts=True)
        p = counts / counts.sum()
        exclusive = len(set(codes) - set(np.unique(ids[~m])))
        share_of = {c: float(np.mean(srcs[ids == c] == s)) for c in codes}
        share = float(np.mean([share_of[c] for c in ids[m]]))
        rows.append(f"| {run}@{step} | {label} | {np.mean(frames[s]):.1f} | {np.mean(size[s]):.3f} "
                    f"| {int(m.sum())} | {len(codes)} | {np.exp(-(p * np.log(p)).sum()):.1f} "
                    f"| {exclusive} | {share:.2f} |")
    if sig["pos"]:
        rows.append(f"{run}@{step}: {len(sig['pos'])} {dataset}-only concepts over {batches} batches; classifier "
                    f"sigmoid on positives {np.mean(sig['pos']):.3f}, on other {dataset} frames "
                    f"{np.mean(sig['same']):.3f}, on other datasets' frames {np.mean(sig['other']):.3f}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run@step")
    ap.add_argument("--batches", type=int, default=40, help="training batches to encode per run")
    ap.add_argument("--dataset", default="nw_ucla", help="whose own concepts' classifiers to score")
    args = ap.parse_args()
    torch.set_num_threads(1)
    shared: dict[Any, Any] = {}
    print("| run | dataset | frames / window | mean abs state | tokens | concepts | effective | own only | own share |")
    print("|---|---|---|---|---|---|---|---|---|")
    notes = []
    for spec in args.runs:
        run, _, step = spec.rpartition("@")
        if not run:
            raise SystemExit(f"error: {spec!r} is not run@step")
        rows = source_table(Path(run), int(step), batches=args.batches, dataset=args.dataset, shared=shared)
        print("\n".join(r for r in rows if r.startswith("|")))
        notes += [r for r in rows if not r.startswith("|")]
    print("\n".join(notes))


if __name__ == "__main__":
    main()
