"""Flow channels fed to downstream recognisers (gait, fine-grained actions): one interface for every flow source.

A *source* turns a generated clip into (T-1, 2, H, W) float32 flow fields per channel name:

==============  ===============================================================================================
source          channels
==============  ===============================================================================================
``dis``         ``dis``: OpenCV DIS optical flow (medium preset; ``hmore.bench.flow_methods``)
``hmore``       ``world``, ``local``: an H-MoRe flow model (shipped weights or ``--flow-weights FILE``) through
                one of :data:`FLOW_PIPELINES`, with the clip's exact subject masks
``exact``       ``exact_world``, ``exact_local``: the generator's ground truth inside the people, 0 elsewhere
                (H-MoRe's human-centric targets: the ceiling of what a better flow model could give)
==============  ===============================================================================================

The hmore source's pipelines (``--flow-pipeline``):

* ``raw`` (default, the caches built before the pipelines existed): the network's output as it is, its pairs run
  batched, every person of the clip one subject (the union of the masks); local flow is the network's own.
* ``command``: what ``hmore flow`` writes for the clip (:func:`hmore.flow.inference.iter_flow` with its defaults:
  camera compensation, the variational refinement inside the people, v_s from each person's pelvis keypoints, the
  clip's subject labels), i.e. world flow relative to the scene and local flow = world - v_s. The network runs pair
  by pair: the pipeline's camera lookup and its reuse of each frame's features are per pair.

Downstream sets cache flows per source; the hmore source's cache folder is named by :func:`flow_model_key` (model
name + the first 12 hex digits of the weights' sha256, plus for a pipeline other than ``raw`` its name and a digest of
its settings), so new weights or settings never reuse old flows.

Flows are stored as int8 in steps of :data:`FLOW_STEP` pixels (range +-15.9 px; a set may choose another step),
compressed: :func:`quantise_flow`.

:func:`build_clip_cache` / :func:`load_clip_cache` hold the caching shared by the downstream sets: per item, a
``base/<key>.npz`` (what the set derives from the clip, plus the ``dis`` and ``exact`` channels) and a
``flows/<model key>/<key>.npz`` (``world``, ``local``), written atomically and skipped when present, so building
resumes after a stop and splits over processes (``shard``). Clips are re-rendered (the generator is exact and
deterministic) rather than stored.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hmore.errors import InputError, UsageError
from hmore.io.atomic import save_npz_atomic

SOURCES = ("dis", "hmore", "exact")
FLOW_PIPELINES = ("raw", "command")
DEFAULT_FLOW_PIPELINE = "raw"
SOURCE_CHANNELS = {"dis": ("dis",), "hmore": ("world", "local"), "exact": ("exact_world", "exact_local")}
CHANNEL_SOURCE = {ch: src for src, chs in SOURCE_CHANNELS.items() for ch in chs}
FLOW_STEP = 1.0 / 8.0  # pixels per int8 unit of stored flow


def quantise_flow(flow: np.ndarray, step: float = FLOW_STEP) -> np.ndarray:
    """float flow (pixels) -> int8 in units of ``step`` pixels (clipped to +-127 units: +-15.9 px by default)."""
    return np.clip(np.rint(np.asarray(flow, np.float32) / step), -127, 127).astype(np.int8)


def dequantise_flow(q: np.ndarray, step: float = FLOW_STEP) -> np.ndarray:
    """int8 flow of :func:`quantise_flow` -> float32 pixels."""
    return np.asarray(q, np.float32) * step


def channels_of(spec: str) -> tuple[str, ...]:
    """``"sil+dis"`` / ``"rgb+world+local"`` -> the flow channel names in it (``sil`` and ``rgb`` dropped).

    Raises:
        UsageError: an unknown channel name.
    """
    names = tuple(p for p in spec.split("+") if p)
    bad = [p for p in names if p not in CHANNEL_SOURCE and p not in ("sil", "rgb")]
    if bad or not names:
        raise UsageError(f"unknown input channel(s) {', '.join(bad) or spec!r} in {spec!r}; known: sil, rgb, "
                         f"{', '.join(CHANNEL_SOURCE)}")
    return tuple(p for p in names if p in CHANNEL_SOURCE)


def flow_channel(flow: np.ndarray, person: np.ndarray | None, frames: np.ndarray, *, flow_scale: float,
                 mask: bool = False, smooth: int = 1, step: float = FLOW_STEP) -> np.ndarray:
    """One stored flow channel of a clip as a downstream model's input (the representation the gait and the action
    tasks share).

    (T-1, 2, H, W) int8 flow (``step`` pixels per unit) -> (S, 2, H, W) float32 pixels at the pairs ``frames``,
    smoothed over ``smooth`` pairs (centred, clipped at the clip's ends), multiplied by the frames' person mask
    ``person`` ((T, H, W) uint8, 255 = person: a silhouette, or the generator's masks cropped as the set crops its
    frames; never derived from a flow) when ``mask``, divided by ``flow_scale``. Pair t's flow goes with frame t's mask.
    """
    if smooth > 1:
        r = smooth // 2
        csum = np.concatenate([np.zeros_like(flow[:1], np.float32), np.cumsum(flow, axis=0, dtype=np.float32)])
        lo = np.clip(frames - r, 0, len(flow))
        hi = np.clip(frames + r + 1, 0, len(flow))
        f = dequantise_flow((csum[hi] - csum[lo]) / (hi - lo)[:, None, None, None], step)  # (S, 2, H, W)
    else:
        f = dequantise_flow(flow[frames], step)
    if mask:
        if person is None:
            raise InputError("flow_mask needs the person masks of the clip (a set built before they were stored?)")
        f = f * (person[frames, None].astype(np.float32) / 255.0)
    return f / flow_scale


@dataclass(frozen=True)
class FlowModel:
    """An H-MoRe flow model loaded for a downstream set.

    Attributes:
        name: registered model name.
        weights: the weights file, or the shipped weights' name.
        sha256: the weights' sha256 (hex).
        net: the model in eval mode.
        pipeline: how its flow is made, one of :data:`FLOW_PIPELINES` (module docstring).
    """

    name: str
    weights: str
    sha256: str
    net: torch.nn.Module
    pipeline: str = DEFAULT_FLOW_PIPELINE

    def __post_init__(self) -> None:
        check_flow_pipeline(self.pipeline)

    @property
    def key(self) -> str:
        return flow_model_key(self.name, self.sha256, self.pipeline)


def check_flow_pipeline(pipeline: str) -> None:
    """:class:`UsageError` unless ``pipeline`` is one of :data:`FLOW_PIPELINES`."""
    if pipeline not in FLOW_PIPELINES:
        raise UsageError(f"flow pipeline must be one of {', '.join(FLOW_PIPELINES)}, got {pipeline!r}")


def pipeline_settings(pipeline: str) -> dict[str, Any]:
    """The settings of a flow pipeline that its outputs depend on (besides the weights), JSON-able; empty for
    ``raw``. ``command``: ``hmore flow``'s defaults (camera, refinement, subject motion; the small-people zoom off)."""
    check_flow_pipeline(pipeline)
    if pipeline == "raw":
        return {}
    from hmore.config import to_dict
    from hmore.flow.inference import DEFAULT_CAMERA, DEFAULT_SUBJECT_MOTION, resolve_camera
    from hmore.flow.refine import DEFAULT_REFINE, resolve_refine

    camera, refine = resolve_camera(DEFAULT_CAMERA), resolve_refine(DEFAULT_REFINE)
    return {"camera": None if camera is None else to_dict(camera),
            "refine": None if refine is None else to_dict(refine), "subject_motion": DEFAULT_SUBJECT_MOTION,
            "masks": "subject labels", "keypoints": "generator"}


def flow_model_key(name: str, sha256: str, pipeline: str = DEFAULT_FLOW_PIPELINE) -> str:
    """The cache folder name of a flow model's outputs: ``<name>-<first 12 hex digits of its weights' sha256>``, and
    for a pipeline other than ``raw`` ``-<pipeline>-<first 8 hex digits of the sha256 of its settings' JSON>``."""
    key = f"{name}-{sha256[:12]}"
    if pipeline == "raw":
        return key
    digest = hashlib.sha256(json.dumps(pipeline_settings(pipeline), sort_keys=True).encode()).hexdigest()[:8]
    return f"{key}-{pipeline}-{digest}"


def load_flow_model(name: str = "hmore_flow_cpu", weights: str | Path | None = None,
                    pipeline: str = DEFAULT_FLOW_PIPELINE) -> FlowModel:
    """The flow model ``name`` with ``weights`` (a .safetensors file) or its shipped weights, never random ones, and
    the ``pipeline`` its flows go through (:data:`FLOW_PIPELINES`).

    Raises:
        UsageError: an unknown pipeline. InputError: a missing weights file, or no weights shipped for ``name`` and
            none given.
    """
    check_flow_pipeline(pipeline)
    from hmore.flow.inference import load_flow_model as _load
    from hmore.weights import list_weights, read_weights_metadata, sha256_file, weights_file

    if weights is not None:
        path = weights_file(weights)
        sha = sha256_file(path)
        desc = str(path)
    else:
        if name not in list_weights():
            raise InputError(f"no weights ship for flow model {name!r}: give --flow-weights FILE")
        sha = str(read_weights_metadata(name)["sha256"])
        desc = name
    net, _ = _load(name, weights=weights, device="cpu")
    return FlowModel(name=name, weights=desc, sha256=sha, net=net, pipeline=pipeline)


def dis_flows(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T-1, 2, H, W) float32 DIS flow of consecutive pairs."""
    from hmore.bench.flow_methods import create_method

    dis = create_method("dis")
    return np.stack([dis(frames[t], frames[t + 1]).world.transpose(2, 0, 1) for t in range(len(frames) - 1)])


@torch.inference_mode()
def hmore_flows(model: FlowModel, frames: np.ndarray, masks: np.ndarray, *, keypoints: np.ndarray | None = None,
                batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """World and local flow (each (T-1, 2, H, W) float32) of a clip's consecutive pairs, through ``model``'s
    pipeline (module docstring).

    ``masks`` (T, H, W) are the subject labels (0 background) of the frames; ``keypoints`` (T, P, 17, 3) COCO-17
    of labels 1..P in the frames' pixels (the ``command`` pipeline's v_s; without them it takes each person's median
    flow). ``raw``: the pairs go through the network in batches of ``batch`` (the same numbers as ``hmore.flow`` with
    ``camera="off"``, ``refine="off"``, ``zoom="off"``, ``subject_motion="psi"``, pair by pair, ~1.35x faster).
    """
    if frames.ndim != 4 or masks.shape != frames.shape[:3]:
        raise ValueError(f"hmore_flows: frames (T, H, W, 3) and masks (T, H, W) expected, got {frames.shape}, "
                         f"{masks.shape}")
    if model.pipeline == "command":
        return _command_flows(model, frames, masks, keypoints)
    num = max(1, int(masks.max()))
    max_subjects = int(getattr(getattr(model.net, "config", None), "max_subjects", 16))
    if num > max_subjects:
        raise InputError(f"{num} subjects in a clip but the flow model has {max_subjects} subject queries")
    labels = torch.from_numpy(masks[:-1].astype(np.int64))  # (T-1, H, W)
    img = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    world, local = [], []
    for s in range(0, len(frames) - 1, batch):
        e = min(s + batch, len(frames) - 1)
        out = model.net(img[s:e], img[s + 1:e + 1], masks=labels[s:e], num_subjects=num, all_iterations=False)
        world.append(out.world.float().numpy())
        local.append(out.local.float().numpy())
    return np.concatenate(world), np.concatenate(local)


def _command_flows(model: FlowModel, frames: np.ndarray, labels: np.ndarray, keypoints: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """World and local flow of ``hmore flow``'s pipeline with its defaults (:func:`pipeline_settings`); every stage
    on this thread (the overlapped worker gives the same numbers). The opt-in second, enlarged pass for small people
    (:mod:`hmore.flow.zoom`) stays off, so the caches and tables of this pipeline keep their key and figures."""
    from hmore.flow.inference import DEFAULT_CAMERA, DEFAULT_SUBJECT_MOTION, iter_flow
    from hmore.flow.refine import DEFAULT_REFINE

    pairs = list(iter_flow(frames, model=model.net, device="cpu", masks=labels, keypoints=keypoints,
                           camera=DEFAULT_CAMERA, refine=DEFAULT_REFINE, subject_motion=DEFAULT_SUBJECT_MOTION,
                           progress=False, overlap=False, zoom="off"))
    return np.stack([p.world for p in pairs]), np.stack([p.local for p in pairs])


def clip_flows(frames: np.ndarray, masks: np.ndarray, *, sources: Sequence[str], model: FlowModel | None = None,
               exact_flow: np.ndarray | None = None, exact_local: np.ndarray | None = None,
               labels: np.ndarray | None = None, keypoints: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every channel of ``sources`` for one clip, each (T-1, 2, H, W) float32 pixels.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        masks: (T, H, W) subject labels (the ``raw`` pipeline's and the exact flow's).
        sources: names from :data:`SOURCES`.
        model: the H-MoRe model (needed for ``hmore``).
        labels, keypoints: the clip's own subject labels (T, H, W) and keypoints (T, P, 17, 3) for the ``command``
            pipeline (None: ``masks`` and each person's median flow).
        exact_flow, exact_local: (T-1, H, W, 2) ground truth (needed for ``exact``).
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise UsageError(f"unknown flow source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    out: dict[str, np.ndarray] = {}
    if "dis" in sources:
        out["dis"] = dis_flows(frames)
    if "hmore" in sources:
        if model is None:
            raise ValueError("clip_flows: the hmore source needs a model")
        command = model.pipeline == "command"
        out["world"], out["local"] = hmore_flows(model, frames, labels if command and labels is not None else masks,
                                                 keypoints=keypoints if command else None)
    if "exact" in sources:
        if exact_flow is None or exact_local is None:
            raise ValueError("clip_flows: the exact source needs the generator's flow and local flow")
        inside = (masks[:-1] > 0)[:, None]  # (T-1, 1, H, W): human-centric, 0 on the background
        out["exact_world"] = np.ascontiguousarray(exact_flow.transpose(0, 3, 1, 2) * inside, np.float32)
        out["exact_local"] = np.ascontiguousarray(exact_local.transpose(0, 3, 1, 2), np.float32)
    return out


# ---- per-item caches of generated clips -------------------------------------------------------------------------

BASE_SOURCES = ("dis", "exact")


@dataclass(frozen=True)
class Prepared:
    """What a downstream set keeps of one rendered clip.

    Attributes:
        arrays: the set's own arrays for ``base/<key>.npz`` (silhouettes, crops ...).
        crop_flow: (T-1, 2, H, W) float flow of the clip -> the stored (int8) form, e.g. cropped and quantised.
        meta: JSON-able facts about the item.
    """

    arrays: dict[str, np.ndarray]
    crop_flow: Callable[[np.ndarray], np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildSummary:
    """What :func:`build_clip_cache` did: clips rendered, base and flow files written, items kept, seconds."""

    rendered: int
    base_written: int
    flows_written: int
    kept: int
    seconds: float


def open_set_config(root: str | Path, cls: type, config: Any | None = None, *, what: str, hint: str) -> Any:
    """The config (frozen dataclass ``cls``) of the set in ``root``; with ``config``, create ``set.json`` or check
    that it matches.

    Raises:
        UsageError: ``root`` holds a different set. InputError: no set there and no config given (``hint`` says
            how to build one), or an unreadable ``set.json``.
    """
    from hmore.config import from_dict, to_dict
    from hmore.io.atomic import write_json_atomic

    path = Path(root) / "set.json"
    if path.is_file():
        try:
            found = from_dict(cls, json.loads(path.read_text())["config"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: not a {what} description ({exc})") from None
        if config is not None and found != config:
            raise UsageError(f"{root} holds another {what} ({path}); use a new folder or the same preset")
        return found
    if config is None:
        raise InputError(f"no {what} in {root} (set.json missing): build one with {hint}")
    write_json_atomic(path, {"version": 1, "config": to_dict(config)})
    return config


def base_path(root: str | Path, key: str) -> Path:
    return Path(root) / "base" / f"{key}.npz"


def flow_path(root: str | Path, flow_key: str, key: str) -> Path:
    return Path(root) / "flows" / flow_key / f"{key}.npz"


def _complete(path: Path) -> bool:
    """A cache file that is whole (atomic writes) and readable."""
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return "meta" in z.files
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def build_clip_cache(root: str | Path, keys: Sequence[str], *, render: Callable[[str], Any],
                     prepare: Callable[[str, Any], Prepared], flow_model: FlowModel | None = None,
                     shard: tuple[int, int] = (0, 1), progress: bool | None = None, desc: str = "build"
                     ) -> BuildSummary:
    """Render and cache the items ``keys`` (see the module docstring); resumable and shardable.

    Args:
        root: the set folder.
        keys: item names (file stems).
        render: key -> :class:`hmore.synth.clip.Clip` (deterministic).
        prepare: (key, clip) -> :class:`Prepared`.
        flow_model: also cache this H-MoRe model's world/local flows.
        shard: ``(i, n)``: only the items whose position modulo n is i.
        progress: progress bar (None: only on a terminal).
        desc: the progress bar's label.
    """
    i, n = shard
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"shard must be i/n with 0 <= i < n, got {i}/{n}")
    t0 = time.perf_counter()
    rendered = base_written = flows_written = kept = 0
    for key in tqdm(list(keys)[i::n], desc=desc, unit="clip", disable=None if progress is None else not progress):
        bpath = base_path(root, key)
        fpath = flow_path(root, flow_model.key, key) if flow_model is not None else None
        need_base = not _complete(bpath)
        need_flow = fpath is not None and not _complete(fpath)
        if not (need_base or need_flow):
            kept += 1
            continue
        clip = render(key)
        rendered += 1
        masks = (clip.masks > 0).astype(np.uint8)
        prep = prepare(key, clip)
        if need_base:
            flows = clip_flows(clip.frames, masks, sources=BASE_SOURCES, exact_flow=clip.flow,
                               exact_local=clip.local_flow())
            save_npz_atomic(bpath, **prep.arrays, **{k: prep.crop_flow(v) for k, v in flows.items()},
                            meta=json.dumps(prep.meta))
            base_written += 1
        if need_flow:
            assert flow_model is not None and fpath is not None
            flows = clip_flows(clip.frames, masks, sources=("hmore",), model=flow_model, labels=clip.masks,
                               keypoints=clip.kp2d)
            fmeta = {**prep.meta, "flow_model": flow_model.name, "weights": flow_model.weights,
                     "sha256": flow_model.sha256, "pipeline": flow_model.pipeline,
                     "pipeline_settings": pipeline_settings(flow_model.pipeline)}
            save_npz_atomic(fpath, **{k: prep.crop_flow(v) for k, v in flows.items()}, meta=json.dumps(fmeta))
            flows_written += 1
    return BuildSummary(rendered=rendered, base_written=base_written, flows_written=flows_written, kept=kept,
                        seconds=time.perf_counter() - t0)


def _load_npz(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in names if k not in z.files]
            if missing:
                raise InputError(f"{path}: missing {', '.join(missing)}")
            return {k: z[k] for k in names}
    except FileNotFoundError:
        raise InputError(f"cache file not found: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def load_clip_cache(root: str | Path, keys: Sequence[str], *, arrays: Sequence[str], channels: Sequence[str] = (),
                    flow_key: str | None = None, progress: bool | None = None, desc: str = "load"
                    ) -> dict[str, list[np.ndarray]]:
    """The cached ``arrays`` and flow ``channels`` of the items ``keys``: name -> one array per item.

    Raises:
        InputError: items not built yet (the message names the first), unreadable files, or hmore channels
            without ``flow_key``.
    """
    hm = [c for c in channels if CHANNEL_SOURCE.get(c) == "hmore"]
    base_names = [*arrays, *(c for c in channels if c not in hm)]
    if hm and not flow_key:
        raise InputError(f"channels {', '.join(hm)} need the flows of an H-MoRe model (flow_key)")
    missing = [k for k in keys if not base_path(root, k).is_file()]
    missing += [k for k in keys if hm and not flow_path(root, flow_key or "", k).is_file()]
    if missing:
        what = f" (flows {flow_key})" if hm else ""
        raise InputError(f"{root}: {len(missing)} of {len(keys)} items are not built yet{what}, first {missing[0]}; "
                         "run the build again")
    out: dict[str, list[np.ndarray]] = {k: [] for k in [*base_names, *hm]}
    for key in tqdm(keys, desc=desc, unit="clip", disable=None if progress is None else not progress):
        for name, value in _load_npz(base_path(root, key), base_names).items():
            out[name].append(value)
        if hm:
            for name, value in _load_npz(flow_path(root, flow_key or "", key), hm).items():
                out[name].append(value)
    return out
