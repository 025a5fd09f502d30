"""Accuracy and speed of hmore's real-video priors (MediaPipe backend) on the shared real data.

Sections (``--sections``, comma-separated; all but ``proposals`` by default):

- ``coco``: the four shared COCO images, **no boxes given**. PCK@0.2 over every annotated joint of every person with
  keypoints (a joint is correct when predicted with score > 0 within 0.2 x the torso size: mean shoulder-to-opposite-
  hip diagonal, ``sqrt(box area) / 2`` without one; people are matched to predictions by Hungarian assignment on the
  capped normalised joint error; an unmatched person counts all joints wrong). Person recall and precision at box
  IoU >= 0.5: a prediction's box is its mask's box (keypoint box grown 10% per side without a mask); ground-truth
  people without keypoints (two tiny background figures) are neither to be found nor false positives. Also PCK given
  the ground-truth boxes (``gt-box``), the pose model's ceiling.
- ``proposals``: the ``coco`` no-box row for each person-proposal source of :class:`MediaPipePose` alone and
  combined (OpenCV HOG, the whole-frame segmentation's components, BlazePose's detector on the frame, + tiles,
  + residual pass, + segment components; this hmore only).
- ``davis``: the six DAVIS-2016 sequences, whole clip through ``extract_priors``. Per frame the instance with the best
  IoU against the ground truth (0 when nobody is found). ``IoU`` is over the whole frame. DAVIS masks include what the
  person rides or holds (paragliding harness and lines, kite-surf board and lines, the soapbox cart), which a person
  mask should not cover, so ``box IoU`` restricts both masks to the person's box (the matched instance's seen joints,
  grown by 15% of its height per side). ``person`` sequences (breakdance, dance-twirl, parkour) have person-only masks:
  there the two agree in spirit and ``IoU`` is the person IoU.
- ``tracks``: shared multi-person clips whose people stay in view (counted by eye: NTU two-person 2, SAM2 bedroom 2,
  mmhuman3d handover 2, gait campus gallery 4) and the partial person of the co-tracker stairs clip (1 person, chest
  down: no face ever in view). ``found`` = detected (not interpolated) person-frames / (people x frames), capped at the
  people in view per frame; ``extra tracks`` = tracks beyond the people in view (splits and false people);
  ``longest/person`` = frames covered by the longest track of each of the people, averaged, / frames; ``face joints``
  = person-frames reporting a nose, eye or ear (must be 0 on the stairs clip). On the NTU clip, ``id sw`` counts
  left/right order flips of its two main tracks.
- ``speed``: the whole command, ``hmore priors CLIP -o OUT --no-preview --force`` in a fresh process (decode to
  priors.npz, model loading included), on 720p clips: SAM2 football juggling (1280x720, 1 person), NTU two-person
  and SAM2 bedroom (2 people) scaled to 1280x720 here. With ``--baseline-src DIR`` (a ``src`` folder of another
  hmore, e.g. ``git archive 918ac97 src | tar -x -C runs/base``) the same clips run through that one, alternating, in
  the same run; the load average is printed beside, and frames per CPU-second (user + system time of the command,
  all its threads) as a figure less bent by other jobs on a shared machine.

Before/after: run this file with ``PYTHONPATH`` pointing at the other ``src`` (it uses only APIs both have), e.g.
``PYTHONPATH=runs/base/src python benchmarks/priors.py --sections coco,davis,tracks``.

Usage: python benchmarks/priors.py [--sections coco,davis,tracks,speed] [--baseline-src DIR] [--speed-frames 90]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from hmore.paths import shared_data
from hmore.priors.pipeline import extract_priors, load_priors
from hmore.priors.pose import MediaPipePose
from hmore.priors.tracking import box_iou

LSH, RSH, LHIP, RHIP = 5, 6, 11, 12
PERSON_ONLY = ("breakdance", "dance-twirl", "parkour")
DAVIS = ("breakdance", "dance-twirl", "parkour", "paragliding-launch", "kite-surf", "soapbox")
TRACK_CLIPS = (("ntu_two_person_sample.avi", 2), ("sam2_bedroom_kids_jumping.mp4", 2),
               ("mmhuman3d_two_people_handover.mp4", 2), ("gait_campus_gallery.mp4", 4),
               ("cotracker_backpack_stairs.mp4", 1))


def torso_size(gt: np.ndarray, box: np.ndarray) -> float:
    """Normaliser for PCK: mean shoulder-to-opposite-hip diagonal, else half the box's geometric mean side."""
    diags = [np.linalg.norm(gt[a, :2] - gt[b, :2]) for a, b in ((LSH, RHIP), (RSH, LHIP)) if gt[a, 2] > 0 < gt[b, 2]]
    return float(np.mean(diags)) if diags else float(np.sqrt(box[2] * box[3]) / 2)


