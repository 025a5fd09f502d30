"""Accuracy and speed of hmore's real-video priors with the MediaPipe backend, on the shared real data.

Rows:

- ``coco gt-box``: PCK@0.2 on ``keypoints/coco/test_coco.json`` with the ground-truth person box given (pose per crop).
  A joint is correct when its error is below 0.2 x the torso size (mean of the two shoulder-to-opposite-hip
  diagonals; ``sqrt(box area) / 2`` when the torso is not annotated). Only annotated joints (v > 0) count.
- ``coco search``: the same, but people are found without boxes (whole-image search with blanking); predictions are
  matched to ground truth by Hungarian assignment on mean joint distance; unmatched people count as all joints wrong.
- ``ntu two-person``: the whole 72-frame clip. Two people are always in view: detection rate = detected (not
  interpolated) person-frames / (2 T); id switches = times the left/right order of two tracks flips between
  consecutive frames where both are detected, plus tracks beyond the two real people.
- ``vtest``: frames ``--vtest-start`` .. ``+ --vtest-frames`` (stride 1). No ground truth exists: the table gives
  people detected per frame, tracks and their mean length (a fragmented track shows as many short tracks).

Frames per second are per stage (decode, pose, track, masks) from ``extract_priors``' timings; this machine has
2 shared CPU cores.

Usage: python benchmarks/priors.py [--vtest-frames 60] [--vtest-start 0] [--max-side 960]
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from hmore.paths import shared_data
from hmore.priors.pipeline import extract_priors
from hmore.priors.pose import MediaPipePose

LSH, RSH, LHIP, RHIP = 5, 6, 11, 12


def torso_size(gt: np.ndarray, box: np.ndarray) -> float:
    """Normaliser for PCK: mean shoulder-to-opposite-hip diagonal, else half the box's geometric mean side."""
    diags = []
    for a, b in ((LSH, RHIP), (RSH, LHIP)):
        if gt[a, 2] > 0 and gt[b, 2] > 0:
            diags.append(np.linalg.norm(gt[a, :2] - gt[b, :2]))
    return float(np.mean(diags)) if diags else float(np.sqrt(box[2] * box[3]) / 2)


def coco_pck(est: MediaPipePose, *, use_boxes: bool, thr: float = 0.2) -> tuple[float, int, int, float]:
    """(PCK, correct joints, annotated joints, seconds per image)."""
    root = shared_data("keypoints", "coco")
    data = json.loads((root / "test_coco.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        if a.get("num_keypoints", 0) > 0:
            by_image.setdefault(a["image_id"], []).append(a)
    correct = total = 0
    seconds = 0.0
    for img in data["images"]:
        anns = by_image.get(img["id"], [])
        if not anns:
            continue
        frame = cv2.cvtColor(cv2.imread(str(root / img["file_name"])), cv2.COLOR_BGR2RGB)
        gts = [np.asarray(a["keypoints"], np.float64).reshape(17, 3) for a in anns]
        boxes = [np.asarray(a["bbox"], np.float64) for a in anns]  # x, y, w, h
        t0 = time.perf_counter()
        if use_boxes:
            preds = []
            for b in boxes:
                people = est.estimate_people(frame, [np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])], search=False)
                preds.append(people[0].kp if people else None)
        else:
            found = [p.kp for p in est.estimate_people(frame)]
            preds = [None] * len(gts)
            if found:
                cost = np.array([[np.linalg.norm(f[g[:, 2] > 0, :2] - g[g[:, 2] > 0, :2], axis=1).mean()
                                  for f in found] for g in gts])
                for r, c in zip(*linear_sum_assignment(cost)):
                    preds[r] = found[c]
        seconds += time.perf_counter() - t0
        for g, b, p in zip(gts, boxes, preds):
            seen = g[:, 2] > 0
            total += int(seen.sum())
            if p is not None:
                err = np.linalg.norm(p[:, :2] - g[:, :2], axis=1)
                correct += int((seen & (err < thr * torso_size(g, b))).sum())
    n_images = sum(1 for img in data["images"] if by_image.get(img["id"]))
    return correct / max(total, 1), correct, total, seconds / max(n_images, 1)


def ntu_stats(pr) -> tuple[float, int, int]:
    """(detection rate, id switches, tracks) on the two-person clip."""
    det = pr.valid & ~pr.interpolated  # (T, P)
    top2 = np.argsort(-det.sum(0))[:2]
    rate = float(np.minimum(det.sum(1), 2).sum() / (2 * pr.num_frames))
    switches = max(0, pr.num_people - 2)
    if len(top2) == 2:
        a, b = top2
        hip_x = pr.kp2d[:, :, 11:13, 0].mean(-1)  # (T, P)
        both = det[:, a] & det[:, b]
        order = np.sign(hip_x[both, a] - hip_x[both, b])
        switches += int((np.diff(order) != 0).sum())
    return rate, switches, pr.num_people


def fps_cells(pr) -> list[str]:
    return [f"{pr.num_frames / max(pr.timings.get(k, 0.0), 1e-9):.1f}" for k in ("decode", "pose", "track", "masks")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vtest-frames", type=int, default=60)
    ap.add_argument("--vtest-start", type=int, default=0)
    ap.add_argument("--max-side", type=int, default=960)
    args = ap.parse_args()
    rows = []
    with MediaPipePose() as est:
        for use_boxes, name in ((True, "coco gt-box"), (False, "coco search")):
            pck, c, n, spi = coco_pck(est, use_boxes=use_boxes)
            rows.append([name, "4 images", f"PCK@0.2 {pck:.3f} ({c}/{n} joints)", "-", "-",
                         f"{1 / spi:.1f} img/s", "", "", ""])
        video = shared_data("video", "ntu_two_person_sample.avi")
        pr = extract_priors(video, estimator=est, max_side=args.max_side, progress=False)
        rate, switches, tracks = ntu_stats(pr)
        rows.append(["ntu two-person", f"{pr.num_frames} fr", f"det rate {rate:.3f}", f"id sw {switches}",
                     f"tracks {tracks}", *fps_cells(pr)])
        video = shared_data("video", "vtest.avi")
        pr = extract_priors(video, estimator=est, max_side=args.max_side, start=args.vtest_start,
                            end=args.vtest_start + args.vtest_frames, progress=False)
        det = pr.valid & ~pr.interpolated
        lengths = det.sum(0)
        rows.append(["vtest (no GT)", f"fr {args.vtest_start}-{args.vtest_start + pr.num_frames - 1}",
                     f"{det.sum(1).mean():.2f} people/fr", f"tracks {pr.num_people}",
                     f"mean len {lengths.mean() if len(lengths) else 0:.1f}", *fps_cells(pr)])
    header = ["data", "frames", "accuracy", "identity", "tracks", "decode fps", "pose fps", "track fps", "masks fps"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
