"""Which part of the Human3.6M lifting recipe matters: short runs of one lifter under one CPU-time budget each.

Every variant starts from ``--config`` (default ``configs/lift_h36m_mlp.yaml``) with a few ``--set``-style overrides,
trains for ``--budget`` CPU-seconds of this process (one torch thread: CPU time, not wall time, so a loaded machine
does not change the budget) with the config's optimiser, its learning rate decayed exponentially to ``--final-lr``
x the base over the budget, then is scored on the validation trials (S8's last trial of each action, never S9/S11)
with SH detections and ground-truth 2D, every ``--val-every``-th frame. Prints a table and writes ``results.json``.

    OMP_NUM_THREADS=1 python benchmarks/lift_h36m_recipe.py --budget 120 -o out/recipe --variants current frames
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

# name -> overrides applied on top of --config, in order; each row is one change against the one before it.
VARIANTS: dict[str, list[str]] = {
    "current": [],
    "frames": ["data.clip_len=1", "train.batch_size=256"],
    "nomask": ["data.clip_len=1", "train.batch_size=256", "data.mask_joint_max=0", "data.mask_frame=0"],
    "novirtual": ["data.clip_len=1", "train.batch_size=256", "data.mask_joint_max=0", "data.mask_frame=0",
                  "data.virtual_weight=0"],
    "rawinput": ["data.clip_len=1", "train.batch_size=256", "data.mask_joint_max=0", "data.mask_frame=0",
                 "data.virtual_weight=0", "model.kwargs.input_norm=none"],
    # with --config configs/lift_h36m_tcn.yaml: 8 windows of 81 frames a step, or 32 windows of 27 frames (the
    # receptive field cut to 27 frames to match)
    "tcn_current": [],
    "tcn_windows": ["data.clip_len=27", "train.batch_size=32", "model.kwargs.dilations=[3,9]"],
    # with --config configs/lift_h36m_dst_a.yaml (dstformer_cpu, 16 windows of 27 frames): one change each against
    # dst_base; --set train.optim.warmup_steps=20 for all of them (leg a's 100 would be half of a short budget)
    "dst_base": [],
    "dst_stride3": ["data.frame_stride=3", "model.kwargs.frame_stride=3"],  # every 3rd frame: windows span 1.6 s
    "dst_short9": ["data.clip_len=9", "model.kwargs.max_len=9", "train.batch_size=48"],  # 3x the windows, 1/3 long
    "dst_lr5e-4": ["train.optim.lr=5e-4"],  # MotionBERT's AdamW rate
    "dst_lr2e-3": ["train.optim.lr=2e-3"],
    "dst_targetnorm": ["model.kwargs.target_norm=true"],  # Martinez's per-joint target standardisation
    "dst_vel20": ["loss.velocity=20"],  # MotionBERT's velocity weight
    "dst_depth1": ["model.kwargs.depth=1"],  # 1 dual-stream layer instead of 3: 3x the steps in the same time
    "dst_short9_stride3": ["data.clip_len=9", "model.kwargs.max_len=9", "train.batch_size=48",
                           "data.frame_stride=3", "model.kwargs.frame_stride=3"],  # 48 windows of 9 frames, 25 long
    "dst_depth1_stride3": ["model.kwargs.depth=1", "data.frame_stride=3", "model.kwargs.frame_stride=3"],
    "dst_wide1": ["model.kwargs.depth=1", "model.kwargs.dim=128"],  # 1 layer, twice as wide: ~1/3 more per step
    # a whole-pose MLP embedding added to every joint token (a per-frame Martinez-style stem): 3 or 1 layers after it
    "dst_pose512": ["model.kwargs.pose_embed=512"],
    "dst_pose1024": ["model.kwargs.pose_embed=1024"],
    "dst_depth1_pose512": ["model.kwargs.depth=1", "model.kwargs.pose_embed=512"],
    "dst_depth1_pose1024b2": ["model.kwargs.depth=1", "model.kwargs.pose_embed=1024",
                              "model.kwargs.pose_embed_blocks=2"],  # the MLP baseline's width and blocks
    "dst_depth1_pose512_stride3": ["model.kwargs.depth=1", "model.kwargs.pose_embed=512", "data.frame_stride=3",
                                   "model.kwargs.frame_stride=3"],
    # diagnostic, not a lifter for video: 432 single frames a step (the same tokens as 16 x 27), temporal attention
    # over one frame: how fast the architecture learns from independent poses
    "dst_frames": ["data.clip_len=1", "model.kwargs.max_len=1", "train.batch_size=432"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/lift_h36m_mlp.yaml")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--set", nargs="*", default=[], dest="extra", help="overrides applied to every variant")
    ap.add_argument("--budget", type=float, default=120.0, help="CPU-seconds of training per variant")
    ap.add_argument("--final-lr", type=float, default=0.1, help="learning-rate factor reached at the budget's end")
    ap.add_argument("--val-every", type=int, default=10)
    ap.add_argument("--tag", default="", help="appended to the variants' names in the table (e.g. another seed)")
    ap.add_argument("-o", "--out", default="out/lift_h36m_recipe")
    args = ap.parse_args()

    from hmore.config import load_config
    from hmore.io.atomic import write_json_atomic
    from hmore.lift.h36m import LiftArrays, evaluate
    from hmore.train.schedule import build_optimizer
    from hmore.train.tasks.lift_h36m import H36MLiftRunConfig, H36MLiftTask

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = H36MLiftTask(config=load_config(H36MLiftRunConfig, args.config, args.extra))
    t0 = time.process_time()
    train_arr, val = base.arrays()
    pool = base.pool()
    print(f"data ready in {time.process_time() - t0:.0f} CPU-s", flush=True)
    results = {}
    if (out / "results.json").exists():
        results = json.loads((out / "results.json").read_text())
    for name in args.variants:
        if name + args.tag in results:
            print(f"{name}{args.tag}: cached", flush=True)
            continue
        cfg = load_config(H36MLiftRunConfig, args.config, VARIANTS[name] + args.extra)
        task = H36MLiftTask(config=cfg, arrays=(train_arr, val), pool=pool)
        torch.manual_seed(cfg.train.seed)
        model = task.build_model()
        model.train()
        opt = build_optimizer(model.parameters(), cfg.train.optim)
        lr0, warm = cfg.train.optim.lr, cfg.train.optim.warmup_steps
        start, step, frames, losses = time.process_time(), 0, 0, []
        while (used := time.process_time() - start) < args.budget:
            f = (step + 1) / warm if step < warm else 1.0
            for g in opt.param_groups:
                g["lr"] = lr0 * f * args.final_lr ** (used / args.budget)
            batch = task.batch(step, rank=0, world_size=1, batch_size=cfg.train.batch_size)
            loss, logs = task.loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.optim.grad_clip)
            opt.step()
            losses.append(logs["mpjpe_mm"])
            frames += batch["x"].shape[0] * batch["x"].shape[1]
            step += 1
        model.eval()
        ev = val
        if type(model).__name__ == "MLPLifter":  # per frame: every n-th frame alone is the same evaluation
            keep = np.arange(0, val.num_frames, args.val_every)
            ex = val.example_of_frame()[keep]
            offs = np.searchsorted(ex, np.arange(len(val.examples) + 1))
            ev = LiftArrays(examples=val.examples, offsets=offs, x={k: v[keep] for k, v in val.x.items()},
                            y=val.y[keep])
        row = {"overrides": VARIANTS[name] + args.extra, "steps": step, "frames": frames,
               "train_mpjpe_last100": float(np.mean(losses[-100:]))}
        for src in ("sh", "gt"):
            r = evaluate(model, ev, source=src, flip=True, every=1 if ev is not val else args.val_every)
            row[f"{src}_p1"], row[f"{src}_p2"] = r.p1, r.p2
        results[name + args.tag] = row
        print(f"{name}{args.tag}: {json.dumps(row)}", flush=True)
        write_json_atomic(out / "results.json", results)
    print(f"\nbudget {args.budget:.0f} CPU-s per variant; validation P1 / P2 in mm with test-time flip")
    print("| variant | steps | frames seen | val SH P1 | val SH P2 | val GT P1 | val GT P2 |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['steps']} | {r['frames']} | {r['sh_p1']:.1f} | {r['sh_p2']:.1f} | {r['gt_p1']:.1f} | "
              f"{r['gt_p2']:.1f} |")


if __name__ == "__main__":
    main()
