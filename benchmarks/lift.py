"""2D-to-3D lifting and skeleton action recognition: one table comparing dstformer_cpu with its baselines.

Lifting: each run folder (``hmore train lift`` with configs/lift_cpu.yaml, lift_mlp.yaml, lift_tcn.yaml, and the
same with MotionBERT's 20 x velocity loss, lift_*_vel20.yaml: the same data, steps and batch) is evaluated on held-out
windows: generated motions of identities not seen in training, and the CMU walk cmu_131_02 (training used
cmu_131_01 only), each seen by random virtual cameras with MotionBERT's 2D noise (no masking), COCO-derived H36M-17
input, test-time flip averaging for every model. MPJPE, P-MPJPE and the velocity error (MPJVE) in mm (root-relative,
camera frame). Params, FLOPs per frame (torch's FlopCounterMode on one 27-frame window) and frames/s (batches of 16
windows, this CPU, one thread).

Action (only when the run folders exist): top-1 on the test identities of the generated action set for
``dstformer_action`` (backbone initialised from the lifter) and ``pose_stats_action``.

Usage: python benchmarks/lift.py --runs /tmp/hmore_runs [--clips 256] [--action-cache PKL]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from hmore.lift.data import flip_pair
from hmore.lift.pipeline import load_lifter
from hmore.metrics.pose3d import mpjpe, p_mpjpe, velocity_error
from hmore.train.tasks import build_task, load_task_config

LIFT_RUNS = (("dstformer_cpu", "lift_cpu"), ("tcn_lifter", "lift_tcn"), ("mlp_lifter", "lift_mlp"),
             ("dstformer_cpu, 20 x velocity loss", "lift_cpu_vel20"),
             ("tcn_lifter, 20 x velocity loss", "lift_tcn_vel20"), ("mlp_lifter, 20 x velocity loss", "lift_mlp_vel20"))
ACTION_RUNS = (("dstformer_action (lifter init)", "action_cpu"), ("pose_stats_action", "action_baseline"))


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, *, flip: bool = True, batch: int = 32) -> np.ndarray:
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        y = model(torch.from_numpy(xb)).numpy()
        if flip:
            yf = model(torch.from_numpy(np.ascontiguousarray(flip_pair(xb)[0]))).numpy()
            y = 0.5 * (y + flip_pair(yf)[0])
        out.append(y)
    return np.concatenate(out)


@torch.no_grad()
def cost(model: torch.nn.Module, frames: int = 27) -> tuple[int, float, float]:
    """(parameters, FLOPs per frame, frames per second)."""
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(1, frames, 17, 3)
    with FlopCounterMode(display=False) as fc:
        model(x)
    flops = fc.get_total_flops() / frames
    xb = torch.randn(16, frames, 17, 3)
    model(xb)
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < 3.0:
        model(xb)
        n += 1
    return params, flops, n * 16 * frames / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"), help="folder holding the run folders")
    ap.add_argument("--configs", type=Path, default=Path(__file__).resolve().parents[1] / "configs")
    ap.add_argument("--clips", type=int, default=256, help="held-out windows per set")
    ap.add_argument("--action-cache", default=None, help="the generated action set pickle the action runs used")
    args = ap.parse_args()
    torch.set_num_threads(1)

    cfg = load_task_config("lift", args.configs / "lift_cpu.yaml", [f"data.eval_clips={args.clips}"])
    sets = build_task("lift", cfg).eval_set()
    print("held-out windows: " + ", ".join(f"{k} {v['x'].shape}" for k, v in sets.items()))
    print("| model | gen MPJPE | gen P-MPJPE | gen velocity error | CMU 131_02 MPJPE | CMU 131_02 P-MPJPE | params "
          "| MFLOPs/frame | frames/s |")
    print("|" + "---|" * 9)
    for name, run in LIFT_RUNS:
        path = args.runs / run
        if not path.is_dir():
            print(f"| {name} | (no run folder {path}) |")
            continue
        model = load_lifter(checkpoint=path).float().eval()
        cells = []
        for key in ("gen", "bvh"):
            if key not in sets:
                cells += ["-", "-"] + (["-"] if key == "gen" else [])
                continue
            pred = torch.from_numpy(predict(model, sets[key]["x"]))
            y = torch.from_numpy(sets[key]["y"])
            cells += [f"{1000 * float(mpjpe(pred, y)):.1f}", f"{1000 * float(p_mpjpe(pred.double(), y.double())):.1f}"]
            if key == "gen":
                cells.append(f"{1000 * float(velocity_error(pred, y)):.1f}")
        params, flops, fps = cost(model)
        print(f"| {name} | " + " | ".join(cells) + f" | {params / 1e6:.3f} M | {flops / 1e6:.1f} | {fps:.0f} |")

    rows = []
    for name, run in ACTION_RUNS:
        path = args.runs / run
        if not path.is_dir():
            continue
        over = [f"data.cache={args.action_cache}"] if args.action_cache else []
        acfg = load_task_config("action", args.configs / f"{run}.yaml", over)
        task = build_task("action", acfg)
        from hmore.lift.classify import load_action_model

        am = load_action_model(checkpoint=path)
        rows.append((name, task.evaluate(am.model)["top1"], len(task.dataset().subset("test")),
                     len(task.classes)))
    if rows:
        print()
        print("| action model | top-1 (test identities) | test clips | classes |")
        print("|---|---|---|---|")
        for name, acc, n, k in rows:
            print(f"| {name} | {acc:.3f} | {n} | {k} |")


if __name__ == "__main__":
    main()
