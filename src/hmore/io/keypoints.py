"""2D keypoint files from other tools, read into one :class:`KeypointSequence` (COCO-17 pixels + scores).

Formats (picked from the path and content by :func:`read_keypoints`):

- COCO results JSON: a list of ``{"image_id", "keypoints": [x, y, s] * 17, "score"}``.
- COCO ground-truth annotation JSON: ``{"images", "annotations", ...}`` with ``v`` in {0, 1, 2} (score 1 if v > 0).
- AlphaPose JSON: a COCO-results-like list with ``"image_id": "12.jpg"``, ``"box"`` and, with pose tracking, ``"idx"``;
  Halpe-26/136 and COCO-WholeBody-133 keep their first 17 (COCO) joints.
- OpenPose JSON folder (``*_keypoints.json`` per frame) or one such file: BODY_25 and COCO-18 map to COCO-17.
- pyskl pickles: ``{"split", "annotations": [...]}``, a list of annotations or one annotation dict with
  ``keypoint (M, T, V, 2|3)`` and ``keypoint_score (M, T, V)``; read with :mod:`hmore.io.safe_pickle` (cannot run code).
- hmore ``priors.npz`` (``kp2d (T, P, 17, 3)``, ``track_ids``, ...), or any ``.npz``/``.npy`` holding ``(T, 17, 3)``
  or ``(T, P, 17, 3)``.

Frames are never dropped: frame numbers found in the file (image ids like ``"12.jpg"``, OpenPose's 12-digit counter)
place each detection at its frame, and frames without detection stay as empty slots (``valid`` False). Files whose
people carry no track ids are tracked with :mod:`hmore.priors.tracking` (``track=False`` keeps the file's order).
"""

from __future__ import annotations

import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmore.errors import InputError
from hmore.io.jsonfile import read_json
from hmore.io.safe_pickle import load_pickle_safely
from hmore.io.video import natural_key
from hmore.skeleton import BLAZEPOSE33, convert

logger = logging.getLogger(__name__)

# Source layouts: joint count and the indices that give the 17 COCO joints in COCO order
# (nose, l/r eye, l/r ear, l/r shoulder, l/r elbow, l/r wrist, l/r hip, l/r knee, l/r ankle).
_FIRST17 = tuple(range(17))
LAYOUT_TO_COCO17: dict[str, tuple[int, tuple[int, ...] | None]] = {
    "coco17": (17, _FIRST17),
    # OpenPose COCO-18: 0 nose, 1 neck, 2-4 right arm, 5-7 left arm, 8-10 right leg, 11-13 left leg,
    # 14/15 right/left eye, 16/17 right/left ear
    "coco18": (18, (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)),
    # OpenPose BODY_25: as COCO-18 but 8 is mid-hip, legs at 9-14, eyes 15/16, ears 17/18, feet 19-24
    "body25": (25, (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)),
    "halpe26": (26, _FIRST17),  # AlphaPose Halpe: COCO-17 first, then head, neck, hip, feet
    "wholebody133": (133, _FIRST17),  # COCO-WholeBody: body first, then feet, face, hands
    "halpe136": (136, _FIRST17),
    "blazepose33": (33, None),  # through hmore.skeleton.convert
}
_BY_COUNT = {n: name for name, (n, _) in LAYOUT_TO_COCO17.items()}


@dataclass(frozen=True)
class KeypointSequence:
    """People's 2D keypoints over a clip, in COCO-17 order and pixels of the source images.

    Attributes:
        kp2d: ``(T, P, 17, 3)`` float32 x, y, score (score 0 for joints not seen; zeros where ``valid`` is False).
        valid: ``(T, P)`` bool, the person is present in the frame.
        track_ids: ``(P,)`` int64 person ids (from the file, or given by the tracker).
        frame_index: ``(T,)`` int64 frame numbers of the source (e.g. from image ids), ``0..T-1`` if unknown.
        image_size: ``(width, height)`` of the source frames, or None when the file does not say.
        fps: frames per second, or None when the file does not say.
        source: the format read, e.g. ``"coco_results"``, ``"openpose"``, ``"hmore_priors"``.
        path: the file or folder read.
        interpolated: ``(T, P)`` bool, filled in by interpolation (hmore priors files), else all False.
        tracked: whether the ids come from hmore's tracker rather than the file.
    """

    kp2d: np.ndarray
    valid: np.ndarray
    track_ids: np.ndarray
    frame_index: np.ndarray
    image_size: tuple[int, int] | None
    fps: float | None
    source: str
    path: Path
    interpolated: np.ndarray
    tracked: bool = False

    @property
    def num_frames(self) -> int:
        return int(self.kp2d.shape[0])

    @property
    def num_people(self) -> int:
        return int(self.kp2d.shape[1])


