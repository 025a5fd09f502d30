"""Paired video-motion clips for the video encoder and the alignment loss, cached on disk.

Two kinds of pairs, one ``<name>.npz`` each in a cache folder (written atomically; a rebuild skips the clips that
exist, so an interrupted build resumes):

* **generated** (:func:`render_pair`): a Bandai-Namco take or a procedural action played on a generated person
  (:func:`hmore.synth.render_clip` with the motion given), so video and motion are an exact pair; the flow is hmore's
  own (model ``hmore_flow_cpu`` with the weights :data:`CONCEPT_FLOW_WEIGHTS`, on the rendered frames with the clip's
  exact person masks) or, with ``flow="exact"``, the
  generator's ground truth.
* **real** (:func:`real_pair`): a real video with its lifted motion (MediaPipe 2D -> ``dstformer_cpu`` 3D) and hmore's
  flow with the priors' person masks.

Each file holds the person's square crop (a box of constant size following the person's mask, see
:func:`person_boxes`), resized to ``crop`` x ``crop`` pixels:

=================  =========  =====================  ===================================================
key                dtype      shape                  meaning
=================  =========  =====================  ===================================================
``frames``         uint8      (T, C, C, 3)           RGB crop
``world``          float16    (T-1, 2, C, C)         world flow t -> t+1 in crop pixels
``local``          float16    (T-1, 2, C, C)         local flow (world minus the person's velocity)
``joints``         float32    (T, 17, 3)             the paired motion, metres, y up (H36M-17)
``meta``           str                               JSON: name, source, split, labels, fps, has_root, crop_side
=================  =========  =====================  ===================================================

:func:`video_channels` turns a window of it into the video encoder's input (RGB and both flows, 7 channels).
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from hmore.concepts.motion import MODEL_FPS, PROCEDURAL_TEST_IDS, PROCEDURAL_TRAIN_IDS, to_y_up
from hmore.errors import InputError, UsageError
from hmore.io.atomic import save_npz_atomic, write_bytes_atomic

log = logging.getLogger(__name__)

CROP = 64
RENDER_SIZE = (96, 128)  # (H, W)
PAIR_FRAMES = 40
FLOW_UNIT = 0.5  # crop pixels per frame that map to 1 in the encoder input (people move ~0.1-2 px per frame)
VIDEO_CHANNELS = 7
FLOW_METHODS = ("hmore", "exact")
FLOW_POLICIES = (*FLOW_METHODS, "mixed")
# the shipped flow weights the shipped concept models' features came from: pairs are always built with these, so a
# cache (and the models) stay consistent when the default `hmore_flow_cpu` weights change
CONCEPT_FLOW_WEIGHTS = "hmore_flow_cpu"
# likewise the lifter whose 3D the shipped concept models' real clips came from (`hmore lift`'s default may change),
# run at the track's own frame rate (model_fps=0) as when that cache was built
CONCEPT_LIFTER = "dstformer_cpu"


def concept_lifter() -> Any:
    """The lifter of real clips and 2D inputs of the concept models: the shipped :data:`CONCEPT_LIFTER` weights."""
    from hmore.lift.pipeline import load_lifter

    return load_lifter(weights=CONCEPT_LIFTER)


def concept_flow_model() -> Any:
    """The flow network of the concept pairs: model ``hmore_flow_cpu`` with the :data:`CONCEPT_FLOW_WEIGHTS`."""
    from hmore.flow.inference import load_flow_model

    return load_flow_model("hmore_flow_cpu", weights=CONCEPT_FLOW_WEIGHTS)[0]


# ---- crops and the encoder's input -----------------------------------------------------------------------------
def person_boxes(masks: np.ndarray, *, pad: float = 0.15) -> np.ndarray:
    """(T, 3) int square boxes (x0, y0, side) following the person of (T, H, W) masks (non-zero pixels).

    The side is the same in every frame (the largest per-frame bounding box side, padded by ``pad`` x it on each
    side), the centre follows each frame's box (frames without mask pixels take the nearest frame's centre; no mask
    at all: the frame's centred square). Boxes may leave the frame (crops pad with zeros).
    """
    m = np.asarray(masks) > 0
    if m.ndim != 3:
        raise ValueError(f"masks must be (T, H, W), got {m.shape}")
    t, h, w = m.shape
    rows, cols = m.any(axis=2), m.any(axis=1)  # (T, H), (T, W)
    seen = rows.any(axis=1)
    if not seen.any():
        side = min(h, w)
        return np.tile(np.array([(w - side) // 2, (h - side) // 2, side]), (t, 1))
    centres = np.zeros((t, 2))
    sides = []
    for i in np.flatnonzero(seen):
        ys, xs = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
        centres[i] = ((xs[0] + xs[-1] + 1) / 2, (ys[0] + ys[-1] + 1) / 2)
        sides.append(max(ys[-1] - ys[0] + 1, xs[-1] - xs[0] + 1))
    idx = np.flatnonzero(seen)
    for c in range(2):
        centres[:, c] = np.interp(np.arange(t), idx, centres[idx, c])
    side = max(int(math.ceil(max(sides) * (1 + 2 * pad))), 4)
    x0 = np.round(centres[:, 0] - side / 2).astype(int)
    y0 = np.round(centres[:, 1] - side / 2).astype(int)
    return np.stack([x0, y0, np.full(t, side)], axis=1)


def _crop(img: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """The box of an (H, W, C) image, zero-padded where it leaves the image."""
    x0, y0, side = box
    h, w = img.shape[:2]
    out = np.zeros((side, side) + img.shape[2:], img.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out


def crop_frames(frames: np.ndarray, boxes: np.ndarray, size: int = CROP) -> np.ndarray:
    """(T, H, W, 3) uint8 and (T, 3) boxes -> (T, size, size, 3) crops."""
    return np.stack([cv2.resize(_crop(f, tuple(b)), (size, size), interpolation=cv2.INTER_AREA)
                     for f, b in zip(frames, boxes)])


def crop_flow(flow: np.ndarray, boxes: np.ndarray, size: int = CROP) -> np.ndarray:
    """(T-1, 2, H, W) flow in pixels and the boxes of frames t -> (T-1, 2, size, size) in crop pixels (values scaled
    with the resize; the flow stays the image motion, not the motion relative to the moving box)."""
    out = []
    for f, b in zip(np.asarray(flow, np.float32), boxes):
        hwc = _crop(np.ascontiguousarray(f.transpose(1, 2, 0)), tuple(b))  # (side, side, 2)
        out.append(cv2.resize(hwc, (size, size), interpolation=cv2.INTER_AREA).transpose(2, 0, 1) * (size / b[2]))
    return np.stack(out).astype(np.float32)


def video_channels(frames: np.ndarray, world: np.ndarray, local: np.ndarray, *, size: int | None = None
                   ) -> np.ndarray:
    """The video encoder's input of a window: (T, 7, S, S) float32 = RGB / 255 - 0.5, world and local flow / FLOW_UNIT.

    Args:
        frames: (T, C, C, 3) uint8 crops.
        world, local: (T, 2, C, C) flows of frame t -> t+1 (the caller pads the last frame's flow).
        size: resize to S x S (default: keep C; flows are rescaled with the crop).
    """
    frames = np.asarray(frames)
    t, c = frames.shape[0], frames.shape[1]
    if world.shape != (t, 2, c, c) or local.shape != (t, 2, c, c):
        raise ValueError(f"video_channels: frames {frames.shape}, world {world.shape}, local {local.shape} disagree")
    rgb = frames.astype(np.float32).transpose(0, 3, 1, 2) / 255.0 - 0.5  # (T, 3, C, C)
    flows = np.concatenate([world, local], axis=1).astype(np.float32) / FLOW_UNIT  # (T, 4, C, C)
    x = np.concatenate([rgb, flows], axis=1)
    if size is not None and size != c:
        x = np.stack([np.stack([cv2.resize(ch, (size, size), interpolation=cv2.INTER_AREA) for ch in f]) for f in x])
        x[:, 3:] *= size / c
    return np.ascontiguousarray(x, dtype=np.float32)


# ---- the cache -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedClip:
    """A cached pair (see the module docstring); ``meta`` carries ``name``, ``source``, ``split``, ``action``,
    ``style``, ``subject``, ``fps``, ``has_root``."""

    frames: np.ndarray
    world: np.ndarray
    local: np.ndarray
    joints: np.ndarray
    meta: dict[str, Any]

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def resized(self, size: int) -> PairedClip:
        """The same pair with its crops resized to ``size`` pixels (flows rescaled; float16 kept)."""
        c = self.frames.shape[1]
        if size == c:
            return self

        def flows(f: np.ndarray) -> np.ndarray:
            out = [[cv2.resize(ch.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) for ch in fr]
                   for fr in f]
            return (np.asarray(out, np.float32) * (size / c)).astype(np.float16)

        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in self.frames])
        return PairedClip(frames=frames, world=flows(self.world), local=flows(self.local), joints=self.joints,
                          meta={**self.meta, "crop": size})

    def save(self, path: str | Path) -> Path:
        return save_npz_atomic(path, frames=self.frames, world=self.world.astype(np.float16),
                               local=self.local.astype(np.float16), joints=self.joints.astype(np.float32),
                               meta=np.array(json.dumps(self.meta, sort_keys=True)))


def load_pair(path: str | Path) -> PairedClip:
    """Read one cached pair; :class:`InputError` naming the file when it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("frames", "world", "local", "joints", "meta")}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"cannot read paired clip {path}: {exc}") from None
    t = arrays["frames"].shape[0]
    if arrays["world"].shape[0] != t - 1 or arrays["joints"].shape != (t, 17, 3):
        raise InputError(f"{path}: frames {arrays['frames'].shape}, world {arrays['world'].shape}, joints "
                         f"{arrays['joints'].shape} do not fit together")
    return PairedClip(frames=arrays["frames"], world=arrays["world"], local=arrays["local"], joints=arrays["joints"],
                      meta=json.loads(str(arrays["meta"])))


