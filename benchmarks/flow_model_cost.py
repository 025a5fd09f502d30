"""Parameters, FLOPs and CPU speed of every registered H-MoRe flow model.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add) on the ``meta`` device: shapes
only, no arithmetic, so even 544x960 costs nothing to count, and attention is counted through PyTorch's math path
(on CPU the fused flash-attention kernel has no FLOP formula and would be missed). ``grid_sample`` lookups, norms
and activations are not counted (small). One subject mask is given, so Psi is included. Models that start from
OpenCV DIS flow get a zero initial flow for the count (DIS is not a torch op; its time is in pairs/s). Speed is
measured as ``hmore flow`` runs the model: only the last iteration is upsampled.

Usage: python benchmarks/flow_model_cost.py [--pattern 'hmore_flow*'] [--repeats 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from hmore.registry import create_model, list_models

# H-MoRe paper (CVPR 2025, arXiv 2504.10676): 5.57 M parameters, 861.5 GFLOPs (resolution not given; we compare
# at 544x960, the size RAFT's FLOPs are usually quoted at).
PAPER = {"hmore_flow": (5.57e6, 861.5e9)}


def count_flops(name: str, h: int, w: int) -> int:
    model = create_model(name).to("meta").eval()
    x = torch.zeros(1, 3, h, w, device="meta")
    masks = torch.zeros(1, h, w, dtype=torch.long, device="meta")
    init = torch.zeros(1, 2, h, w, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, x, masks=masks, num_subjects=1, flow_init=init, all_iterations=False)
    return int(counter.get_total_flops())


def pairs_per_second(name: str, h: int, w: int, repeats: int) -> float:
    torch.manual_seed(0)
    model = create_model(name).eval()
    g = torch.Generator().manual_seed(0)
    img1 = torch.rand(1, 3, h, w, generator=g) * 255
    img2 = torch.roll(img1, shifts=(2, 3), dims=(2, 3))
    masks = torch.zeros(1, h, w, dtype=torch.long)
    masks[:, h // 4: h - 8, w // 3: 2 * w // 3] = 1
    with torch.inference_mode():
        for _ in range(2):
            model(img1, img2, masks=masks, all_iterations=False)
        start = time.perf_counter()
        for _ in range(repeats):
            model(img1, img2, masks=masks, all_iterations=False)
        return repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pattern", default="hmore_flow*")
    parser.add_argument("--repeats", type=int, default=10, help="timed pairs per model (hmore_flow: a third)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; FLOPs per pair incl. all iterations")
    header = (f"{'model':18s} {'iters':>5s} {'params':>9s} {'GFLOPs@192x256':>15s} {'GFLOPs@544x960':>15s} "
              f"{'pairs/s@192x256':>16s}  paper")
    print(header)
    print("-" * len(header))
    for name in list_models(args.pattern):
        model = create_model(name)
        params = sum(p.numel() for p in model.parameters())
        small = count_flops(name, 192, 256) / 1e9
        large = count_flops(name, 544, 960) / 1e9
        reps = max(1, args.repeats // 3) if name == "hmore_flow" else args.repeats
        speed = pairs_per_second(name, 192, 256, reps)
        paper = ""
        if name in PAPER:
            p_params, p_flops = PAPER[name]
            paper = f"{p_params / 1e6:.2f} M, {p_flops / 1e9:.1f} GFLOPs"
        print(f"{name:18s} {model.config.iters:5d} {params / 1e6:8.3f}M {small:15.1f} {large:15.1f} "
              f"{speed:16.2f}  {paper}")


if __name__ == "__main__":
    main()
