"""Benchmarks. ``hmore bench flow`` runs flow methods on the same frame pairs and writes a table and a report;
``hmore bench lift --data h36m`` scores 2D-to-3D lifters on Human3.6M (MotionBERT's protocol), ``--data bandai`` /
``generated`` on held-out people;
``hmore bench action --data nw_ucla`` scores skeleton action models on NW-UCLA's cross-view split.

Data (``--data``, one or more sources): a generated held-out set (``synth-heldout``, ``robustness`` or
``robustness:SET`` with SET one of overlap, background, clothing, small, motion; seeds never used in training) with
ground truth, or a video / folder of videos (then only the ground-truth-free metrics; masks and pose from a
``priors.npz`` beside the video or hmore.priors; masks from ``<stem>_masks.npz`` beside it when there is one, e.g.
DAVIS's ground truth). Real clips are split into sets by whether their camera moves and which masks they use. With
several sets (e.g. ``--data synth-heldout VIDEO_DIR``), the table and the report show each set on its own. ``--fps``
renders the generated sets at that frame rate.
Methods (``--methods``): dis, farneback, dis_mask, zero, a registered hmore flow model (``hmore_flow_cpu``, with
shipped weights, ``--weights`` or ``NAME=WEIGHTS``), ``file:PATH`` (.flo / .npy flows, one per pair in order);
``+cam`` adds camera compensation to a baseline, ``+nocam`` removes it from an hmore model, ``+noref`` its
photometric refinement inside people, ``+search`` puts the opt-in DIS search before that refinement, a last
``+zoom`` adds its enlarged second pass for small people.
Writes OUT/results.json and OUT/report.html.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from hmore.errors import UsageError

HELP = ("benchmarks: flow methods (flow), 3D lifters on Human3.6M (lift), skeleton actions on NW-UCLA (action), gait "
        "recognition (gait) and fine-grained actions (action-flow) with flow, motion concepts (concepts)")

DEFAULT_METHODS = ("hmore_flow_cpu", "hmore_flow_cpu+zoom", "hmore_flow_cpu+noref", "hmore_flow_cpu+nocam", "dis",
                   "dis+cam", "farneback", "farneback+cam", "dis_mask", "zero")


def _size(text: str) -> tuple[int, int]:
    """``WxH`` -> (H, W)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 128x96, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return h, w


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_target", metavar="TARGET")
    p = sub.add_parser("flow", help="flow methods: accuracy, leakage, robustness, cost", description=__doc__)
    p.add_argument("--data", nargs="+", default=["synth-heldout"], metavar="SOURCE",
                   help="one or more of: synth-heldout | robustness | robustness:SET | a video or folder "
                        "(default synth-heldout); several sets get one table each")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), metavar="METHOD",
                   help=f"methods to compare (default: {' '.join(DEFAULT_METHODS)})")
    p.add_argument("--pairs", type=int, default=2, help="consecutive frame pairs per clip (default 2)")
    p.add_argument("--clips", type=int, default=2, help="generated clips per set level (default 2)")
    p.add_argument("--size", type=_size, default=(192, 256), metavar="WxH",
                   help="generated clip size; real frames are scaled to this longer side (default 256x192)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of the generated clips (default: each set's own, 30 for most); real clips keep "
                        "theirs")
    p.add_argument("--weights", default=None, help="weights (.safetensors) for hmore models without shipped weights")
    p.add_argument("--device", default="cpu", help="torch device for hmore models (default cpu)")
    p.add_argument("--cost-sizes", type=_size, nargs="*", default=None, metavar="WxH",
                   help="sizes for pairs/s and memory (default 128x96 256x192 512x384; none given: skip)")
    p.add_argument("--cost-pairs", type=int, default=3, help="timed pairs per method, size and round (default 3)")
    p.add_argument("--cost-repeats", type=int, default=5,
                   help="timed rounds per size, methods interleaved; pairs/s is their median (default 5)")
    p.add_argument("--occlusion", choices=("reference", "own", "none"), default="reference",
                   help="occluded pixels left out of the photometric error: one DIS forward-backward check shared by "
                        "all methods (reference, default), each method's own backward flow (own), or none")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch and OpenCV (default: theirs, one per core; idle OpenMP threads sleep, "
                        "see benchmarks/flow_threads.py)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    _add_lift(sub)
    _add_action(sub)
    from hmore.commands import bench_downstream

    bench_downstream.add_parsers(sub)
    _add_concepts(sub)


def _add_concepts(sub: argparse._SubParsersAction) -> None:
    from hmore.bench.concepts_bench import DEFAULT_MODELS, DEFAULT_QA
    from hmore.bench.concepts_bench import __doc__ as doc

    p = sub.add_parser("concepts", help="motion concepts: NMI/purity vs actions, retrieval, QA, encode speed",
                       description=doc)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="[NAME=]SOURCE",
                   help="concept models: shipped weights names, run folders or checkpoints (the first is the main one)")
    p.add_argument("--qa", nargs="*", default=list(DEFAULT_QA), metavar="[NAME=]SOURCE", help="question answerers")
    p.add_argument("--data", type=Path, default=None,
                   help="a concepts data folder (hmore concepts data); default: read the shared data folder")
    p.add_argument("--quick", action="store_true", help="small sets: a few minutes with the shipped models")
    p.add_argument("--pairs", type=int, default=None, help="held-out pairs for retrieval (default 100, quick 24)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="k-means and QA seed (default 0)")
    p.add_argument("-o", "--out", required=True, help="output folder")


def _concepts(args: argparse.Namespace) -> int:
    from hmore.bench import concepts_bench

    if args.pairs is not None and args.pairs < 1:
        raise UsageError(f"--pairs must be >= 1, got {args.pairs}")
    summary = concepts_bench.run(out_dir=args.out, models=args.models, qa_models=args.qa, data=args.data,
                                 quick=args.quick, pairs=args.pairs, threads=args.threads, seed=args.seed,
                                 command="hmore " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                                 progress=sys.stderr.isatty())
    print(concepts_bench.format_tables(summary))
    print(f"\nwrote {args.out}/results.json and {args.out}/report.html")
    return 0


def _add_action(sub: argparse._SubParsersAction) -> None:
    from hmore.bench.action_bench import DEFAULT_MODELS

    p = sub.add_parser("action", help="skeleton action models on NW-UCLA's cross-view split (view 3)",
                       description="Scores action models on NW-UCLA's test view (3; trained on views 1-2): top-1, "
                                   "per-class accuracy, confusion matrices, the published anchor. Writes "
                                   "OUT/results.json and OUT/report.html.")
    p.add_argument("--data", default="nw_ucla", choices=("nw_ucla",), help="benchmark data (default nw_ucla)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL",
                   help=f"shipped weights names or NAME=RUN_OR_CHECKPOINT (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--on", default="test", choices=("test", "view2"),
                   help="test: view 3 (default); view2: the validation proxy, view 2, for models trained on view 1 "
                        "only (data.validate_on=view2), to choose recipes and ensemble weights without view 3")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("-o", "--out", required=True, help="output folder")


def _set_threads(threads: int | None) -> str:
    """Set torch's threads (when given); the command line, for the reports."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return "hmore " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _print_summary(heading: str, table: str, summary: dict, out: str) -> int:
    print(heading)
    print(table)
    for name, why in summary["unavailable"].items():
        print(f"{name}: unavailable: {why}")
    print(f"\nwrote {out}/results.json and {out}/report.html")
    return 0


def _run_action(args: argparse.Namespace) -> int:
    from hmore.bench import action_bench

    command = _set_threads(args.threads)
    summary = action_bench.run(models=args.models, data=args.data, out_dir=args.out, command=command,
                               on=args.on)
    return _print_summary(f"{summary['benchmark']}, {summary['test_sequences']} test sequences",
                          action_bench.format_table(summary), summary, args.out)


def _add_lift(sub: argparse._SubParsersAction) -> None:
    from hmore.bench.lift_bench import DEFAULT_MODELS

    p = sub.add_parser("lift", help="2D-to-3D lifters on Human3.6M S9/S11 (MotionBERT's protocol)",
                       description="Scores lifters on Human3.6M S9 and S11 with MotionBERT's protocol: root-relative "
                                   "camera-frame 3D, 2D normalised by the image size, test-time flip; Protocol 1 and 2 "
                                   "per action and averaged over actions, on SH detections and on ground-truth 2D; "
                                   "P1 with joints missing; bone-length steadiness. Writes OUT/results.json and "
                                   "OUT/report.html.")
    p.add_argument("--data", default="h36m", choices=("h36m", "bandai", "generated"),
                   help="benchmark data (default h36m); held-out people: bandai (held-out Bandai-Namco takes), "
                        "generated (held-out generated identities on capsule and Anny bodies), each motion seen by a "
                        "fixed seeded virtual camera with COCO-derived noisy 2D (--inputs does not apply)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL",
                   help="shipped weights names or NAME=RUN_OR_CHECKPOINT (default: "
                        f"{' '.join(DEFAULT_MODELS)})")
    p.add_argument("--inputs", nargs="+", default=["sh", "gt"], choices=("sh", "gt"),
                   help="2D inputs: sh (Stacked-Hourglass detections), gt (ground-truth 2D) (default both)")
    p.add_argument("--quick", type=int, default=1, metavar="N",
                   help="score every N-th window of each sequence only, from a fixed offset of its own "
                        "(default 1: every frame)")
    p.add_argument("--missing", type=float, default=0.2,
                   help="fraction of joints dropped for the robustness row, SH input (default 0.2; 0 skips it)")
    p.add_argument("--no-flip", action="store_true", help="no test-time flip")
    p.add_argument("--pictures", type=int, default=4, help="skeleton pictures per model (default 4)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("-o", "--out", required=True, help="output folder")


def _run_lift(args: argparse.Namespace) -> int:
    from hmore.bench import lift_bench

    command = _set_threads(args.threads)
    summary = lift_bench.run(models=args.models, data=args.data, sources=args.inputs, every=args.quick,
                             missing=args.missing, flip=not args.no_flip, out_dir=args.out, pictures=args.pictures,
                             command=command)
    where = "Human3.6M S9/S11" if args.data == "h36m" else summary["benchmark"]
    return _print_summary(f"{where}, {summary['protocol']['frames']}; {summary['protocol']['frames_total']} "
                          f"frames in {summary['protocol']['examples']} sequence x camera pairs",
                          lift_bench.format_table(summary), summary, args.out)


def run(args: argparse.Namespace) -> int:
    from hmore.bench import flow_bench
    from hmore.io.atomic import check_output_dir

    target = getattr(args, "bench_target", None)
    if getattr(args, "out", None) is not None:
        check_output_dir(args.out)  # before any work, for every benchmark
    if target == "concepts":
        return _concepts(args)
    if target == "lift":
        return _run_lift(args)
    if target == "action":
        return _run_action(args)
    if target in ("gait", "action-flow"):
        from hmore.commands import bench_downstream

        return bench_downstream.run(args)
    if target != "flow":
        raise UsageError("choose a benchmark: hmore bench flow | lift | action | gait | action-flow | concepts ...")
    if args.pairs < 1:
        raise UsageError(f"--pairs must be >= 1, got {args.pairs}")
    if args.clips < 1:
        raise UsageError(f"--clips must be >= 1, got {args.clips}")
    if args.cost_pairs < 1:
        raise UsageError(f"--cost-pairs must be >= 1, got {args.cost_pairs}")
    if args.cost_repeats < 1:
        raise UsageError(f"--cost-repeats must be >= 1, got {args.cost_repeats}")
    repeated = sorted({d for d in args.data if args.data.count(d) > 1})
    if repeated:
        raise UsageError(f"--data lists a source twice: {', '.join(repeated)}")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise UsageError(f"--fps must be a finite number > 0, got {args.fps:g}")
    cost = flow_bench.COST_SIZES if args.cost_sizes is None else tuple(args.cost_sizes)
    summary = flow_bench.run(
        args.data, methods=args.methods, out_dir=args.out, pairs=args.pairs, clips=args.clips, size=args.size,
        fps=args.fps, weights=args.weights, device=args.device, cost_sizes=cost, cost_pairs=args.cost_pairs,
        occlusion=args.occlusion, threads=args.threads, cost_repeats=args.cost_repeats,
        command="hmore " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    print(flow_bench.format_tables(summary))
    if any(e["cost"] for e in summary["methods"].values()):
        print()
        print(flow_bench.format_cost_table(summary))
    for name, e in summary["methods"].items():
        if not e["available"]:
            print(f"{name}: unavailable: {e['reason']}")
    print(f"\nwrote {args.out}/results.json and {args.out}/report.html")
    return 0