def list_pairs(cache_dir: str | Path) -> list[Path]:
    """The cached pair files of a folder (``pairs/`` and ``real/`` below it too), sorted."""
    root = Path(cache_dir)
    found = [p for sub in ("pairs", "real") for p in sorted((root / sub).glob("*.npz"))]
    return found or sorted(root.glob("*.npz"))


# ---- generated pairs -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairSpec:
    """What to render for one generated pair.

    Attributes:
        name: file stem.
        source: ``"bandai"`` or ``"procedural"``.
        split: ``"train"`` or ``"test"``.
        action, style, subject: labels.
        take: Bandai take file name (``bvh/....bvh.gz`` relative to the dataset folder), "" for procedural.
        identity: the generated person's identity id.
        view: degrees, 0 (towards the camera) to 180.
        condition: clothing.
        camera: ``static``, ``pan`` or ``track``.
        seed: render and motion seed.
        start: first frame (at MODEL_FPS) within the take.
    """

    name: str
    source: str
    split: str
    action: str
    style: str
    subject: str
    take: str
    identity: int
    view: float
    condition: str
    camera: str
    seed: int
    start: int = 0


def pair_specs(*, bandai_train: int = 240, bandai_test: int | None = None, procedural_train_ids: Sequence[int] =
               PROCEDURAL_TRAIN_IDS[:10], procedural_test_ids: Sequence[int] = PROCEDURAL_TEST_IDS[:4],
               seed: int = 0, data_root: str | Path | None = None) -> list[PairSpec]:
    """The generated pairs to render, in a fixed shuffled order (a partial cache is a random subset).

    Bandai: ``bandai_train`` takes drawn from the training takes (spread over actions and styles) and
    ``bandai_test`` held-out takes (None: all); procedural: every action for each identity. Each pair gets a new
    identity (Bandai: ids from 5000 up, never used by procedural training), a random view, clothing and camera.
    """
    from hmore.data import bandai
    from hmore.synth.body import CONDITIONS
    from hmore.synth.motion import ACTIONS

    rng = np.random.default_rng([seed, 0xBA1])
    takes = bandai.load_index(None if data_root is None else Path(data_root) / "bandai")
    train = [t for t in takes if not bandai.is_held_out(t)]
    test = [t for t in takes if bandai.is_held_out(t)]
    order = rng.permutation(len(train))
    # spread: round-robin over (action, style) groups in a random order
    groups: dict[tuple[str, str], list] = {}
    for i in order:
        groups.setdefault((train[i].action, train[i].style), []).append(train[i])
    picked: list = []
    while len(picked) < min(bandai_train, len(train)):
        for g in list(groups):
            if groups[g] and len(picked) < bandai_train:
                picked.append(groups[g].pop())
    chosen_test = test if bandai_test is None else [test[i] for i in rng.permutation(len(test))[:bandai_test]]
    specs: list[PairSpec] = []

    def extras(k: int) -> dict[str, Any]:
        r = np.random.default_rng([seed, k, 0x5EED])
        return dict(view=float(r.choice(np.arange(0.0, 181.0, 18.0))), condition=str(r.choice(CONDITIONS)),
                    camera=str(r.choice(["static", "static", "pan", "track"])), seed=int(r.integers(2**31)))

    for split, chosen in (("train", picked), ("test", chosen_test)):
        for t in chosen:
            k = len(specs)
            e = extras(k)
            frames = int(math.floor((t.frames - 1) / t.fps * MODEL_FPS)) + 1
            start = int(np.random.default_rng([seed, k]).integers(0, max(1, frames - PAIR_FRAMES + 1)))
            specs.append(PairSpec(name=f"bandai_{t.name}", source="bandai", split=split, action=t.action,
                                  style=t.style, subject=f"set{t.set}", take=str(t.path.relative_to(t.path.parents[1])),
                                  identity=5000 + k, start=start, **e))
    for split, ids in (("train", procedural_train_ids), ("test", procedural_test_ids)):
        for i in ids:
            for act in ACTIONS:
                k = len(specs)
                specs.append(PairSpec(name=f"procedural_{act}_id{i}", source="procedural", split=split, action=act,
                                      style="", subject=f"id{i}", take="", identity=int(i), **extras(k)))
    return [specs[i] for i in rng.permutation(len(specs))]