def to_coco17(kp: np.ndarray, *, layout: str | None = None, where: str = "keypoints") -> np.ndarray:
    """Map keypoints ``(..., J, 3)`` of a known layout to COCO-17 ``(..., 17, 3)``.

    Args:
        kp: keypoints with joints on axis -2 and x, y, score last.
        layout: source layout name (see ``LAYOUT_TO_COCO17``); None guesses it from the joint count.
        where: what to name in error messages (a file).

    Raises:
        InputError: the joint count fits no known layout, or not the given one.
    """
    kp = np.asarray(kp, np.float32)
    n = kp.shape[-2]
    if layout is None:
        if n not in _BY_COUNT:
            known = ", ".join(f"{name} ({k})" for name, (k, _) in LAYOUT_TO_COCO17.items())
            raise InputError(f"{where}: found {n} joints per person; expected one of {known}")
        layout = _BY_COUNT[n]
    key = layout.lower().replace("-", "").replace("_", "")
    if key not in LAYOUT_TO_COCO17:
        raise InputError(f"unknown keypoint layout {layout!r}; known: {', '.join(LAYOUT_TO_COCO17)}")
    expected, index = LAYOUT_TO_COCO17[key]
    if n != expected:
        raise InputError(f"{where}: found {n} joints per person, expected {expected} for layout {key}")
    if index is None:
        return convert(kp, BLAZEPOSE33, "coco17", has_score=True).astype(np.float32)
    return kp[..., list(index), :].copy()


MAX_COORDINATE = 1e6  # pixels: larger keypoint coordinates are not image positions (and overflow float32 maths)


def check_coordinates(xy: np.ndarray, where: str) -> None:
    """:class:`InputError` unless every keypoint coordinate is finite and within ``MAX_COORDINATE`` pixels."""
    xy = np.asarray(xy)
    if not np.isfinite(xy).all():
        raise InputError(f"{where}: keypoints contain NaN or inf")
    largest = float(np.abs(xy).max()) if xy.size else 0.0
    if largest > MAX_COORDINATE:
        raise InputError(f"{where}: keypoint coordinates reach {largest:.3g}, beyond {MAX_COORDINATE:.0e} pixels: "
                         "these are not pixel positions")


