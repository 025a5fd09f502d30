"""How exactly the generator's flow reproduces the next frame, capsule vs Anny bodies (issue 18's goal: Anny's warp
error on textured moving pixels as low as the capsules').

Run: ``.venv/bin/python benchmarks/synth_flow_warp.py [--seeds 8] [--sizes 96x128,192x256]``. For each body model,
size and camera, ``--seeds`` clips (seeds 0..N-1, 2 people running, 4 frames, 2 distractors, shading off) and
:func:`hmore.synth.checks.warp_error` over the people's pixels: the mean |frame_t - frame_t+1 warped by the flow|
(grey levels 0-255) beside the same with zero flow. The same seeds give the same identities, clothes and textures in
both body models; what differs is the body surface (mesh vs ellipsoids) and the soft region borders.
"""

from __future__ import annotations

import argparse

import numpy as np

from hmore.synth.checks import warp_error
from hmore.synth.clip import render_clip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--sizes", default="96x128,192x256")
    p.add_argument("--cameras", default="static,pan")
    p.add_argument("--bodies", default="capsule,anny")
    args = p.parse_args()
    print(f"{'body':8s} {'size':8s} {'camera':7s} {'warp error':>10s} {'zero flow':>10s} {'ratio':>6s}  (mean of "
          f"{args.seeds} clips, grey levels)")
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        for camera in args.cameras.split(","):
            for body in args.bodies.split(","):
                res = []
                for seed in range(args.seeds):
                    clip = render_clip(size=(h, w), num_frames=4, subjects=2, seed=seed, actions=["run"],
                                       camera_motion=camera, distractors=2, body=body)
                    res.append(warp_error(clip, clip.masks[:-1] > 0))
                err, zero = np.mean(res, axis=0)
                print(f"{body:8s} {size:8s} {camera:7s} {err:10.3f} {zero:10.3f} {err / zero:6.3f}")


if __name__ == "__main__":
    main()
