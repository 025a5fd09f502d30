"""Small people: the network's second, enlarged pass (hmore.flow.zoom) on generated clips, where the flow is exact.

Every row runs ``hmore flow``'s pipeline (camera compensation, refinement inside people, v_s from the pose) on the
same pairs; only the zoom setting differs. Settings are chosen here, never on the shared real clips:

    OMP_NUM_THREADS=1 python benchmarks/flow_zoom.py --data robustness:small synth-heldout --clips 4 --pairs 3
    OMP_NUM_THREADS=1 python benchmarks/flow_zoom.py --data robustness:small --camera pan --variants off auto auto:nocam

prints, per set, in-mask EPE against the optical flow, EPE against the scene-relative flow, census inside people,
leakage and skeleton consistency, then in-mask EPE per level of each set, and the extra network passes per pair.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from hmore.bench import flow_bench
from hmore.bench.flow_methods import MethodFlow
from hmore.flow.inference import iter_flow, load_flow_model
from hmore.flow.zoom import ZoomConfig

COLUMNS = ("epe_mask", "epe_scene", "photo_census", "leakage", "skeleton")


def _variant(text: str) -> tuple[str, ZoomConfig | None]:
    """``off``, ``auto`` (the default), ``auto:nocam`` (crops not camera-compensated) or
    ``BELOW:MIN_ZOOM[:MAX_MOTION]`` (e.g. ``128:2:16``)."""
    if text == "off":
        return text, None
    if text in ("auto", "auto:nocam"):
        return text, ZoomConfig(camera=text == "auto")
    parts = text.split(":")
    zmin = float(parts[1]) if len(parts) > 1 else 2.0
    return text, ZoomConfig(below=int(parts[0]), min_zoom=zmin, max_zoom=max(3.0, zmin),
                            max_motion=float(parts[2]) if len(parts) > 2 else 0.0)


def _clips(data: list[str], clips: int, pairs: int, camera: str | None) -> list:
    """The sets' clips; ``camera`` re-renders every clip with that camera motion (e.g. small people, panning)."""
    if camera is None:
        return flow_bench.bench_clips(data, clips=clips, pairs=pairs, progress=False)
    from dataclasses import replace

    from hmore.bench.robustness import iter_set

    out = []
    for name in data:
        for spec in iter_set(name, clips=clips):
            spec = replace(spec, name=f"{spec.name} {camera}", kwargs={**spec.kwargs, "camera_motion": camera})
            c = spec.render(num_frames=pairs + 1)
            out.append(flow_bench.BenchClip(name=spec.name, set_name=f"{spec.set_name} ({camera})", level=spec.level,
                                            level_value=spec.level_value, frames=c.frames, masks=c.masks,
                                            kp2d=c.kp2d, flow=c.flow, subject_velocity=c.subject_velocity,
                                            camera_flow=c.camera_flow))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["robustness:small", "synth-heldout"])
    ap.add_argument("--clips", type=int, default=4, help="clips per level of each generated set")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--camera", choices=("static", "pan", "track"), default=None,
                    help="render every clip with this camera motion instead of its set's")
    ap.add_argument("--variants", nargs="+", default=["off", "96:2", "128:2", "192:2"],
                    help="off, auto, auto:nocam, or BELOW:MIN_ZOOM[:MAX_MOTION] (people under BELOW px enlarged by "
                         "clip(BELOW / height, MIN_ZOOM, 3), capped so that their enlarged motion stays within "
                         "MAX_MOTION px)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    net, _ = load_flow_model("hmore_flow_cpu", device="cpu")
    variants = [_variant(v) for v in args.variants]
    clips = _clips(args.data, args.clips, args.pairs, args.camera)
    print(f"load {os.getloadavg()[0]:.1f}; {len(clips)} clips", flush=True)
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    levels: dict[tuple[str, str, str], list[float]] = {}
    seconds: dict[str, float] = {}
    for clip in clips:
        occluded = flow_bench.reference_occlusions(clip)
        for t in range(clip.num_pairs):
            a, b, labels = clip.frames[t], clip.frames[t + 1], clip.masks[t].astype(np.uint8)
            kp = None if clip.kp2d is None else np.stack([clip.kp2d[t], clip.kp2d[t + 1]])
            for name, cfg in variants:
                t0 = time.process_time()
                with torch.inference_mode():
                    pair = next(iter_flow(np.stack([a, b]), model=net, size=max(a.shape[:2]), device="cpu",
                                          masks=np.stack([labels, labels]), keypoints=kp, progress=False,
                                          overlap=False, zoom=cfg if cfg is not None else "off"))
                seconds[name] = seconds.get(name, 0.0) + time.process_time() - t0
                out = MethodFlow(world=pair.world.transpose(1, 2, 0).astype(np.float32),
                                 local=pair.local.transpose(1, 2, 0).astype(np.float32),
                                 camera=None if pair.camera is None else pair.camera.transpose(1, 2, 0))
                m = flow_bench._pair_metrics(clip, t, out, None, occluded[t])
                rows.setdefault((clip.set_name, name), []).append(m)
                levels.setdefault((clip.set_name, clip.name.split()[0], name), []).append(m["epe_mask"])
    n_pairs = sum(c.num_pairs for c in clips)
    for s in dict.fromkeys(k[0] for k in rows):
        print(f"\n{s}\n| zoom | " + " | ".join(COLUMNS) + " | pairs |\n|---|" + "---|" * (len(COLUMNS) + 1))
        for (s2, name), vals in rows.items():
            if s2 == s:
                cols = [np.nanmean([v[c] for v in vals]) if np.isfinite([v[c] for v in vals]).any() else math.nan
                        for c in COLUMNS]
                print(f"| {name} | " + " | ".join(f"{c:.4f}" for c in cols) + f" | {len(vals)} |")
    print("\nin-mask EPE per level")
    for (s, level, name), vals in sorted(levels.items()):
        print(f"  {s} {level} {name}: {np.nanmean(vals):.3f} ({len(vals)} pairs)")
    print("\nCPU-seconds per pair: " + ", ".join(f"{k} {v / n_pairs:.2f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