def person_box(p, shape: tuple[int, int]) -> np.ndarray:
    """A prediction's box: its mask's box, else its seen joints' box grown by 10% per side."""
    if getattr(p, "mask", None) is not None and (p.mask > 0.5).any():
        ys, xs = np.nonzero(p.mask > 0.5)
        return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
    seen = p.kp[:, 2] > 0
    xy = p.kp[seen, :2] if seen.sum() >= 2 else p.kp[:, :2]
    x0, y0 = xy.min(0)
    x1, y1 = xy.max(0)
    g = 0.1 * max(x1 - x0, y1 - y0)
    return np.array([x0 - g, y0 - g, x1 + g, y1 + g], np.float64)


def joint_errors(pred: np.ndarray, gt: np.ndarray, norm: float) -> np.ndarray:
    """Normalised error of each joint (inf where the prediction has no joint)."""
    err = np.linalg.norm(pred[:, :2] - gt[:, :2], axis=1) / max(norm, 1e-6)
    return np.where(pred[:, 2] > 0, err, np.inf)


def coco_section(
    rows: list[list[str]], est_kwargs: dict | None = None, label: str = "coco", gt_box: bool = True
) -> None:
    root = shared_data("keypoints", "coco")
    data = json.loads((root / "test_coco.json").read_text())
    stats = {"gt": [0, 0], "search": [0, 0]}
    tp = n_gt = n_pred = 0
    seconds = 0.0
    with MediaPipePose(**(est_kwargs or {})) as est:
        for img in data["images"]:
            anns = [a for a in data["annotations"] if a["image_id"] == img["id"]]
            kanns = [a for a in anns if a.get("num_keypoints", 0) > 0]
            frame = cv2.cvtColor(cv2.imread(str(root / img["file_name"])), cv2.COLOR_BGR2RGB)
            gts = [np.asarray(a["keypoints"], np.float64).reshape(17, 3) for a in kanns]
            boxes = [np.asarray(a["bbox"], np.float64) for a in kanns]  # x, y, w, h
            norms = [torso_size(g, b) for g, b in zip(gts, boxes)]
            # given the ground-truth boxes
            for g, b, n in zip(gts, boxes, norms) if gt_box else ():
                people = est.estimate_people(frame, [np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])], search=False)
                seen = g[:, 2] > 0
                stats["gt"][1] += int(seen.sum())
                if people:
                    stats["gt"][0] += int((seen & (joint_errors(people[0].kp, g, n) < 0.2)).sum())
            # no boxes
            t0 = time.perf_counter()
            found = est.estimate_people(frame)
            seconds += time.perf_counter() - t0
            preds = [None] * len(gts)
            if found and gts:
                cost = np.array([[np.minimum(joint_errors(f.kp, g, n)[g[:, 2] > 0], 1.0).mean() for f in found]
                                 for g, n in zip(gts, norms)])
                for r, c in zip(*linear_sum_assignment(cost)):
                    if cost[r, c] < 1.0:
                        preds[r] = found[c].kp
            for g, n, p in zip(gts, norms, preds):
                seen = g[:, 2] > 0
                stats["search"][1] += int(seen.sum())
                if p is not None:
                    stats["search"][0] += int((seen & (joint_errors(p, g, n) < 0.2)).sum())
            # detection: recall / precision at IoU 0.5, people without keypoints ignored
            pboxes = [person_box(f, frame.shape[:2]) for f in found]
            gbox = np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in boxes]).reshape(-1, 4)
            ibox = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                             for a in anns if a.get("num_keypoints", 0) == 0]).reshape(-1, 4)
            matched = set()
            if pboxes and len(gbox):
                iou = box_iou(gbox, np.stack(pboxes))
                for r, c in zip(*linear_sum_assignment(-iou)):
                    if iou[r, c] >= 0.5:
                        matched.add(c)
            ignored = {c for c, pb in enumerate(pboxes) if c not in matched and len(ibox)
                       and box_iou(pb[None], ibox).max() >= 0.5}
            tp += len(matched)
            n_gt += len(gbox)
            n_pred += len(pboxes) - len(ignored)
    n_img = len(data["images"])
    for key, name in ((("gt", f"{label} gt-box"),) if gt_box else ()) + (("search", f"{label} no boxes"),):
        c, n = stats[key]
        extra = f"recall {tp / max(n_gt, 1):.3f} ({tp}/{n_gt}), precision {tp / max(n_pred, 1):.3f}" \
            if key == "search" else "-"
        rows.append([name, f"{n_img} images", f"PCK@0.2 {c / max(n, 1):.3f} ({c}/{n})", extra,
                     f"{n_img / seconds:.2f} img/s" if key == "search" else ""])