def _spec_motion(spec: PairSpec, identity: Any, *, data_root: str | Path | None, frames: int):
    from hmore.synth.motion import generate_motion, motion_from_bvh

    heading = math.pi + math.radians(spec.view)
    if spec.source == "procedural":
        return generate_motion(spec.action, identity, num_frames=frames, fps=MODEL_FPS, seed=spec.seed,
                               heading=heading)
    if spec.source != "bandai":
        raise UsageError(f"unknown pair source {spec.source!r}")
    from hmore.data import bandai, dataset_dir

    bvh = bandai.read_take(dataset_dir("bandai", None if data_root is None else Path(data_root) / "bandai")
                           / spec.take)
    avail = int(math.floor((bvh.num_frames - 1) * bvh.frame_time * MODEL_FPS + 1e-6)) + 1
    start = min(spec.start, max(avail - 2, 0))
    n = min(frames, avail - start)
    if n < 2:
        raise InputError(f"Bandai take {spec.take} is too short to render")
    return motion_from_bvh(bvh, identity, fps=MODEL_FPS, start_frame=start, num_frames=n, heading=heading)


def render_pair(spec: PairSpec, *, flow: str = "hmore", flow_model: Any = None, size: tuple[int, int] = RENDER_SIZE,
                frames: int = PAIR_FRAMES, crop: int = CROP, data_root: str | Path | None = None) -> PairedClip:
    """Render one generated pair (see the module docstring).

    Args:
        spec: what to render.
        flow: ``"hmore"`` (the model's flow; ``flow_model`` or the shipped ``hmore_flow_cpu``) or ``"exact"``.
        flow_model: a loaded flow model (loaded once by the caller for many pairs).
        size: render size (H, W).
        frames: frames per clip (fewer when the take is shorter).
        crop: crop size in pixels.
        data_root: the shared data folder.
    """
    from hmore.synth.clip import render_clip
    from hmore.synth.identity import sample_identity

    if flow not in FLOW_METHODS:
        raise UsageError(f"flow must be one of {FLOW_METHODS}, got {flow!r}")
    ident = sample_identity(spec.identity, seed=None)
    motion = _spec_motion(spec, ident, data_root=data_root, frames=frames)
    kw = dict(size=size, num_frames=motion.num_frames, motions=[motion], identities=[ident],
              conditions=[spec.condition], seed=spec.seed, distractors=1, fps=MODEL_FPS)
    try:
        clip = render_clip(camera_motion=spec.camera, **kw)
    except UsageError:  # a person running across a static camera's view would be too small: follow them
        if spec.camera == "track":
            raise
        clip = render_clip(camera_motion="track", **kw)
    if flow == "exact":
        world = clip.flow.transpose(0, 3, 1, 2)
        local = clip.local_flow().transpose(0, 3, 1, 2)
        method = "exact"
    else:
        from hmore.flow.inference import iter_flow

        model = flow_model if flow_model is not None else concept_flow_model()
        # refine="off": the shipped concept models were trained on the network's flow as it is
        pairs = list(iter_flow(clip.frames, model=model, masks=clip.masks, size=max(size), device="cpu",
                               progress=False, refine="off", zoom="off"))
        world = np.stack([p.world for p in pairs])
        local = np.stack([p.local for p in pairs])
        method = "hmore_flow_cpu" if flow_model is None else type(model).__name__
    boxes = person_boxes(clip.masks)
    meta = {**asdict(spec), "fps": MODEL_FPS, "has_root": True, "crop_side": int(boxes[0, 2]), "flow": method,
            "render_size": list(size), "kind": "generated"}
    return PairedClip(frames=crop_frames(clip.frames, boxes, crop), world=crop_flow(world, boxes, crop),
                      local=crop_flow(local, boxes, crop), joints=motion.joints.astype(np.float32), meta=meta)


