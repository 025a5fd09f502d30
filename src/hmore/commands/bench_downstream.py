"""``hmore bench gait`` and ``hmore bench action-flow``: downstream recognisers fed by each kind of flow.

Both build their generated set (resumable: run the same command again after a stop), compute and cache the flows
(DIS, H-MoRe world/local, exact), train one model per input row through the training engine (resumable), score the
test split and write ``results.json``, ``report.html`` and the tables beside the paper's figures. ``--quick`` runs the
reduced preset end to end in minutes. ``--flow-weights FILE`` re-runs only the H-MoRe rows with those weights,
``--flow-pipeline command`` with the flow ``hmore flow`` writes (both cached under their own key).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from hmore.errors import UsageError


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must be i/n, e.g. 0/2, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard must be i/n with 0 <= i < n, got {text!r}")
    return i, n


def _common(p: argparse.ArgumentParser, *, presets: list[str], rows: tuple[str, ...]) -> None:
    from hmore.flowfeed import DEFAULT_FLOW_PIPELINE, FLOW_PIPELINES

    p.add_argument("-o", "--out", required=True, help="output folder (runs, results.json, report.html)")
    p.add_argument("--preset", choices=presets, default="full", help="the generated set and its recipe (default full)")
    p.add_argument("--quick", action="store_true", help="the reduced preset, end to end in minutes (= --preset quick)")
    p.add_argument("--rows", nargs="+", default=list(rows), metavar="CHANNELS",
                   help=f"input rows, channels joined by + (default: {' '.join(rows)})")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds; tables show the mean (default 0)")
    p.add_argument("--flow-model", default="hmore_flow_cpu", help="H-MoRe flow model (default hmore_flow_cpu)")
    p.add_argument("--flow-weights", default=None,
                   help="weights (.safetensors, or the name of other shipped weights) of the flow model (default: "
                        "its shipped weights); only the H-MoRe "
                        "rows are re-run, their flows cached under the weights' sha256")
    p.add_argument("--flow-pipeline", choices=FLOW_PIPELINES, default=DEFAULT_FLOW_PIPELINE,
                   help="how the H-MoRe rows' flow is made: raw (default: the network's output, as the tables before "
                        "the pipelines) or command (what `hmore flow` writes: camera compensation, refinement inside "
                        "the people, local = world - v_s from the pose); cached under its own key")
    p.add_argument("--data-dir", default=None, help="the generated set's folder (default OUT/set); shareable")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's training steps")
    p.add_argument("--recipe", dest="recipe_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one field of the preset's recipe, e.g. --recipe flow_mask=false (repeatable); "
                        "use a new -o folder: run folders are named by row and seed only")
    p.add_argument("--stage", choices=("data", "train", "all"), default="all",
                   help="stop after building the set (data), after training (train), or score and report (all)")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/n",
                   help="build only every n-th item of the set (parallel processes; use with --stage data)")
    p.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from hmore.bench.gait_bench import ROWS as GAIT_ROWS
    from hmore.fineaction.bench import ROWS as ACTION_ROWS
    from hmore.fineaction.bench import TWO_STREAM_ROWS
    from hmore.fineaction.data import PRESETS as ACTION_PRESETS
    from hmore.gait.data import PRESETS as GAIT_PRESETS

    g = sub.add_parser("gait", help="gait recognition (GaitBase-style) with and without flow, CASIA-B protocol",
                       description=__doc__)
    _common(g, presets=list(GAIT_PRESETS), rows=GAIT_ROWS)
    a = sub.add_parser("action-flow", help="fine-grained action recognition from RGB with and without flow",
                       description=__doc__)
    _common(a, presets=list(ACTION_PRESETS), rows=ACTION_ROWS)
    a.add_argument("--split", choices=("test", "val"), default="test",
                   help="score and report the test split (default) or the validation identities (--recipe "
                        "val_identities=N), where recipes are chosen; rows: rgb+dis (early fusion), dis (a flow "
                        "stream), rgb|dis (two streams, fused with a weight chosen on validation); the issue's "
                        f"two-stream table: --rows {' '.join(TWO_STREAM_ROWS)}")


def run(args: argparse.Namespace) -> int:
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    preset = "quick" if args.quick else args.preset
    command = "hmore " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    from hmore.config import parse_overrides

    kwargs = dict(preset=preset, rows=args.rows, seeds=args.seeds, flow_model=args.flow_model,
                  flow_weights=args.flow_weights, flow_pipeline=args.flow_pipeline, data_dir=args.data_dir,
                  steps=args.steps, stage=args.stage, shard=args.shard, threads=args.threads, command=command,
                  recipe_overrides=parse_overrides(args.recipe_overrides))
    if args.bench_target == "gait":
        from hmore.bench import gait_bench as bench
    else:
        from hmore.fineaction import bench  # type: ignore[no-redef]

        kwargs["split"] = args.split
    summary = bench.run(args.out, **kwargs)
    if args.stage != "all":
        print(f"{args.bench_target}: stage {args.stage} done ({summary})")
        return 0
    print(bench.format_tables(summary))
    t = summary["timing"]
    print(f"\n{t['seconds']:.0f} s wall, {t['cpu_seconds']:.0f} s CPU (this process), load average "
          f"{' '.join(str(v) for v in t['load_average'])}")
    print(f"\nwrote {args.out}/results.json and {args.out}/report.html")
    return 0
