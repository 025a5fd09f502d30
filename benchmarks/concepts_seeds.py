"""Seed-averaged table of concept training runs (issue 16): mean +- std over seeds of each group's evaluation
(NMI / purity against action labels, concepts in use, retrieval R@1) at one step, read from the runs'
``metrics.jsonl`` (validation split when the runs set ``data.val_fraction``).

    python benchmarks/concepts_seeds.py --step 600 vqvae=runs/s16/vq_s0,runs/s16/vq_s1 full=runs/s16/full_s0

A group is ``label=run[,run...]``; a run without an evaluation at that step is left out and named on stderr. The std
is the sample std (n - 1) and is left blank for a single run.

``--window`` adds the windowed scores (each frame takes the most frequent concept of the model window centred on it,
:func:`hmore.concepts.evaluate.window_majority`): from ``metrics.jsonl`` when the run logged them, else by scoring
the run's checkpoint of that step again on its own evaluation split (``--step`` is then required; the result is
kept in ``<run>/rescore.json``, so a second call reads it). ``--decompose`` adds NMI's two halves, homogeneity
(each concept holds one action) and completeness (each action stays in one concept), and the Bandai NMI against the
style and against the (action, style) pair, the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hmore.commands.train import _last_eval  # the engine's metrics.jsonl reader

COLUMNS = (("bandai_nmi", "Bandai NMI"), ("bandai_purity", "Bandai purity"), ("bandai_clusters", "Bandai used"),
           ("nw_ucla_nmi", "NW-UCLA NMI"), ("nw_ucla_purity", "NW-UCLA purity"), ("nw_ucla_clusters", "NW-UCLA used"),
           ("r1", "R@1"))
WINDOW_COLUMNS = (("bandai_nmi_win", "Bandai NMI win"), ("bandai_purity_win", "Bandai purity win"),
                  ("nw_ucla_nmi_win", "NW-UCLA NMI win"), ("nw_ucla_purity_win", "NW-UCLA purity win"))
DECOMPOSE_COLUMNS = (("bandai_homogeneity", "Bandai homog."), ("bandai_completeness", "Bandai compl."),
                     ("nw_ucla_homogeneity", "NW-UCLA homog."), ("nw_ucla_completeness", "NW-UCLA compl."),
                     ("bandai_nmi_style", "Bandai NMI vs style"),
                     ("bandai_nmi_action_style", "Bandai NMI vs action x style"))


def mean_std(values: list[float], digits: int = 3) -> str:
    """``mean +- std`` (sample std) of the values, ``mean`` alone for one value, blank for none."""
    if not values:
        return ""
    v = np.asarray(values, np.float64)
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} +- {v.std(ddof=1):.{digits}f}"


def rescore(run: Path, step: int, shared: dict[Any, Any], keys: tuple[str, ...]) -> dict[str, float]:
    """The run's evaluation (clustering scores only, retrieval off) of its checkpoint at ``step``, cached in
    ``<run>/rescore.json`` (computed again when the cache lacks one of ``keys``); ``shared`` keeps the loaded
    sequences between runs of the same data."""
    from hmore.concepts.encode import load_concept_model
    from hmore.config import load_config
    from hmore.io.atomic import write_json_atomic
    from hmore.train.tasks.concepts import ConceptsRunConfig, ConceptsTask

    cache = run / "rescore.json"
    done = json.loads(cache.read_text()) if cache.is_file() else {}
    if all(k in done.get(str(step), {}) for k in keys):
        return done[str(step)]
    raw = json.loads((run / "config.json").read_text())
    raw["data"]["eval_pairs"] = 0
    cfg = load_config(ConceptsRunConfig, raw)
    d = cfg.data
    key = (d.cache, d.sources + d.eval_sources, d.val_fraction)
    task = ConceptsTask(config=cfg, sequences=shared.get(key))
    model = load_concept_model(checkpoint=run / "checkpoints" / f"step_{step:07d}.safetensors")
    scores = task.evaluate(model)
    shared[key] = task.sequences()
    done[str(step)] = scores
    write_json_atomic(cache, done)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("groups", nargs="+", help="label=run[,run...]")
    ap.add_argument("--step", type=int, default=None, help="the evaluation step (default: each run's last)")
    ap.add_argument("--window", action="store_true", help="add the windowed NMI / purity (see above)")
    ap.add_argument("--decompose", action="store_true", help="add homogeneity and completeness (see above)")
    args = ap.parse_args()
    extra = (WINDOW_COLUMNS if args.window else ()) + (DECOMPOSE_COLUMNS if args.decompose else ())
    if extra and args.step is None:
        sys.exit("error: --window and --decompose need --step")
    columns = COLUMNS + extra
    keys = tuple(k for k, _ in extra)
    shared: dict[Any, Any] = {}
    print("| group | runs | " + " | ".join(name for _, name in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for group in args.groups:
        label, _, runs = group.partition("=")
        if not runs:
            sys.exit(f"error: group {group!r} is not label=run[,run...]")
        evals = []
        for run in runs.split(","):
            ev = _last_eval(Path(run), step=args.step)
            if not ev:
                print(f"{run}: no evaluation at step {args.step}", file=sys.stderr)
                continue
            if not all(k in ev for k in keys):
                again = rescore(Path(run), args.step, shared, keys)
                for k in ("bandai_nmi", "nw_ucla_nmi"):  # the same checkpoint and split: the same per-frame scores
                    if k in ev and abs(again.get(k, ev[k]) - ev[k]) > 1e-6:
                        print(f"{run}: rescored {k} {again[k]:.4f} differs from the logged {ev[k]:.4f}",
                              file=sys.stderr)
                ev = {**again, **ev}
            evals.append(ev)
        cells = [mean_std([e[key] for e in evals if key in e], 1 if key.endswith("clusters") else 3)
                 for key, _ in columns]
        print(f"| {label} | {len(evals)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
