"""Why a flow passes or fails the skeleton test ("skeleton ok" of ``hmore bench flow``), broken down (issue 13).

Every body pixel is matched to a bone point of the pose track (:func:`hmore.metrics.flow.skeleton_matches`) and
its flow u is tested against that point's displacement k. This script pools the pixels of each set and prints, per
method: the share that passes, the share of each break (angle > 15 deg; too slow |u| < 0.8 |k|; too fast
|u| > 1.2 |k|; moving although the point is at rest), the median |u| / |k|, and the pass rate by bone group (distal:
forearms and shins), by |k| and by the person's height. Real and generated sources are accepted; on generated
clips the exact flow is a row of its own (``exact``), and ``--kp-noise`` adds Gaussian noise to the generator's
keypoints to show what a noisy pose track alone costs the exact flow. The track's own jitter on every clip is
printed too (the RMS second difference of confident joints over sqrt(6): white noise of that sigma gives it).

    OMP_NUM_THREADS=1 python benchmarks/flow_skeleton_breakdown.py --data ../shared/data/video ../shared/data/davis \\
        --pairs 6 --sets moving --cache out/skel_real.npz
    OMP_NUM_THREADS=1 python benchmarks/flow_skeleton_breakdown.py --data robustness:background robustness:small \\
        --clips 3 --pairs 3 --kp-noise 0 1 2

The clips (with MediaPipe's priors for real ones) are cached in ``--cache`` when given, so a second run re-scores
without running the pose estimator again.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from hmore.bench import flow_bench
from hmore.bench.flow_methods import MethodFlow
from hmore.metrics import flow as fm

BONE_GROUPS = {  # COCO17.bones indices
    "torso": (4, 5, 6, 7), "head": (12, 13, 14, 15, 16, 17, 18), "upper arm": (8, 9), "forearm": (10, 11),
    "thigh": (1, 3), "shin": (0, 2),
}
K_BINS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, math.inf)
HEIGHT_BINS = (0.0, 96.0, 160.0, math.inf)
DEFAULT_METHODS = ("hmore_flow_cpu", "hmore_flow_cpu+noref", "hmore_flow_cpu+nocam", "dis", "farneback")


def _save(path: Path, clips: list) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, c in enumerate(clips):
        arrays[f"{i}_meta"] = np.array([c.name, c.set_name, c.level])
        for key in ("frames", "masks", "kp2d", "flow", "camera_flow"):
            val = getattr(c, key)
            if val is not None:
                arrays[f"{i}_{key}"] = val
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _load(path: Path) -> list:
    with np.load(path, allow_pickle=False) as z:
        n = len([k for k in z.files if k.endswith("_meta")])
        out = []
        for i in range(n):
            name, set_name, level = (str(x) for x in z[f"{i}_meta"])
            get = {k: (z[f"{i}_{k}"] if f"{i}_{k}" in z.files else None)
                   for k in ("frames", "masks", "kp2d", "flow", "camera_flow")}
            out.append(flow_bench.BenchClip(name=name, set_name=set_name, level=level, level_value=float(i), **get))
    return out


def track_jitter(kp: np.ndarray, min_confidence: float = 0.5) -> float:
    """RMS second difference of confident joints over sqrt(6) (px): white noise of sigma gives sigma."""
    if kp is None or kp.shape[0] < 3 or kp.shape[1] == 0:
        return math.nan
    acc = kp[2:, ..., :2] - 2 * kp[1:-1, ..., :2] + kp[:-2, ..., :2]  # (T-2, P, 17, 2)
    ok = (kp[2:, ..., 2] > min_confidence) & (kp[1:-1, ..., 2] > min_confidence) & (kp[:-2, ..., 2] > min_confidence)
    if not ok.any():
        return math.nan
    return float(np.sqrt(np.mean(np.sum(acc[ok] ** 2, axis=-1) / 2.0)) / math.sqrt(6.0))


class Pool:
    """Matched pixels of one (set, method), pooled over pairs, with each pair's own consistency."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []
        self.pair_ok: list[float] = []

    def add(self, m: fm.SkeletonMatches | None, height: dict[int, float]) -> None:
        if m is None:
            return
        self.pair_ok.append(float(m.ok.mean()))
        kn = np.linalg.norm(m.bone_disp, axis=1)
        un = np.linalg.norm(m.flow, axis=1)
        self.parts.append(dict(ok=m.ok, angle=m.angle_break, slow=m.slow, fast=m.fast, rest=m.rest_break,
                               moving=m.moving, kn=kn, ratio=np.where(m.moving, un / np.maximum(kn, 1e-9), np.nan),
                               bone=m.bone, height=np.array([height.get(int(s), math.nan) for s in m.subject])
                               if len(m.subject) else np.zeros(0)))

    def cat(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]} if self.parts else {}


def _heights(mask: np.ndarray) -> dict[int, float]:
    out = {}
    for s in np.unique(mask):
        if s == 0:
            continue
        rows = np.nonzero((mask == s).any(axis=1))[0]
        out[int(s)] = float(rows[-1] - rows[0] + 1)
    return out


def _pct(x: np.ndarray) -> str:
    return f"{100 * x.mean():.1f}" if len(x) else "-"


