"""Why a flow passes or fails the skeleton test ("skeleton ok" of ``hmore bench flow``), broken down (issue 13).

Every body pixel is matched to a bone point of the pose track (:func:`hmore.metrics.flow.skeleton_matches`) and
its flow u is tested against that point's displacement k. This script pools the pixels of each set and prints, per
method: the share that passes, the share of each break (angle > 15 deg; too slow |u| < 0.8 |k|; too fast
|u| > 1.2 |k|; moving although the point is at rest), the median |u| / |k|, and the pass rate by bone group (distal:
forearms and shins), by |k| and by the person's height. Real and generated sources are accepted; on generated
clips the exact flow is a row of its own (``exact``). ``--variants`` scores other pose tracks / matching rules too
(noise added to the track, the track smoothed in time, nearest-point matching, the generator's keypoints), with the
mean distance |u - k| beside the pass rate. The track's own jitter on every clip is printed too (the RMS second
difference of confident joints over sqrt(6): white noise of that sigma gives it), and with ``--pose mediapipe`` its
error against the generator's keypoints.

    OMP_NUM_THREADS=1 python benchmarks/flow_skeleton_breakdown.py --data ../shared/data/video ../shared/data/davis \
        --pairs 6 --variants paper nearest smooth nearest+smooth --cache out/skel_real.npz
    OMP_NUM_THREADS=1 python benchmarks/flow_skeleton_breakdown.py --data robustness:background robustness:small \
        robustness:motion --clips 2 --pairs 6 --pose mediapipe --cache out/skel_gen_mp6.npz \
        --variants paper nearest smooth nearest+smooth generator generator+noise=0.5 generator+noise=1

The second renders generated clips at 640x480, gives them the pose track a real clip gets (MediaPipe through
hmore.priors, then scaled to 256x192 with the frames) and scores the exact flow with it: the metric's noise floor.
``--variants generator`` first gives the full breakdown against the generator's exact keypoints instead.

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
from hmore.io.atomic import save_npz_atomic
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
        if c.name in TRUE_KP:
            arrays[f"{i}_kptrue"] = TRUE_KP[c.name]
    save_npz_atomic(path, **arrays)


def _load(path: Path) -> list:
    with np.load(path, allow_pickle=False) as z:
        n = len([k for k in z.files if k.endswith("_meta")])
        out = []
        for i in range(n):
            name, set_name, level = (str(x) for x in z[f"{i}_meta"])
            get = {k: (z[f"{i}_{k}"] if f"{i}_{k}" in z.files else None)
                   for k in ("frames", "masks", "kp2d", "flow", "camera_flow")}
            out.append(flow_bench.BenchClip(name=name, set_name=set_name, level=level, level_value=float(i), **get))
            if f"{i}_kptrue" in z.files:
                TRUE_KP[name] = z[f"{i}_kptrue"]
    return out


def mediapipe_track(clips_hi: list, size: tuple[int, int]) -> list:
    """Generated clips rendered large, given the pose track real clips get: MediaPipe (hmore.priors, as the bench
    runs it on a real video) on the large frames, everything then scaled to ``size`` (H, W) as the bench scales a
    real video: frames by area, labels nearest, flows by area and by the scale. The generator's exact keypoints are
    kept in ``level`` -> see :data:`TRUE_KP`; the clip's ``kp2d`` is MediaPipe's, matched to the generator's people."""
    import tempfile

    import cv2

    out = []
    h, w = size
    for c in clips_hi:
        sx, sy = w / c.frames.shape[2], h / c.frames.shape[1]
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in c.frames])
        masks = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in c.masks])
        scale = np.float32([sx, sy])

        def flows(f: np.ndarray | None, scale: np.ndarray = scale) -> np.ndarray | None:
            if f is None:
                return None
            return np.stack([cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) * scale for x in f]).astype(np.float32)

        kp_true = c.kp2d.copy()
        kp_true[..., 0] *= sx
        kp_true[..., 1] *= sy
        with tempfile.TemporaryDirectory() as tmp:
            for i, f in enumerate(c.frames):
                cv2.imwrite(str(Path(tmp) / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            _, kp, _ = flow_bench._priors_for(Path(tmp), frames, priors_side=max(c.frames.shape[1:3]))
        kp = flow_bench._match_people(kp, masks) if kp is not None else np.zeros_like(kp_true)
        clip = flow_bench.BenchClip(name=c.name, set_name=c.set_name, level=c.level, level_value=c.level_value,
                                    frames=frames, masks=masks, kp2d=kp, flow=flows(c.flow),
                                    camera_flow=flows(c.camera_flow))
        TRUE_KP[c.name] = kp_true
        out.append(clip)
    return out


TRUE_KP: dict[str, np.ndarray] = {}  # generated clips given MediaPipe's track: the generator's own keypoints


def track_jitter(kp: np.ndarray, min_confidence: float = 0.5) -> float:
    """RMS second difference of confident joints over sqrt(6) (px): white noise of sigma gives sigma."""
    if kp is None or kp.shape[0] < 3 or kp.shape[1] == 0:
        return math.nan
    acc = kp[2:, ..., :2] - 2 * kp[1:-1, ..., :2] + kp[:-2, ..., :2]  # (T-2, P, 17, 2)
    ok = (kp[2:, ..., 2] > min_confidence) & (kp[1:-1, ..., 2] > min_confidence) & (kp[:-2, ..., 2] > min_confidence)
    if not ok.any():
        return math.nan
    return float(np.sqrt(np.mean(np.sum(acc[ok] ** 2, axis=-1) / 2.0)) / math.sqrt(6.0))


VARIANT_HELP = (
    "paper (the bench's metric on the clip's track), nearest (each pixel matched to the nearest joint point with "
    "confidence > 0.5, not weighted by confidence), smooth (the track smoothed in time: Savitzky-Golay, 5 frames, "
    "quadratic, per joint confident in every frame), nearest+smooth, k0=X (paper with the rest threshold k0 = X px), "
    "noise=S (Gaussian noise of S px added to every joint), generator (generated clips given MediaPipe's track: the "
    "generator's exact keypoints instead)")


def smooth_track(kp: np.ndarray, window: int = 5, order: int = 2, min_confidence: float = 0.5) -> np.ndarray:
    """(T, P, 17, 3) track with each joint's x, y smoothed in time (Savitzky-Golay) where it is confident in
    every frame (others unchanged); fewer than ``window`` frames: unchanged."""
    from scipy.signal import savgol_filter

    out = kp.copy()
    if kp.shape[0] < window:
        return out
    steady = (kp[..., 2] > min_confidence).all(axis=0)  # (P, 17)
    smoothed = savgol_filter(kp[..., :2], window, order, axis=0, mode="interp")
    out[..., :2] = np.where(steady[None, ..., None], smoothed, kp[..., :2])
    return out


def variant_track(variant: str, kp: np.ndarray, kp_true: np.ndarray | None,
                  rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The (T, P, 17, 3) track and the rest threshold k0 a variant scores with (see :data:`VARIANT_HELP`)."""
    k0 = 0.5
    track = kp.astype(np.float32).copy()
    for part in variant.split("+"):
        if part == "paper":
            pass
        elif part == "generator":
            if kp_true is None:
                raise SystemExit("variant generator needs generated clips with --pose mediapipe")
            track = kp_true.astype(np.float32).copy()
        elif part == "nearest":
            track[..., 2] = np.where(track[..., 2] > 0.5, 0.9, 0.0)
        elif part == "smooth":
            track = smooth_track(track)
        elif part.startswith("k0="):
            k0 = float(part[3:])
        elif part.startswith("noise="):
            track[..., :2] += rng.normal(0, float(part[6:]), track[..., :2].shape).astype(np.float32)
        else:
            raise SystemExit(f"unknown variant {part!r}: {VARIANT_HELP}")
    return track, k0


class Pool:
    """Matched pixels of one (set, method), pooled over pairs, with each pair's own consistency."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []
        self.pair_ok: list[float] = []
        self.pair_dist: list[float] = []  # mean |u - k| over the pair's matched pixels

    def add(self, m: fm.SkeletonMatches | None, height: dict[int, float]) -> None:
        if m is None:
            return
        self.pair_ok.append(float(m.ok.mean()))
        self.pair_dist.append(float(np.linalg.norm(m.flow - m.bone_disp, axis=1).mean()))
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
    ap.add_argument("--variants", nargs="+", default=["paper"],
                    help="pose track / metric variants scored (the first gets the full breakdown): " + VARIANT_HELP)
    ap.add_argument("--pose", choices=("generator", "mediapipe"), default="generator",
                    help="generated clips: the generator's exact keypoints, or MediaPipe's on the clip rendered at "
                         "--pose-size and scaled to 256x192 (the pose track real clips get)")
    ap.add_argument("--pose-size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    ap.add_argument("--cache", type=Path, default=None, help="npz of the clips (written once, then read)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    if args.cache is not None and args.cache.is_file():
        clips = _load(args.cache)
    else:
        if args.pose == "mediapipe":
            hi = [c for d in args.data for c in flow_bench.generated_clips(d, clips=args.clips, pairs=args.pairs,
                                                                           size=tuple(args.pose_size))]
            clips = mediapipe_track(hi, (192, 256))
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
        extra = ""
        if c.name in TRUE_KP:  # the track's error against the generator's keypoints, positions and displacements
            kt, ok = TRUE_KP[c.name], (c.kp2d[..., 2] > 0.5) & (TRUE_KP[c.name][..., 2] > 0)
            pos = np.linalg.norm(c.kp2d[..., :2] - kt[..., :2], axis=-1)[ok]
            dk = (c.kp2d[1:, ..., :2] - c.kp2d[:-1, ..., :2]) - (kt[1:, ..., :2] - kt[:-1, ..., :2])
            okd = ok[1:] & ok[:-1]
            extra = (f"; MediaPipe vs generator: joint error median {np.median(pos):.2f} px, displacement error "
                     f"RMS {np.sqrt(np.mean(np.sum(dk[okd] ** 2, -1))):.2f} px (true displacement RMS "
                     f"{np.sqrt(np.mean(np.sum((kt[1:, ..., :2] - kt[:-1, ..., :2])[okd] ** 2, -1))):.2f} px), "
                     f"{ok.mean():.0%} joints confident" if ok.any() else "; MediaPipe found nobody")
        print(f"  {c.set_name} | {c.name}: {track_jitter(c.kp2d):.2f} px; people heights "
              + ", ".join(f"{h:.0f}" for h in _heights(c.masks[0]).values()) + extra)
    specs = flow_bench.build_methods(args.methods)
    rng = np.random.default_rng(args.seed)
    variants = args.variants
    pools: dict[tuple[str, str], dict[str, Pool]] = {}  # (set, variant) -> flow name -> pool
    epes: dict[tuple[str, str], list[float]] = {}  # (set, flow name) -> in-mask EPE per pair (generated clips)
    seconds: dict[str, float] = {}
    per_clip: dict[str, dict[str, float]] = {}  # clip -> flow name -> ok per pair (first variant)
    for clip in clips:
        flows: dict[str, list[np.ndarray]] = {}
        for spec in specs:
            if spec.method is None:
                continue
            for t in range(clip.num_pairs):
                s0 = time.process_time()
                out: MethodFlow = spec.method(clip.frames[t], clip.frames[t + 1], clip.masks[t],
                                              (clip.kp2d[t], clip.kp2d[t + 1]))
                seconds[spec.name] = seconds.get(spec.name, 0.0) + time.process_time() - s0
                flows.setdefault(spec.name, []).append(out.world if out.camera is None else out.world + out.camera)
        if clip.flow is not None:
            flows["exact"] = list(clip.flow)
            for name, fl in flows.items():
                epes.setdefault((clip.set_name, name), []).extend(
                    fm.epe(f, g, m) for f, g, m in zip(fl, clip.flow, clip.masks, strict=False))
        for variant in variants:
            if variant == "generator" and clip.name not in TRUE_KP:
                continue
            track, k0 = variant_track(variant, clip.kp2d, TRUE_KP.get(clip.name), rng)
            set_pools = pools.setdefault((clip.set_name, variant), {})
            for name, fl in flows.items():
                before = len(set_pools.setdefault(name, Pool()).pair_ok)
                for t in range(clip.num_pairs):
                    set_pools[name].add(
                        fm.skeleton_matches(fl[t], clip.masks[t], track[t], track[t + 1], min_displacement=k0),
                        _heights(clip.masks[t]))
                if variant == variants[0] and len(set_pools[name].pair_ok) > before:
                    per_clip.setdefault(f"{clip.set_name} | {clip.name}", {})[name] = float(
                        np.mean(set_pools[name].pair_ok[before:]))
    for (set_name, variant), set_pools in pools.items():
        if variant == variants[0]:
            report(f"{set_name}, track: {variant}", set_pools)
    if per_clip:
        names = list(dict.fromkeys(n for d in per_clip.values() for n in d))
        print(f"\nskeleton ok per clip (track: {variants[0]})\n| clip | " + " | ".join(names) + " |\n|---|"
              + "---|" * len(names))
        for clip_name, d in per_clip.items():
            print(f"| {clip_name} | " + " | ".join(f"{d[n]:.3f}" if n in d else "-" for n in names) + " |")
    for set_name in dict.fromkeys(k[0] for k in pools):
        names = list(dict.fromkeys(n for (s2, _), ps in pools.items() if s2 == set_name for n in ps))
        have = [v for v in variants if (set_name, v) in pools]
        has_epe = any((set_name, n) in epes for n in names)
        print(f"\n{set_name}: skeleton ok per pair, then mean distance abs(u - k) px, by pose track / metric variant"
              + (" (and in-mask EPE px against the exact flow)" if has_epe else "")
              + "\n| flow | " + " | ".join(f"ok {v}" for v in have) + " | "
              + " | ".join(f"abs(u-k) {v}" for v in have) + (" | in-mask EPE |" if has_epe else " |")
              + "\n|---|" + "---|" * (2 * len(have) + int(has_epe)))
        for n in names:
            vals = [f"{np.mean(pools[(set_name, v)][n].pair_ok):.3f}" if n in pools[(set_name, v)]
                    and pools[(set_name, v)][n].pair_ok else "-" for v in have]
            vals += [f"{np.mean(pools[(set_name, v)][n].pair_dist):.3f}" if n in pools[(set_name, v)]
                     and pools[(set_name, v)][n].pair_dist else "-" for v in have]
            if has_epe:
                vals.append(f"{np.nanmean(epes[(set_name, n)]):.3f}" if (set_name, n) in epes else "-")
            print(f"| {n} | " + " | ".join(vals) + " |")
    print("\nCPU-seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