PROPOSALS = (
    ("hog", dict(detector="hog", tiles=(), residual=False, components=False)),
    ("segments only", dict(detector="none", tiles=(), residual=False, components=True)),
    ("blazepose frame", dict(tiles=(), residual=False, components=False)),
    ("+ tiles", dict(residual=False, components=False)),
    ("+ tiles + residual", dict(components=False)),
    ("+ tiles + segments", dict(residual=False)),
    ("all (default)", dict()),
)


def proposals_section(rows: list[list[str]]) -> None:
    """Each person-proposal source alone and combined, on the COCO images (no boxes given)."""
    for name, kwargs in PROPOSALS:
        coco_section(rows, kwargs, label=f"proposals {name}", gt_box=False)


def davis_section(rows: list[list[str]], max_side: int) -> None:
    all_iou, person_iou, box_ious = [], [], []
    with MediaPipePose() as est:
        for seq in DAVIS:
            video = shared_data("davis", f"{seq}.mp4")
            gt = np.load(shared_data("davis", f"{seq}_masks.npz"))["masks"] > 0  # (T, 480, 854)
            t0 = time.perf_counter()
            pr = extract_priors(video, estimator=est, max_side=max_side, progress=False)
            dt = time.perf_counter() - t0
            ious, bious = [], []
            for t in range(min(pr.num_frames, len(gt))):
                g = gt[t]
                m = pr.masks[t]
                if m.shape != g.shape:
                    m = cv2.resize(m, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_NEAREST)
                best, best_id = 0.0, 0
                for i in np.unique(m[m > 0]):
                    pm = m == i
                    iou = (pm & g).sum() / max((pm | g).sum(), 1)
                    if iou > best:
                        best, best_id = float(iou), int(i)
                ious.append(best)
                if best_id == 0:
                    bious.append(0.0)
                    continue
                p = int(np.flatnonzero(pr.track_ids == best_id)[0])
                kp = pr.kp2d[t, p].astype(np.float64)
                kp[:, 0] *= g.shape[1] / pr.size[0]
                kp[:, 1] *= g.shape[0] / pr.size[1]
                seen = kp[:, 2] > 0
                if seen.sum() < 2:
                    bious.append(0.0)
                    continue
                (x0, y0), (x1, y1) = kp[seen, :2].min(0), kp[seen, :2].max(0)
                grow = 0.15 * max(y1 - y0, x1 - x0)
                region = np.zeros_like(g)
                region[max(0, int(y0 - grow)):int(y1 + grow) + 1, max(0, int(x0 - grow)):int(x1 + grow) + 1] = True
                pm, gg = (m == best_id) & region, g & region
                bious.append(float((pm & gg).sum() / max((pm | gg).sum(), 1)))
            all_iou += ious
            box_ious += bious
            if seq in PERSON_ONLY:
                person_iou += ious
            rows.append([f"davis {seq}", f"{len(ious)} fr", f"IoU {np.mean(ious):.3f}", f"box IoU {np.mean(bious):.3f}",
                         f"{len(ious) / dt:.1f} fr/s"])
    rows.append(["davis all", f"{len(all_iou)} fr", f"IoU {np.mean(all_iou):.3f}", f"box IoU {np.mean(box_ious):.3f}",
                 f"person seqs IoU {np.mean(person_iou):.3f}"])


