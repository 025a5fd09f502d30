"""The concepts report (``hmore concepts show``): what the concepts of an input are and what they mean.

``index.html`` holds:

* the **concept timeline under the video**: a strip of frames (the video's, or the skeleton drawn for BVH and
  keypoint inputs) above a bar coloured by concept, and a preview video with the skeleton, the bar and a cursor;
* each of the input's main concepts with its **nearest segments** in a labelled reference set (held-out Bandai-Namco
  takes and NW-UCLA sequences), as small skeleton animations with their labels;
* a **concept-by-label table** (frames of each concept per reference action) and, for Bandai's action x style
  takes, whether each concept follows the action or the style.

The reference comes from the concepts data cache (``--reference DIR``, ``skeleton_*.npz``) or, when none is given,
from the shared data folder through :mod:`hmore.data`; without either, the report shows the input only.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hmore.concepts.encode import EncodedSequence, MotionInput, concept_segments, encode_sequences
from hmore.concepts.motion import MODEL_FPS, SkeletonSequence, facing_rotation, load_sequences
from hmore.errors import InputError
from hmore.io.atomic import write_json_atomic
from hmore.skeleton import H36M17

log = logging.getLogger(__name__)


def concept_color(k: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour for concept ``k`` (golden-angle hues)."""
    hue = int((k * 137.508) % 360) // 2  # OpenCV hue is 0-179
    hsv = np.array([[[hue, 200 if k % 2 else 255, 230 if k % 3 else 190]]], np.uint8)
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def skeleton_frames(joints: np.ndarray, *, size: int = 96, yaw_deg: float = 30.0) -> np.ndarray:
    """(T, size, size, 3) drawings of a y-up (T, 17, 3) motion: root-relative, turned to face the viewer (at the
    middle frame) and then by ``yaw_deg``, orthographic, scaled to the motion's extent."""
    from hmore.report.draw import draw_skeleton

    j = np.asarray(joints, np.float64)
    rel = j - j[:, :1]
    yaw = math.radians(yaw_deg)
    turn = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    p = rel @ (turn @ facing_rotation(j[len(j) // 2])).T
    extent = max(float(np.abs(p[..., :2]).max()), 0.3)
    s = 0.45 * size / extent
    out = np.empty((len(j), size, size, 3), np.uint8)
    for t in range(len(j)):
        xy = np.stack([p[t, :, 0] * s + size / 2, -p[t, :, 1] * s + size / 2, np.ones(17)], axis=-1)
        out[t] = draw_skeleton(np.full((size, size, 3), 255, np.uint8), xy, layout=H36M17,
                               colors=[(40, 90, 200)], thickness=max(1, size // 64))
    return out


def timeline_bar(ids: np.ndarray, *, width: int, height: int = 22, cursor: int | None = None) -> np.ndarray:
    """(height, width, 3) bar: one colour per concept along time, concept ids written where a run is wide
    enough, an optional black cursor at frame ``cursor``."""
    ids = np.asarray(ids)
    t = max(1, len(ids))
    bar = np.full((height, width, 3), 255, np.uint8)
    for k, s, e in concept_segments(ids):
        x0, x1 = int(round(s * width / t)), max(int(round(e * width / t)), int(round(s * width / t)) + 1)
        bar[:, x0:x1] = concept_color(k)
        if x1 - x0 >= 14:
            cv2.putText(bar, str(k), (x0 + 2, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    if cursor is not None:
        x = int(round((cursor + 0.5) * width / t))
        cv2.line(bar, (x, 0), (x, height - 1), (0, 0, 0), 2)
    return bar


def _video_frames(motion: MotionInput, count: int, max_side: int = 240) -> list[np.ndarray] | None:
    if motion.video is None:
        return None
    from hmore.io.video import iter_frames

    frames = list(iter_frames(motion.video, max_side=max_side))
    if not frames:
        return None
    idx = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [frames[i] for i in idx]


def timeline_strip(motion: MotionInput, ids_src: np.ndarray, *, thumbs: int = 8, thumb: int = 120) -> np.ndarray:
    """Frames (the video's, or the skeleton) at ``thumbs`` evenly spaced times above the concept bar."""
    pics = _video_frames(motion, thumbs)
    if pics is None:
        model_idx = np.linspace(0, len(motion.joints) - 1, thumbs).round().astype(int)
        sk = skeleton_frames(motion.joints, size=thumb)
        pics = [sk[i] for i in model_idx]
    pics = [cv2.resize(p, (max(1, round(p.shape[1] * thumb / p.shape[0])), thumb), interpolation=cv2.INTER_AREA)
            for p in pics]
    row = np.concatenate(pics, axis=1)
    bar = timeline_bar(ids_src, width=row.shape[1], height=24)
    return np.concatenate([row, np.full((4, row.shape[1], 3), 255, np.uint8), bar], axis=0)


def preview_frames(motion: MotionInput, ids_model: np.ndarray, *, panel: int = 240):
    """Frames of the preview video at the model's rate: the input's frame (video) with its 2D skeleton, or the 3D
    skeleton; the concept bar with a cursor below and the current concept written on top."""
    from hmore.report.draw import draw_skeleton, label

    t = len(motion.joints)
    sk = skeleton_frames(motion.joints, size=panel)
    video = None
    if motion.video is not None:
        from hmore.io.video import iter_frames

        video = list(iter_frames(motion.video, max_side=panel * 2))
    src_of_model = np.clip(np.round(np.arange(t) / MODEL_FPS * motion.source_fps).astype(int), 0,
                           motion.source_frames - 1)
    for i in range(t):
        pics = [sk[i]]
        if video is not None and len(video):
            f = video[min(src_of_model[i], len(video) - 1)]
            if motion.kp2d is not None and motion.size is not None:
                kp = motion.kp2d[min(src_of_model[i], len(motion.kp2d) - 1)].astype(np.float64).copy()
                kp[:, :2] *= f.shape[1] / motion.size[0]
                f = draw_skeleton(f, kp, layout=H36M17, threshold=0.05)
            f = cv2.resize(f, (max(2, round(f.shape[1] * panel / f.shape[0])), panel), interpolation=cv2.INTER_AREA)
            pics.insert(0, f)
        row = np.concatenate(pics, axis=1)
        bar = timeline_bar(ids_model, width=row.shape[1], cursor=i)
        frame = np.concatenate([label(row, f"concept {int(ids_model[i])}  t={i / MODEL_FPS:.1f}s"), bar], axis=0)
        yield np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), constant_values=255)


# ---- reference set -----------------------------------------------------------------------------------------------
def reference_sequences(cache: str | Path | None = None, *, max_per_source: int = 120) -> list[SkeletonSequence]:
    """Labelled held-out sequences for nearest segments and the concept-by-label table: the test splits of Bandai
    and NW-UCLA from a concepts data cache, or read from the shared data (Bandai: up to ``max_per_source`` held-out
    takes); [] when neither is there."""
    seqs: list[SkeletonSequence] = []
    if cache is not None:
        for src in ("bandai", "nw_ucla"):
            path = Path(cache) / f"skeleton_{src}.npz"
            if path.is_file():
                seqs += [s for s in load_sequences(path) if s.split == "test"]
    else:
        from hmore.concepts.motion import bandai_sequences, nw_ucla_sequences
        from hmore.data import bandai

        try:
            held = [t for t in bandai.load_index() if bandai.is_held_out(t)]
            step = max(1, len(held) // max_per_source)
            seqs += bandai_sequences(takes=held[::step][:max_per_source])
        except InputError as exc:
            log.info("no Bandai reference: %s", exc)
        try:
            seqs += [s for s in nw_ucla_sequences() if s.split == "test"]
        except InputError as exc:
            log.info("no NW-UCLA reference: %s", exc)
    by_src: dict[str, list[SkeletonSequence]] = {}
    for s in seqs:
        by_src.setdefault(s.source, []).append(s)
    out = []
    for group in by_src.values():
        step = max(1, len(group) // max_per_source)
        out += group[::step][:max_per_source]
    return out


@dataclass(frozen=True)
class Neighbour:
    """A reference segment near a concept: sequence index, centre frame, cosine similarity."""

    sequence: int
    frame: int
    similarity: float


def nearest_segments(codebook: np.ndarray, encoded: Sequence[EncodedSequence], concepts: Sequence[int], *,
                     per_concept: int = 3, segment: int = 4) -> dict[int, list[Neighbour]]:
    """For each concept, the reference segments whose encoder token is most similar (cosine) to its concept vector,
    at most one per sequence."""
    cb = codebook / np.linalg.norm(codebook, axis=1, keepdims=True).clip(1e-9)
    out: dict[int, list[Neighbour]] = {}
    cand = []
    for i, e in enumerate(encoded):
        frames = np.arange(segment // 2, len(e.ids), segment)
        if len(frames) == 0:
            frames = np.array([len(e.ids) // 2])
        lat = e.latent[frames]
        lat = lat / np.linalg.norm(lat, axis=1, keepdims=True).clip(1e-9)
        cand.append((i, frames, lat))
    for k in concepts:
        best: list[Neighbour] = []
        for i, frames, lat in cand:
            sim = lat @ cb[k]
            j = int(np.argmax(sim))
            best.append(Neighbour(sequence=i, frame=int(frames[j]), similarity=float(sim[j])))
        out[int(k)] = sorted(best, key=lambda n: -n.similarity)[:per_concept]
    return out


# ---- the report --------------------------------------------------------------------------------------------------
def show_concepts(motion: MotionInput, encoded: EncodedSequence, out_dir: str | Path, *, model: torch.nn.Module,
                  reference: Sequence[SkeletonSequence] = (), max_concepts: int = 8, per_concept: int = 3,
                  title: str = "motion concepts", command: str | None = None) -> Path:
    """Write the report (see the module docstring) into ``out_dir``; returns ``index.html``."""
    from hmore.concepts.evaluate import concept_kinds
    from hmore.io.video import write_video
    from hmore.metrics.concepts import contingency
    from hmore.report.draw import hstack_panels, write_png
    from hmore.report.html import Report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids_src = encoded.ids[motion.source_to_model()]
    segs = concept_segments(encoded.ids)
    frames_per = {}
    for k, s, e in segs:
        frames_per[k] = frames_per.get(k, 0) + (e - s)
    main = [k for k, _ in sorted(frames_per.items(), key=lambda kv: -kv[1])][:max_concepts]

    rep = Report(title, intro=f"{motion.kind} input, {motion.source_frames} frames at {motion.source_fps:g} fps; "
                              f"{len(frames_per)} distinct concepts (of {model.config.codebook_size}); a concept "
                              f"covers {model.config.segment} frames at {MODEL_FPS:g} fps "
                              f"({model.config.segment / MODEL_FPS:.2f} s).")
    if command:
        rep.add_code(command)
    rep.add_section("Concept timeline", "Frames above, one colour per concept below (concept ids written where there "
                                        "is room).")
    write_png(out / "timeline.png", timeline_strip(motion, ids_src))
    rep.add_figure(out / "timeline.png", "concept timeline under the input")
    mp4 = write_video(out / "preview.mp4", preview_frames(motion, encoded.ids), MODEL_FPS)
    rep.add_figure(mp4, "preview: input, 3D skeleton, concept bar with the cursor")
    rep.add_table([[k, f"{frames_per[k] / MODEL_FPS:.2f}", sum(1 for c, _, _ in segs if c == k)] for k in main],
                  header=["concept", "seconds", "runs"])

    if reference:
        enc_ref = encode_sequences(model, [s.joints for s in reference], has_root=[s.has_root for s in reference])
        ids = np.concatenate([e.ids for e in enc_ref])
        action = np.concatenate([[f"{s.source}:{s.action}"] * s.num_frames for s in reference])
        table, cu, yu = contingency(ids, action)
        top = np.argsort(-table.sum(axis=0))[:8]
        rows = []
        for k in main:
            r = np.flatnonzero(cu == k)
            counts = table[r[0]] if len(r) else np.zeros(len(yu), np.int64)
            total = int(counts.sum())
            best = str(yu[counts.argmax()]) if total else "-"
            rows.append([k, total, best, *[f"{100 * counts[j] / max(total, 1):.0f}%" for j in top]])
        rep.add_section("Concept by label", f"Reference: {len(reference)} held-out labelled sequences. Share of each "
                                            "concept's reference frames per action (the 8 most frequent actions).")
        rep.add_table(rows, header=["concept", "ref. frames", "most frequent", *[str(yu[j]) for j in top]])
        bandai_rows = [i for i, s in enumerate(reference) if s.source == "bandai" and s.style]
        if bandai_rows:
            bid = np.concatenate([enc_ref[i].ids for i in bandai_rows])
            b_act = np.concatenate([[reference[i].action] * reference[i].num_frames for i in bandai_rows])
            b_sty = np.concatenate([[reference[i].style] * reference[i].num_frames for i in bandai_rows])
            kinds = {d["concept"]: d for d in concept_kinds(bid, b_act, b_sty, min_frames=10)}
            krows = [[k, kinds[k]["kind"], kinds[k]["action"], f"{kinds[k]['action_share']:.2f}", kinds[k]["style"],
                      f"{kinds[k]['style_share']:.2f}"] for k in main if k in kinds]
            if krows:
                rep.add_text("Action or style (Bandai-Namco's takes cross actions with styles): a concept follows the "
                             "action when its most frequent action's share, relative to chance, beats its most "
                             "frequent style's.")
                rep.add_table(krows, header=["concept", "kind", "action", "share", "style", "share"])
        near = nearest_segments(model.codebook("motion").detach().cpu().numpy(), enc_ref, main,
                                per_concept=per_concept, segment=model.config.segment)
        rep.add_section("Nearest segments", "For each concept, the reference segments whose encoder output is "
                                            "closest to the concept vector (one per sequence), as skeleton "
                                            "animations of the surrounding window.")
        w = model.config.window
        for k in main:
            clips, titles = [], []
            for nb in near[k]:
                s = reference[nb.sequence]
                a = max(0, min(nb.frame - w // 2, s.num_frames - w))
                clips.append(skeleton_frames(s.joints[a : a + w], size=144))
                titles.append(f"{s.action}/{s.source} {nb.similarity:.2f}")
            if not clips:
                continue
            n = max(len(c) for c in clips)
            frames = (hstack_panels([c[min(t, len(c) - 1)] for c in clips], titles) for t in range(n))
            path = write_video(out / f"concept_{k:03d}.mp4", frames, MODEL_FPS)
            rep.add_figure(path, f"concept {k}: " + "; ".join(titles))
    else:
        rep.add_text("No labelled reference set was found (give --reference DIR, or put the shared data in place): "
                     "nearest segments and the concept-by-label table are left out.")
    write_json_atomic(out / "concepts.json", concepts_record(motion, encoded))
    return rep.save(out / "index.html")


def concepts_record(motion: MotionInput, encoded: EncodedSequence) -> dict[str, Any]:
    """The JSON summary of an encoded input: per input frame ids and the runs with times."""
    ids_src = encoded.ids[motion.source_to_model()]
    return {
        "kind": motion.kind, "source_fps": motion.source_fps, "source_frames": motion.source_frames,
        "model_fps": MODEL_FPS, "ids": [int(v) for v in ids_src],
        "segments": [{"concept": k, "start_s": round(s / MODEL_FPS, 3), "end_s": round(e / MODEL_FPS, 3)}
                     for k, s, e in concept_segments(encoded.ids)],
        "info": json.loads(json.dumps(motion.info, default=str)),
    }