def _table(title: str, cols: list[str], rows: list[tuple[str, list[str]]]) -> None:
    print(f"\n{title}\n| method | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for name, vals in rows:
        print(f"| {name} | " + " | ".join(vals) + " |")


def report(set_name: str, pools: dict[str, Pool]) -> None:
    data = {name: p.cat() for name, p in pools.items() if p.parts}
    if not data:
        return
    print(f"\n### {set_name}")
    rows = []
    for name, d in data.items():
        mv = d["moving"]
        ratio = d["ratio"][mv]
        rows.append((name, [f"{np.mean(pools[name].pair_ok):.3f}", _pct(d["ok"]), _pct(d["angle"]), _pct(d["slow"]),
                            _pct(d["fast"]), _pct(d["rest"]), _pct(d["angle"] & (d["slow"] | d["fast"])),
                            f"{np.nanmedian(ratio):.2f}" if mv.any() else "-", _pct(mv),
                            f"{len(pools[name].pair_ok)} / {len(d['ok'])}"]))
    _table("% of matched body pixels (ok per pair: the bench's figure; the others pooled)",
           ["ok per pair", "ok %", "angle %", "slow %", "fast %", "rest-moving %", "angle & (slow|fast) %",
            "median abs(u)/abs(k)", "moving %", "pairs / pixels"], rows)
    rows = []
    for name, d in data.items():
        vals = []
        for bones in BONE_GROUPS.values():
            sel = np.isin(d["bone"], bones)
            vals.append(f"{_pct(d['ok'][sel])} (s{_pct(d['slow'][sel])} f{_pct(d['fast'][sel])}; {_pct(sel)})")
        rows.append((name, vals))
    _table("ok % by bone group (s: slow %, f: fast %; share of pixels)", list(BONE_GROUPS), rows)
    rows = []
    for name, d in data.items():
        vals = []
        for lo, hi in zip(K_BINS[:-1], K_BINS[1:], strict=True):
            sel = (d["kn"] >= lo) & (d["kn"] < hi)
            vals.append(f"{_pct(d['ok'][sel])} (s{_pct(d['slow'][sel])} f{_pct(d['fast'][sel])}; {_pct(sel)})")
        rows.append((name, vals))
    _table("ok % by bone-point displacement abs(k) in px (s: slow %, f: fast %; share of pixels)",
           [f"{lo:g}-{hi:g}" for lo, hi in zip(K_BINS[:-1], K_BINS[1:], strict=True)], rows)
    rows = []
    for name, d in data.items():
        vals = []
        for lo, hi in zip(HEIGHT_BINS[:-1], HEIGHT_BINS[1:], strict=True):
            sel = (d["height"] >= lo) & (d["height"] < hi)
            vals.append(f"{_pct(d['ok'][sel])} ({_pct(sel)})")
        rows.append((name, vals))
    _table("ok % by person height in px (share of pixels)",
           [f"{lo:g}-{hi:g}" for lo, hi in zip(HEIGHT_BINS[:-1], HEIGHT_BINS[1:], strict=True)], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True, help="real paths and/or generated sets")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--clips", type=int, default=3, help="clips per level of a generated set")
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    ap.add_argument("--sets", nargs="*", default=[], help="keep only sets whose name contains one of these words")
    ap.add_argument("--kp-noise", nargs="*", type=float, default=[],
                    help="generated clips: extra 'exact' rows with this Gaussian noise (px) on every keypoint")
    ap.add_argument("--cache", type=Path, default=None, help="npz of the clips (written once, then read)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    if args.cache is not None and args.cache.is_file():
        clips = _load(args.cache)
    else:
        clips = flow_bench.bench_clips(args.data, pairs=args.pairs, clips=args.clips, progress=False)
        if args.cache is not None:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            _save(args.cache, clips)
    clips = [c for c in clips if c.kp2d is not None and c.kp2d.shape[1] > 0
             and (not args.sets or any(w in c.set_name for w in args.sets))]
    print(f"load {os.getloadavg()[0]:.1f}; {len(clips)} clips, {sum(c.num_pairs for c in clips)} pairs "
          f"({time.time() - t0:.0f} s to load)", flush=True)
    print("\npose-track jitter (px, RMS 2nd difference / sqrt 6, confident joints) per clip:")
    for c in clips:
        print(f"  {c.set_name} | {c.name}: {track_jitter(c.kp2d):.2f} px; people heights "
              + ", ".join(f"{h:.0f}" for h in _heights(c.masks[0]).values()))
    specs = flow_bench.build_methods(args.methods)
    rng = np.random.default_rng(args.seed)
    pools: dict[str, dict[str, Pool]] = {}
    seconds: dict[str, float] = {}
    for clip in clips:
        set_pools = pools.setdefault(clip.set_name, {})
        for spec in specs:
            if spec.method is None:
                continue
            for t in range(clip.num_pairs):
                s0 = time.process_time()
                out: MethodFlow = spec.method(clip.frames[t], clip.frames[t + 1], clip.masks[t],
                                              (clip.kp2d[t], clip.kp2d[t + 1]))
                seconds[spec.name] = seconds.get(spec.name, 0.0) + time.process_time() - s0
                optical = out.world if out.camera is None else out.world + out.camera
                set_pools.setdefault(spec.name, Pool()).add(
                    fm.skeleton_matches(optical, clip.masks[t], clip.kp2d[t], clip.kp2d[t + 1]),
                    _heights(clip.masks[t]))
        if clip.flow is not None:
            for sigma in [0.0, *args.kp_noise]:
                name = "exact" if sigma == 0 else f"exact, keypoints +N(0, {sigma:g} px)"
                for t in range(clip.num_pairs):
                    kp0, kp1 = clip.kp2d[t].copy(), clip.kp2d[t + 1].copy()
                    if sigma > 0:
                        kp0[..., :2] += rng.normal(0, sigma, kp0[..., :2].shape)
                        kp1[..., :2] += rng.normal(0, sigma, kp1[..., :2].shape)
                    set_pools.setdefault(name, Pool()).add(
                        fm.skeleton_matches(clip.flow[t], clip.masks[t], kp0, kp1), _heights(clip.masks[t]))
    for set_name, set_pools in pools.items():
        report(set_name, set_pools)
    print("\nCPU-seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