def tracks_section(rows: list[list[str]], max_side: int) -> None:
    with MediaPipePose() as est:
        for clip, people in TRACK_CLIPS:
            video = shared_data("video", clip)
            t0 = time.perf_counter()
            pr = extract_priors(video, estimator=est, max_side=max_side, progress=False)
            dt = time.perf_counter() - t0
            det = pr.valid & ~pr.interpolated  # (T, P)
            T = pr.num_frames
            found = float(np.minimum(det.sum(1), people).sum() / (people * T))
            lengths = np.sort(pr.valid.sum(0))[::-1]
            longest = float(np.pad(lengths, (0, people))[:people].mean() / T)
            face = int(((pr.kp2d[..., :5, 2] > 0).any(-1) & det).sum())
            extra = f"extra tracks {pr.num_people - people}"
            if clip.startswith("ntu"):
                a, b = np.argsort(-det.sum(0))[:2] if pr.num_people >= 2 else (0, 0)
                both = det[:, a] & det[:, b]
                hip_x = pr.kp2d[:, :, 11:13, 0].mean(-1)
                flips = int((np.diff(np.sign(hip_x[both, a] - hip_x[both, b])) != 0).sum()) if a != b else 0
                extra += f", id sw {flips}"
            rows.append([clip.rsplit(".", 1)[0], f"{T} fr, {people} people", f"found {found:.3f}", extra,
                         f"longest/person {longest:.2f}, face joints {face}, {T / dt:.1f} fr/s"])


def _make_720p(src: Path, dst: Path, frames: int) -> Path:
    from hmore.io.video import iter_frames, probe_video, write_video

    info = probe_video(src)
    out = (cv2.resize(f, (1280, 720), interpolation=cv2.INTER_AREA if f.shape[1] > 1280 else cv2.INTER_LINEAR)
           for f in iter_frames(src, end=frames))
    return write_video(dst, out, fps=info.fps, crf=18)


def speed_section(rows: list[list[str]], frames: int, baseline_src: Path | None) -> None:
    here = Path(__file__).resolve().parents[1] / "src"
    tmp = Path(tempfile.mkdtemp(prefix="hmore_priors_speed_"))
    clips = [("juggling 1p", _make_720p(shared_data("video", "sam2_football_juggling.mp4"), tmp / "juggle.mp4",
                                        frames)),
             ("ntu 2p", _make_720p(shared_data("video", "ntu_two_person_sample.avi"), tmp / "ntu.mp4", frames)),
             ("bedroom 2p", _make_720p(shared_data("video", "sam2_bedroom_kids_jumping.mp4"), tmp / "bed.mp4",
                                       frames))]
    sources = [("this", here)] + ([("baseline", baseline_src.resolve())] if baseline_src else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name, clip in clips:
        row = [f"speed {name}", f"{min(frames, 10**6)} fr 1280x720"]
        for label, src in sources:
            out = tmp / f"out_{label}_{clip.stem}"
            env["PYTHONPATH"] = str(src)
            load = os.getloadavg()[0]
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hmore", "priors", str(clip), "-o", str(out), "--no-preview",
                            "--force"], env=env, check=True, capture_output=True)
            dt = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            pr = load_priors(out / "priors.npz")
            row.append(f"{label}: {pr.num_frames / dt:.2f} fps wall, {pr.num_frames / cpu:.2f} per CPU-s, "
                       f"{pr.num_people} tracks (load {load:.1f})")
        rows.append(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="coco,davis,tracks,speed")
    ap.add_argument("--max-side", type=int, default=960)
    ap.add_argument("--speed-frames", type=int, default=90)
    ap.add_argument("--baseline-src", type=Path, default=None, help="src folder of the hmore to compare speed with")
    args = ap.parse_args()
    sections = args.sections.split(",")
    rows: list[list[str]] = []
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    if "coco" in sections:
        coco_section(rows)
    if "proposals" in sections:
        proposals_section(rows)
    if "davis" in sections:
        davis_section(rows, args.max_side)
    if "tracks" in sections:
        tracks_section(rows, args.max_side)
    if "speed" in sections:
        speed_section(rows, args.speed_frames, args.baseline_src)
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(width)]
    for r in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
