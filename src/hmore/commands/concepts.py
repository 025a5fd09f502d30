"""Motion concepts (HuMoCon): ``hmore concepts data | train | encode | show | qa``.

* ``data --out DIR``: cache the training data (resumable): skeleton sequences of Bandai-Namco, NW-UCLA, Human3.6M
  and procedural motions; generated video-motion pairs (rendered people with hmore's flow); real videos with their
  lifted motion (``--real VIDEO ...``).
* ``train``: train the concept model (task ``concepts``) or the question answerer (``--qa``, task ``concept_qa``);
  the same options as ``hmore train``.
* ``encode INPUT -o OUT``: concept ids per frame of a video, a keypoint file, a BVH file or a generated clip.
* ``show INPUT -o OUT``: the report: concept timeline under the video, each concept's nearest segments as small
  skeleton animations, a concept-by-label table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmore.errors import UsageError

HELP = "motion concepts (HuMoCon): cache data, train, encode inputs to concept ids, show a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="concepts_action", metavar="ACTION")
    p = sub.add_parser("data", help="cache skeleton sequences and paired video-motion clips (resumable)")
    p.add_argument("--out", type=Path, required=True, help="the concepts data folder")
    p.add_argument("--skeleton", nargs="*", default=None, metavar="SOURCE",
                   help="skeleton sources to cache (default: bandai nw_ucla h36m procedural; none given: skip)")
    p.add_argument("--pairs", type=int, default=None, metavar="N",
                   help="render at most N generated pairs in this call (default: all of the set; 0 skips)")
    p.add_argument("--bandai-train", type=int, default=240, help="Bandai training takes to render (default 240)")
    p.add_argument("--procedural-train", type=int, default=10,
                   help="procedural training identities to render, every action each (default 10)")
    p.add_argument("--splits", nargs="+", choices=("train", "test"), default=("train", "test"),
                   help="render only the pairs of these splits (default both)")
    p.add_argument("--flow", choices=("mixed", "hmore", "exact"), default="mixed",
                   help="flow of the generated pairs: hmore_flow_cpu for held-out pairs and 1 in 5 training pairs, "
                        "the generator's exact flow for the others (mixed, default; hmore's flow costs ~10x the "
                        "rendering), hmore_flow_cpu for all, or exact for all")
    p.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                   help="render exactly the generated pairs FILE lists (spec and flow of each; see --save-manifest) "
                        "instead of the set of --bandai-train/--procedural-train/--splits/--flow/--seed")
    p.add_argument("--save-manifest", type=Path, default=None, metavar="FILE",
                   help="at the end, write the manifest of the folder's generated pairs to FILE (.json or .json.gz)")
    p.add_argument("--real", nargs="*", type=Path, default=(), metavar="VIDEO",
                   help="real videos to pair with their lifted motion (MediaPipe -> dstformer_cpu)")
    p.add_argument("--real-test", nargs="*", default=(), metavar="STEM",
                   help="stems of real videos held out for retrieval")
    p.add_argument("--seed", type=int, default=0, help="seed of the pair set (default 0)")

    p = sub.add_parser("train", help="train the concept model (or the answerer with --qa); hmore train's options")
    p.add_argument("--qa", action="store_true", help="train the question answerer (task concept_qa)")
    from hmore.commands.train import add_run_options

    add_run_options(p)

    for name, text in (("encode", "concept ids per frame of a video, keypoint file, BVH or generated clip"),
                       ("show", "the concepts report: timeline under the video, nearest segments, label table")):
        p = sub.add_parser(name, help=text)
        p.add_argument("input", type=Path, help="a video, a 2D keypoint file, a BVH (.bvh/.bvh.gz), a generated clip "
                                                "(.npz) or a pose3d.npz from hmore lift")
        p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
        src = p.add_mutually_exclusive_group()
        src.add_argument("--weights", default=None, help="shipped concept weights (default: concepts_cpu)")
        src.add_argument("--checkpoint", type=Path, default=None, help="a concepts training run or checkpoint")
        p.add_argument("--person", type=int, default=0, help="which person: 0 = the most detected (default)")
        p.add_argument("--size", default=None, metavar="WxH", help="image size of a keypoint file that lacks it")
        p.add_argument("--fps", type=float, default=None, help="frame rate of a keypoint file that lacks it")
        if name == "show":
            p.add_argument("--reference", type=Path, default=None,
                           help="a concepts data folder for nearest segments and the label table (default: the "
                                "shared data, when present)")
            p.add_argument("--no-reference", action="store_true", help="show the input only")
            p.add_argument("--concepts", type=int, default=8, help="concepts shown (the most frequent; default 8)")


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "concepts_action", None)
    if action == "data":
        return _data(args)
    if action == "train":
        from hmore.commands import train

        return train.run(argparse.Namespace(task="concept_qa" if args.qa else "concepts", config=args.config,
                                            out=args.out, resume=args.resume, overrides=args.overrides,
                                            export=args.export, export_dir=args.export_dir))
    if action in ("encode", "show"):
        return _encode(args, show=action == "show")
    raise UsageError("choose an action: hmore concepts data|train|encode|show ...")


def _data(args: argparse.Namespace) -> int:
    import sys

    from hmore.concepts.motion import SOURCES, build_skeleton_cache, load_sequences, sequence_summary
    from hmore.concepts.pairs import (
        build_pair_cache,
        build_real_cache,
        pair_manifest,
        pair_specs,
        read_pair_manifest,
        write_pair_manifest,
    )

    progress = sys.stderr.isatty()
    sources = SOURCES if args.skeleton is None else tuple(args.skeleton)
    if sources:
        for src, path in build_skeleton_cache(args.out, sources=sources, progress=progress).items():
            print(f"{src}: {path} {sequence_summary(load_sequences(path))}")
    if args.pairs is None or args.pairs > 0:
        from hmore.concepts.motion import PROCEDURAL_TRAIN_IDS

        if not 0 <= args.procedural_train <= len(PROCEDURAL_TRAIN_IDS):
            raise UsageError(f"--procedural-train must be within 0-{len(PROCEDURAL_TRAIN_IDS)}")
        if args.manifest is not None:
            specs, flows = read_pair_manifest(args.manifest)
            done = build_pair_cache(args.out, specs, flow=flows, progress=progress, limit=args.pairs)
        else:
            specs = pair_specs(bandai_train=args.bandai_train, seed=args.seed,
                               procedural_train_ids=PROCEDURAL_TRAIN_IDS[: args.procedural_train])
            specs = [s for s in specs if s.split in args.splits]
            done = build_pair_cache(args.out, specs, flow=args.flow, progress=progress, limit=args.pairs)
        print(f"generated pairs: {len(done)} of {len(specs)} cached in {args.out / 'pairs'}")
    if args.real:
        missing = [str(v) for v in args.real if not Path(v).is_file()]
        if missing:
            raise UsageError(f"--real: no such video: {', '.join(missing)}")
        done = build_real_cache(args.out, args.real, progress=progress, held_out=args.real_test)
        print(f"real pairs: {len(done)} of {len(args.real)} cached in {args.out / 'real'}")
    if args.save_manifest is not None:
        rows = pair_manifest(args.out)
        print(f"manifest of {len(rows)} generated pairs: {write_pair_manifest(args.save_manifest, rows)}")
    return 0


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 1920x1080, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise UsageError(f"--size must be positive, got {text!r}")
    return w, h


def _encode(args: argparse.Namespace, *, show: bool) -> int:
    import shlex
    import sys
    import time

    from hmore.concepts.encode import concept_segments, encode_sequences, load_concept_model, read_motion
    from hmore.concepts.show import concepts_record, reference_sequences, show_concepts
    from hmore.io.atomic import save_npz_atomic, write_json_atomic

    if not args.input.exists():
        raise UsageError(f"no such input: {args.input}")
    model = load_concept_model(weights=args.weights, checkpoint=args.checkpoint)
    motion = read_motion(args.input, person=args.person, size=_size(args.size), fps=args.fps)
    t0 = time.perf_counter()
    enc = encode_sequences(model, [motion.joints], has_root=motion.has_root)[0]
    dt = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    ids_src = enc.ids[motion.source_to_model()]
    save_npz_atomic(args.out / "concepts.npz", ids=ids_src, ids_model=enc.ids, latent=enc.latent,
                    source_fps=motion.source_fps, model_fps=15.0)
    write_json_atomic(args.out / "concepts.json", concepts_record(motion, enc))
    runs = concept_segments(enc.ids)
    print(f"{args.input}: {motion.source_frames} frames ({motion.kind}), {len(set(enc.ids.tolist()))} concepts in "
          f"{len(runs)} runs; encoded in {dt * 1000:.0f} ms")
    print("  " + " ".join(f"{k}@{s / 15.0:.1f}s" for k, s, _ in runs[:24]) + (" ..." if len(runs) > 24 else ""))
    if show:
        ref = []
        if not args.no_reference:
            ref = reference_sequences(args.reference)
        page = show_concepts(motion, enc, args.out, model=model, reference=ref, max_concepts=args.concepts,
                             command="hmore " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        print(f"wrote {page}")
    else:
        print(f"wrote {args.out / 'concepts.npz'} and {args.out / 'concepts.json'}")
    return 0