def _flat_to_joints(values: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(values, np.float64).ravel()
    except (ValueError, TypeError):
        raise InputError(f"{where}: keypoints must be a flat list of numbers (x, y, score per joint)") from None
    if arr.size % 3:
        raise InputError(f"{where}: {arr.size} keypoint values is not a multiple of 3 (x, y, score per joint)")
    joints = arr.reshape(-1, 3)
    check_coordinates(joints, where)
    return joints


def _frame_number(image_id: Any) -> int | None:
    """The frame number in an image id: ``12`` -> 12, ``"000012.jpg"`` -> 12; None if there is none."""
    if isinstance(image_id, (int, np.integer)) and not isinstance(image_id, bool):
        return int(image_id)
    if isinstance(image_id, str):
        nums = re.findall(r"\d+", Path(image_id).stem)
        if nums:
            return int(nums[-1])
    return None


def _frame_slots(ids: list[Any]) -> tuple[dict[Any, int], np.ndarray]:
    """Map image ids to frame slots: by frame number with the gaps kept when ids look like frame numbers, else by
    sorted order. Returns ``(id -> slot, frame_index (T,))``."""
    uniq = list(dict.fromkeys(ids))
    nums = [_frame_number(i) for i in uniq]
    if uniq and all(n is not None for n in nums) and len(set(nums)) == len(uniq):
        lo = 0 if min(nums) <= 4 * len(uniq) else min(nums)  # video frame counters start at 0 or 1
        span = max(nums) - lo + 1
        if span <= 4 * len(uniq) + 8:  # dense enough to be a frame counter: keep the empty frames between
            return {i: n - lo for i, n in zip(uniq, nums)}, np.arange(lo, lo + span, dtype=np.int64)
        order = sorted(range(len(uniq)), key=lambda k: nums[k])
        return {uniq[k]: s for s, k in enumerate(order)}, np.asarray([nums[k] for k in order], np.int64)
    order = sorted(range(len(uniq)), key=lambda k: natural_key(str(uniq[k])))
    return {uniq[k]: s for s, k in enumerate(order)}, np.arange(len(uniq), dtype=np.int64)


def _assemble(
    per_frame: list[list[tuple[np.ndarray, int | None]]],
    *,
    frame_index: np.ndarray,
    layout: str | None,
    where: str,
    track: bool,
    **meta: Any,
) -> KeypointSequence:
    """Build a sequence from per-frame ``(joints (J, 3), track id or None)`` lists."""
    T = len(per_frame)
    joints = [kp for frame in per_frame for kp, _ in frame]
    counts = {kp.shape[0] for kp in joints}
    if len(counts) > 1:
        raise InputError(f"{where}: people have different joint counts {sorted(counts)}")
    coco = [to_coco17(kp, layout=layout, where=where) for kp in joints]
    it = iter(coco)
    frames = [[(next(it), tid) for _, tid in frame] for frame in per_frame]
    has_ids = joints and all(tid is not None and tid >= 0 for frame in per_frame for _, tid in frame)
    if has_ids:
        ids = sorted({tid for frame in frames for _, tid in frame})
        col = {tid: p for p, tid in enumerate(ids)}
        kp2d = np.zeros((T, len(ids), 17, 3), np.float32)
        valid = np.zeros((T, len(ids)), bool)
        for t, frame in enumerate(frames):
            for kp, tid in frame:
                if valid[t, col[tid]]:
                    raise InputError(f"{where}: track id {tid} appears twice in frame {int(frame_index[t])}")
                kp2d[t, col[tid]] = kp
                valid[t, col[tid]] = True
        return KeypointSequence(kp2d=kp2d, valid=valid, track_ids=np.asarray(ids, np.int64), frame_index=frame_index,
                                interpolated=np.zeros_like(valid), tracked=False, **meta)
    if track:
        from hmore.priors.tracking import TrackerConfig
        from hmore.priors.tracking import track as run_tracker

        tr = run_tracker([[kp for kp, _ in frame] for frame in frames], config=TrackerConfig(max_interp_gap=0))
        return KeypointSequence(kp2d=tr.kp2d, valid=tr.valid, track_ids=tr.track_ids, frame_index=frame_index,
                                interpolated=np.zeros_like(tr.valid), tracked=True, **meta)
    P = max((len(f) for f in frames), default=0)
    kp2d = np.zeros((T, P, 17, 3), np.float32)
    valid = np.zeros((T, P), bool)
    for t, frame in enumerate(frames):
        for p, (kp, _) in enumerate(frame):
            kp2d[t, p], valid[t, p] = kp, True
    return KeypointSequence(kp2d=kp2d, valid=valid, track_ids=np.arange(P, dtype=np.int64), frame_index=frame_index,
                            interpolated=np.zeros_like(valid), tracked=False, **meta)


def _load_json(path: Path) -> Any:
    return read_json(path, what="keypoint file")


def _read_result_list(path: Path, data: list, *, layout: str | None, track: bool,
                      clip: int | str | None = None) -> KeypointSequence:
    """COCO results or AlphaPose: a list of per-person dicts."""
    for k, d in enumerate(data):
        if not isinstance(d, dict) or "keypoints" not in d or "image_id" not in d:
            raise InputError(f"{path}: entry {k} is not a detection with 'image_id' and 'keypoints'")
        if not isinstance(d["image_id"], (int, str)) or isinstance(d["image_id"], bool):
            raise InputError(f"{path}: entry {k}: image_id must be a number or a string, got "
                             f"{type(d['image_id']).__name__} {d['image_id']!r}"[:200])
    videos = [_video_of(d["image_id"]) for d in data]
    if len(set(videos)) > 1:
        names = list(dict.fromkeys(videos))
        chosen = names[_choose(names, clip, path, "video")]
        data = [d for d, v in zip(data, videos) if v == chosen]
    is_alphapose = any("box" in d or "idx" in d for d in data) or any(isinstance(d["image_id"], str) for d in data)
    slots, frame_index = _frame_slots([d["image_id"] for d in data])
    per_frame: list[list[tuple[np.ndarray, int | None]]] = [[] for _ in frame_index]
    for k, d in enumerate(data):
        tid = d.get("idx", d.get("track_id"))
        if isinstance(tid, list):  # AlphaPose can write [id]
            tid = tid[0] if tid else None
        tid = int(tid) if isinstance(tid, (int, float)) and not isinstance(tid, bool) else None
        per_frame[slots[d["image_id"]]].append((_flat_to_joints(d["keypoints"], f"{path} entry {k}"), tid))
    return _assemble(per_frame, frame_index=frame_index, layout=layout, where=str(path), track=track,
                     image_size=None, fps=None, source="alphapose" if is_alphapose else "coco_results", path=path)


def _read_coco_gt(path: Path, data: dict, *, layout: str | None, track: bool,
                  clip: int | str | None = None) -> KeypointSequence:
    images = data.get("images")
    anns = data.get("annotations")
    if not isinstance(images, list) or not isinstance(anns, list):
        raise InputError(f"{path}: a COCO annotation file needs 'images' and 'annotations' lists")
    for k, img in enumerate(images):
        if not isinstance(img, dict) or not isinstance(img.get("id"), (int, str)) or isinstance(img["id"], bool):
            raise InputError(f"{path}: image {k} needs an 'id' that is a number or a string")
    if not all(isinstance(a, dict) for a in anns):
        raise InputError(f"{path}: every annotation must be an object")
    videos = [str(img["vid_id"]) if "vid_id" in img else _video_of(img.get("file_name", "")) for img in images]
    if len(set(videos)) > 1:  # PoseTrack: one file, several videos: take the one asked for
        names = list(dict.fromkeys(videos))
        chosen = names[_choose(names, clip, path, "video")]
        images = [img for img, v in zip(images, videos) if v == chosen]
        keep = {img["id"] for img in images}
        anns = [a for a in anns if a.get("image_id") in keep or not isinstance(a.get("image_id"), (int, str))]
    by_id = {img["id"]: img for img in images}
    order = sorted(by_id, key=lambda i: natural_key(str(by_id[i].get("file_name", i))))
    slot = {img_id: t for t, img_id in enumerate(order)}
    per_frame: list[list[tuple[np.ndarray, int | None]]] = [[] for _ in order]
    for k, a in enumerate(anns):
        if "keypoints" not in a:
            continue
        if not isinstance(a.get("image_id"), (int, str)) or a.get("image_id") not in slot:
            raise InputError(f"{path}: annotation {k} refers to unknown image id {a.get('image_id')!r}")
        if a.get("num_keypoints", 1) == 0:
            continue
        kp = _flat_to_joints(a["keypoints"], f"{path} annotation {k}").copy()
        seen = kp[:, 2] > 0
        kp[:, 2] = seen.astype(np.float64)  # visibility flag 1/2 -> score 1, 0 -> 0
        kp[~seen, :2] = 0
        tid = a.get("track_id")
        per_frame[slot[a["image_id"]]].append((kp, int(tid) if tid is not None else None))
    first = by_id[order[0]] if order else {}
    size = None
    if "width" in first and "height" in first:
        try:
            size = (int(first["width"]), int(first["height"]))
        except (TypeError, ValueError):
            raise InputError(f"{path}: image width and height must be numbers, got {first['width']!r} and "
                             f"{first['height']!r}") from None
        if size[0] <= 0 or size[1] <= 0:
            raise InputError(f"{path}: image size must be positive, got {size[0]}x{size[1]}")
    return _assemble(per_frame, frame_index=np.arange(len(order), dtype=np.int64), layout=layout, where=str(path),
                     track=track, image_size=size, fps=None, source="coco_annotations", path=path)


_OPENPOSE_NUM = re.compile(r"(\d+)_keypoints$")


def _read_openpose(path: Path, *, layout: str | None, track: bool) -> KeypointSequence:
    files = [path] if path.is_file() else sorted(path.glob("*_keypoints.json"), key=lambda p: natural_key(p.name))
    if not files:
        raise InputError(f"{path}: no OpenPose '*_keypoints.json' files")
    nums = [_OPENPOSE_NUM.search(f.stem) for f in files]
    if all(nums) and len({int(m.group(1)) for m in nums}) == len(files):
        numbers = [int(m.group(1)) for m in nums]
        lo = min(numbers)
        slot_of = [n - lo for n in numbers]
        frame_index = np.arange(lo, max(numbers) + 1, dtype=np.int64)  # missing files stay as empty frames
    else:
        slot_of = list(range(len(files)))
        frame_index = np.arange(len(files), dtype=np.int64)
    per_frame: list[list[tuple[np.ndarray, int | None]]] = [[] for _ in frame_index]
    for f, s in zip(files, slot_of):
        data = _load_json(f)
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            raise InputError(f"{f}: not an OpenPose keypoint file (no 'people' list)")
        for k, person in enumerate(data["people"]):
            if "pose_keypoints_2d" not in person:
                raise InputError(f"{f}: person {k} has no 'pose_keypoints_2d'")
            pid = person.get("person_id", -1)
            pid = pid[0] if isinstance(pid, list) and pid else pid
            tid = int(pid) if isinstance(pid, (int, float)) and pid >= 0 else None
            per_frame[s].append((_flat_to_joints(person["pose_keypoints_2d"], f"{f} person {k}"), tid))
    return _assemble(per_frame, frame_index=frame_index, layout=layout, where=str(path), track=track,
                     image_size=None, fps=None, source="openpose", path=path)


def pyskl_keypoints(annotation: dict, where: str, *, joints: int | None = None) -> np.ndarray:
    """An annotation's ``keypoint`` (M, T, V, 2|3) with ``keypoint_score`` joined -> (M, T, V, 3) float32, checked.

    ``joints`` (e.g. 17) requires that many joints; a missing score counts as 1.
    """
    kp = np.asarray(annotation["keypoint"], np.float32)
    if kp.ndim != 4 or kp.shape[-1] not in (2, 3) or (joints is not None and kp.shape[2] != joints):
        v = "V" if joints is None else str(joints)
        raise InputError(f"{where}: 'keypoint' must be (M, T, {v}, 2 or 3), got {kp.shape}")
    if kp.shape[-1] == 2:
        score = annotation.get("keypoint_score")
        score = np.ones(kp.shape[:3], np.float32) if score is None else np.asarray(score, np.float32)
        if score.shape != kp.shape[:3]:
            raise InputError(f"{where}: 'keypoint_score' is {score.shape}, expected {kp.shape[:3]}")
        kp = np.concatenate([kp, score[..., None]], axis=-1)
    if kp.shape[1] == 0:
        raise InputError(f"{where}: no frames (keypoint shape {kp.shape})")
    check_coordinates(kp[..., :2], where)
    if not np.isfinite(kp[..., 2]).all():
        raise InputError(f"{where}: keypoint scores contain NaN or inf")
    return kp


def _pyskl_annotations(path: Path) -> list[dict]:
    data = load_pickle_safely(path)
    if isinstance(data, dict) and "annotations" in data:
        anns = data["annotations"]
    elif isinstance(data, dict) and "keypoint" in data:
        anns = [data]
    elif isinstance(data, list):
        anns = data
    else:
        raise InputError(f"{path}: a pyskl pickle holds a dict with 'annotations', a list of them, or one annotation")
    if not all(isinstance(a, dict) and "keypoint" in a for a in anns):
        raise InputError(f"{path}: pyskl annotations need a 'keypoint' array")
    return anns


def read_pyskl(path: str | Path, *, layout: str | None = None,
               annotations: list[dict] | None = None) -> list[KeypointSequence]:
    """Every clip of a pyskl pickle (``keypoint (M, T, V, 2|3)``, ``keypoint_score (M, T, V)``, ``img_shape``), or
    of ``annotations`` already read from it."""
    path = Path(path)
    if annotations is None and not path.is_file():
        raise InputError(f"no such file: {path}")
    out = []
    for k, a in enumerate(_pyskl_annotations(path) if annotations is None else annotations):
        where = f"{path} clip {a.get('frame_dir', k)}"
        kp = pyskl_keypoints(a, where)
        coco = to_coco17(kp, layout=layout, where=where).transpose(1, 0, 2, 3)  # (M, T, 17, 3) -> (T, M, 17, 3)
        valid = (coco[..., 2] > 0).any(-1) | (np.abs(coco[..., :2]).sum((-1, -2)) > 0)  # (T, M)
        coco[~valid] = 0
        shape = a.get("img_shape") or a.get("original_shape")
        try:
            size = (int(shape[1]), int(shape[0])) if shape is not None and len(shape) >= 2 else None  # (h, w) -> (w, h)
        except (TypeError, ValueError):
            raise InputError(f"{where}: 'img_shape' must be (h, w) integers, got {shape!r}"[:300]) from None
        out.append(KeypointSequence(kp2d=coco, valid=valid, track_ids=np.arange(coco.shape[1], dtype=np.int64),
                                    frame_index=np.arange(coco.shape[0], dtype=np.int64), image_size=size, fps=None,
                                    source="pyskl", path=path, interpolated=np.zeros_like(valid)))
    return out


def _read_npz(path: Path, *, layout: str | None) -> KeypointSequence:
    try:
        if path.suffix.lower() == ".npy":
            arrays = {"kp2d": np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable numpy file ({str(exc).splitlines()[0]})") from None
    key = next((k for k in ("kp2d", "keypoints", "kp") if k in arrays), None)
    if key is None:
        raise InputError(f"{path}: no 'kp2d' array (found: {', '.join(sorted(arrays)) or 'nothing'})")
    kp = np.asarray(arrays[key], np.float32)
    if kp.ndim == 3:
        kp = kp[:, None]  # (T, J, 3) -> (T, 1, J, 3)
    if kp.ndim != 4 or kp.shape[-1] != 3:
        raise InputError(f"{path}: '{key}' must be (T, P, J, 3) or (T, J, 3) with x, y, score; got {kp.shape}")
    check_coordinates(kp[..., :2], str(path))
    if not np.isfinite(kp[..., 2]).all():
        raise InputError(f"{path}: keypoint scores contain NaN or inf")
    kp = to_coco17(kp, layout=layout, where=str(path))
    T, P = kp.shape[:2]
    valid = arrays["valid"].astype(bool) if "valid" in arrays else (kp[..., 2] > 0).any(-1)
    interp = arrays["interpolated"].astype(bool) if "interpolated" in arrays else np.zeros((T, P), bool)
    if valid.shape != (T, P) or interp.shape != (T, P):
        raise InputError(f"{path}: 'valid'/'interpolated' must be {(T, P)}, got {valid.shape}/{interp.shape}")
    ids = arrays.get("track_ids", np.arange(P)).astype(np.int64).ravel()
    if ids.shape != (P,):
        raise InputError(f"{path}: 'track_ids' must have {P} entries, got {ids.shape[0]}")
    size = tuple(int(v) for v in arrays["size"].ravel()[:2]) if "size" in arrays else None
    fps = float(arrays["fps"]) if "fps" in arrays else None
    frame_index = arrays.get("frame_index", np.arange(T)).astype(np.int64)
    return KeypointSequence(kp2d=kp, valid=valid, track_ids=ids, frame_index=frame_index, image_size=size, fps=fps,
                            source="hmore_priors" if "masks" in arrays or "backend" in arrays else "npz",
                            path=path, interpolated=interp)


def read_keypoints(
    path: str | Path, *, layout: str | None = None, track: bool = True, clip: int | str | None = None
) -> KeypointSequence:
    """Read 2D keypoints from any supported file (see the module docstring) as COCO-17.

    Args:
        path: a JSON file, an OpenPose folder, a pyskl ``.pkl``, or an ``.npz``/``.npy``.
        layout: the file's joint layout (``coco17``, ``coco18``, ``body25``, ``halpe26``, ``wholebody133``,
            ``halpe136``, ``blazepose33``); None guesses it from the joint count.
        track: give people without track ids in the file consistent ids with hmore's tracker.
        clip: which clip of a pyskl pickle with several clips (its index or ``frame_dir`` name), or which video
            of a file with several (PoseTrack's ``vid_id``, or the folder of ``file_name`` / a string ``image_id``).

    Returns:
        A :class:`KeypointSequence`.

    Raises:
        InputError: missing or malformed file, unknown format, wrong joint count for the layout, no frames, several
            clips or videos and ``clip`` does not choose one.
    """
    seq = _read_any(Path(path), layout=layout, track=track, clip=clip)
    if seq.num_frames == 0:
        raise InputError(f"{path}: no frames")
    return seq


def _video_of(name: Any) -> str:
    """The video an image belongs to, from the folder part of its file name or string id ('' when none)."""
    return str(Path(name).parent) if isinstance(name, str) and ("/" in name or "\\" in name) else ""


def _choose(names: list[str], clip: int | str | None, path: Path, what: str) -> int:
    """Index of the clip or video ``clip`` (a name, or an index as int or digits) among ``names``."""
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    if clip is None:
        if len(names) == 1:
            return 0
        raise InputError(f"{path}: holds {len(names)} {what}s ({shown}); choose one by name or index "
                         f"(hmore lift/classify --clip NAME)")
    if isinstance(clip, str) and clip in names:
        return names.index(clip)
    if isinstance(clip, str) and clip.lstrip("-").isdigit():
        clip = int(clip)
    if isinstance(clip, int):
        if not -len(names) <= clip < len(names):
            raise InputError(f"{path}: {what} {clip} out of range (it holds {len(names)}: {shown})")
        return clip % len(names)
    raise InputError(f"{path}: no {what} named {clip!r} (it holds {shown})")


def _read_any(path: Path, *, layout: str | None, track: bool, clip: int | str | None) -> KeypointSequence:
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    suffix = path.suffix.lower()
    if path.is_dir():
        return _read_openpose(path, layout=layout, track=track)
    if suffix in (".pkl", ".pickle"):
        anns = _pyskl_annotations(path)
        names = [str(a.get("frame_dir", k)) for k, a in enumerate(anns)]
        return read_pyskl(path, layout=layout, annotations=[anns[_choose(names, clip, path, "clip")]])[0]
    if suffix in (".npz", ".npy"):
        return _read_npz(path, layout=layout)
    if suffix == ".json":
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
        data = _load_json(path)
        if isinstance(data, list):
            if not data:
                raise InputError(f"{path}: no detections (empty list)")
            return _read_result_list(path, data, layout=layout, track=track, clip=clip)
        if isinstance(data, dict) and "annotations" in data and "images" in data:
            return _read_coco_gt(path, data, layout=layout, track=track, clip=clip)
        if isinstance(data, dict) and "people" in data:
            return _read_openpose(path, layout=layout, track=track)
        raise InputError(f"{path}: not a COCO, AlphaPose or OpenPose keypoint JSON")
    raise InputError(f"{path}: unknown keypoint file type {suffix!r} (expected .json, OpenPose folder, .pkl, .npz)")
