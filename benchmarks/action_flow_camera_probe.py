"""Per camera motion, how far each stored flow of a built fine-grained action set is from the generator's, on the
person (the set's mask), in pixels of the crop (README "Downstream", `hmore flow`'s source).

Static camera: world flow (DIS, each H-MoRe key's ``world``) against the stored exact flow, local flow against the
exact local flow. Pan / track: the set stores the exact *optical* flow (camera included), so the first ``--scene N``
clips of each are rendered again and every world flow is compared with the exact *scene* flow (``clip.scene_flow()``,
cropped and quantised as the set stores flows), which is what world flow means.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/action_flow_camera_probe.py runs/action_flow/full24/set
--flow-keys hmore_flow_cpu-3346b99954cd hmore_flow_cpu-3346b99954cd-command-1488de85 --scene 24``
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def _epe(a: np.ndarray, b: np.ndarray, on: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=1)[on].mean())


def main() -> None:
    from hmore.fineaction.data import items, open_set, prepare_item, render_item
    from hmore.flowfeed import base_path, dequantise_flow, flow_path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="a built action set folder")
    p.add_argument("--flow-keys", nargs="+", required=True, help="H-MoRe flow cache folders to compare")
    p.add_argument("--scene", type=int, default=24, help="pan and track clips re-rendered for the scene flow (each)")
    args = p.parse_args()
    cfg = open_set(args.root)
    acc: dict[tuple[str, str, str], list[float]] = {}
    rendered: dict[str, int] = {}
    for it in items(cfg):
        with np.load(base_path(args.root, it.key), allow_pickle=False) as z:
            cam = json.loads(str(z["meta"]))["camera"]
            on = z["mask"][:-1] > 127  # (T-1, c, c): the person at frame t of each pair
            base = {c: dequantise_flow(z[c], cfg.flow_step) for c in ("dis", "exact_world", "exact_local")}
        est = {"dis": {"world": base["dis"]}}
        for key in args.flow_keys:
            with np.load(flow_path(args.root, key, it.key), allow_pickle=False) as z:
                est[key] = {c: dequantise_flow(z[c], cfg.flow_step) for c in ("world", "local")}
        if cam == "static":
            for name, f in est.items():
                acc.setdefault(("static", name, "world vs exact"), []).append(_epe(f["world"], base["exact_world"], on))
                if "local" in f:
                    acc.setdefault(("static", name, "local vs exact local"), []).append(
                        _epe(f["local"], base["exact_local"], on))
            continue
        if rendered.get(cam, 0) >= args.scene:
            continue
        rendered[cam] = rendered.get(cam, 0) + 1
        clip = render_item(cfg, it)
        crop = prepare_item(cfg, it, clip).crop_flow
        scene = dequantise_flow(crop(clip.scene_flow().transpose(0, 3, 1, 2)), cfg.flow_step)
        for name, f in est.items():
            acc.setdefault((cam, name, "world vs exact scene flow"), []).append(_epe(f["world"], scene, on))
    print("on the person, mean end-point error in px of the crop (clips)")
    for (cam, name, what), v in sorted(acc.items()):
        print(f"{cam:7s} {name:48s} {what:26s} {np.mean(v):.3f} ({len(v)})")


if __name__ == "__main__":
    main()