def spec_flow(spec: PairSpec, policy: str, *, hmore_every: int = 5) -> str:
    """The flow method of a spec under ``policy``: ``"hmore"``, ``"exact"``, or ``"mixed"`` (hmore's flow for
    held-out pairs and every ``hmore_every``-th training pair by a hash of its name, the exact flow for the rest:
    hmore's flow costs ~10x the rendering on a CPU)."""
    if policy not in FLOW_POLICIES:
        raise UsageError(f"flow must be one of {FLOW_POLICIES}, got {policy!r}")
    if policy != "mixed":
        return policy
    import zlib

    return "hmore" if spec.split == "test" or zlib.crc32(spec.name.encode()) % hmore_every == 0 else "exact"


def build_pair_cache(cache_dir: str | Path, specs: Sequence[PairSpec], *, flow: str | Mapping[str, str] = "mixed",
                     progress: bool = False, data_root: str | Path | None = None, limit: int | None = None
                     ) -> list[Path]:
    """Render every spec whose file ``<cache_dir>/pairs/<name>.npz`` does not exist yet (resumable); ``flow`` is
    a policy of :func:`spec_flow`, or the method of each spec by name (a manifest's, :func:`read_pair_manifest`).

    Returns:
        The files of all specs present at the end.
    """
    out = Path(cache_dir) / "pairs"
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in specs if not (out / f"{s.name}.npz").is_file()]
    if limit is not None:
        todo = todo[:limit]
    def method_of(s: PairSpec) -> str:
        return flow[s.name] if isinstance(flow, Mapping) else spec_flow(s, flow)

    model = None
    if any(method_of(s) == "hmore" for s in todo):
        model = concept_flow_model()
        log.info("pair flow: hmore_flow_cpu (weights %s)", CONCEPT_FLOW_WEIGHTS)
    for spec in tqdm(todo, desc="pairs", unit="clip", disable=not progress):
        method = method_of(spec)
        try:
            pair = render_pair(spec, flow=method, flow_model=model if method == "hmore" else None,
                               data_root=data_root)
        except (InputError, UsageError) as exc:
            log.warning("skipping pair %s: %s", spec.name, exc)
            continue
        if method == "hmore":
            pair.meta["flow"] = "hmore_flow_cpu"
        pair.save(out / f"{spec.name}.npz")
    return [out / f"{s.name}.npz" for s in specs if (out / f"{s.name}.npz").is_file()]


# ---- manifests: the exact set of generated pairs of a cache ---------------------------------------------------
def pair_manifest(cache_dir: str | Path) -> list[dict[str, Any]]:
    """One row per cached generated pair, sorted by name: its :class:`PairSpec` fields and ``flow`` (the method it
    was rendered with, ``"hmore"`` or ``"exact"``), so that :func:`read_pair_manifest` and
    :func:`build_pair_cache` render the same set into another folder."""
    rows = []
    for f in sorted((Path(cache_dir) / "pairs").glob("*.npz")):
        try:
            with np.load(f, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise InputError(f"cannot read paired clip {f}: {exc}") from None
        row = {k: meta[k] for k in PairSpec.__dataclass_fields__}
        row["flow"] = "hmore" if meta.get("flow") == "hmore_flow_cpu" else "exact"
        rows.append(row)
    return rows


def write_pair_manifest(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write manifest rows as JSON, one row per line (gzip-compressed when ``path`` ends in ``.gz``), atomically."""
    text = "[\n" + ",\n".join(json.dumps(r, sort_keys=True) for r in rows) + "\n]\n"
    data = text.encode()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    return write_bytes_atomic(path, data)


def read_pair_manifest(path: str | Path) -> tuple[list[PairSpec], dict[str, str]]:
    """The specs of a manifest (:func:`write_pair_manifest`) and each one's flow method by name."""
    path = Path(path)
    try:
        data = path.read_bytes()
        rows = json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
    except (OSError, ValueError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read pair manifest {path}: {exc}") from None
    fields = set(PairSpec.__dataclass_fields__)
    specs, flows = [], {}
    for i, row in enumerate(rows if isinstance(rows, list) else [None]):
        if not isinstance(row, dict) or set(row) != fields | {"flow"} or row["flow"] not in FLOW_METHODS:
            raise InputError(f"{path}: row {i} is not a pair spec with a flow of {FLOW_METHODS}: {row!r}")
        flows[row["name"]] = row["flow"]
        specs.append(PairSpec(**{k: row[k] for k in fields}))
    return specs, flows


# ---- real videos -----------------------------------------------------------------------------------------------
def real_pair(video: str | Path, *, flow_model: Any = None, lifter: Any = None, max_side: int = 256,
              fps: float = MODEL_FPS, max_frames: int | None = 120, crop: int = CROP, progress: bool = False
              ) -> PairedClip:
    """A real video's main person (the longest track) with its lifted motion and hmore's flow, as a pair.

    Frames are taken at about ``fps`` (every round(source fps / fps)-th frame), scaled to a longer side of
    ``max_side``; at most ``max_frames`` of them.
    """
    from hmore.flow.inference import iter_flow
    from hmore.io.video import iter_frames, probe_video
    from hmore.lift.infer import lift_tracks
    from hmore.lift.pipeline import tracks_from_priors
    from hmore.priors.pipeline import extract_priors
    from hmore.priors.pose import create_estimator

    video = Path(video)
    info = probe_video(video)
    src_fps = float(info.fps or 30.0)
    stride = max(1, int(round(src_fps / fps)))
    end = None if max_frames is None else max_frames * stride
    pri = extract_priors(video, estimator=create_estimator("mediapipe"), max_side=max_side, stride=stride, end=end,
                         progress=progress)
    if pri.num_people == 0:
        raise InputError(f"{video}: no person found")
    frames = np.stack(list(iter_frames(video, stride=stride, max_side=max_side, end=end)))[: pri.num_frames]
    person = int(np.argmax(pri.valid.sum(axis=0)))
    tracks = tracks_from_priors(pri)
    lifter = lifter if lifter is not None else concept_lifter()
    lifted = lift_tracks(lifter, tracks.kp2d[person : person + 1], width=tracks.width, height=tracks.height,
                         fps=tracks.fps, model_fps=0)  # at the track's rate, as the shipped models' cache was built
    label = int(pri.track_ids[person])
    masks = np.where(pri.masks == label, 1, 0).astype(np.uint8)
    model = flow_model if flow_model is not None else concept_flow_model()
    pairs = list(iter_flow(frames, model=model, masks=masks, size=max(frames.shape[1:3]), device="cpu",
                           progress=progress, refine="off", zoom="off"))  # as the concept models' training features
    world = np.stack([p.world for p in pairs])
    local = np.stack([p.local for p in pairs])
    boxes = person_boxes(masks)
    joints = to_y_up(lifted.pose3d[0], "camera").astype(np.float32)
    meta = {"name": f"real_{video.stem}", "source": "real", "split": "train", "action": "", "style": "",
            "subject": video.stem, "fps": src_fps / stride, "has_root": False, "crop_side": int(boxes[0, 2]),
            "flow": "hmore_flow_cpu", "kind": "real", "video": video.name, "person": label}
    return PairedClip(frames=crop_frames(frames, boxes, crop), world=crop_flow(world, boxes, crop),
                      local=crop_flow(local, boxes, crop), joints=joints, meta=meta)


def build_real_cache(cache_dir: str | Path, videos: Sequence[str | Path], *, progress: bool = False,
                     held_out: Sequence[str] = ()) -> list[Path]:
    """Cache :func:`real_pair` of every video not cached yet in ``<cache_dir>/real/`` (resumable); videos whose
    stem is in ``held_out`` get split ``"test"``."""
    out = Path(cache_dir) / "real"
    out.mkdir(parents=True, exist_ok=True)
    done = []
    todo = [Path(v) for v in videos if not (out / f"real_{Path(v).stem}.npz").is_file()]
    model = concept_flow_model() if todo else None
    lifter = concept_lifter() if todo else None
    for v in tqdm(todo, desc="real pairs", unit="video", disable=not progress):
        try:
            pair = real_pair(v, flow_model=model, lifter=lifter)
        except (InputError, UsageError) as exc:
            log.warning("skipping %s: %s", v, exc)
            continue
        if v.stem in set(held_out):
            pair.meta["split"] = "test"
        pair.save(out / f"real_{v.stem}.npz")
    for v in videos:
        p = out / f"real_{Path(v).stem}.npz"
        if p.is_file():
            done.append(p)
    return done
