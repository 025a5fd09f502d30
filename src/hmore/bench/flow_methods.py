"""Flow methods compared by ``hmore bench flow``, behind one interface.

A method is called as ``method(frame_t, frame_t1, masks=labels)`` on (H, W, 3) uint8 RGB frames and returns a
:class:`MethodFlow`: the (H, W, 2) world flow and, for methods that have one, a local flow and subject velocities.
Methods are created from a spec string by :func:`create_method`:

==========================  ==============================================================================
spec                        method
==========================  ==============================================================================
``dis``                     OpenCV DIS optical flow, medium preset (Kroeger et al., ECCV 2016)
``farneback``               OpenCV Farneback (pyramid 0.5, 5 levels, window 15, 3 iterations, poly 5 / 1.2)
``dis_mask``                DIS multiplied by the person mask: the cheap human-centric baseline
``zero``                    no motion anywhere: the floor of the local-flow measures
``hmore_flow_cpu`` (any     hmore's registered flow model with its shipped weights, or ``name=PATH`` with a
registered flow model)      ``.safetensors`` file; unavailable (never silently random) when neither exists
``file:DIR_OR_FILE``        flow files given by the user: ``.flo`` (Middlebury) or ``.npy`` ``(H, W, 2)`` files
                            taken in natural order, one per pair, or one ``.npy`` ``(N, H, W, 2)``
==========================  ==============================================================================

Camera compensation (:mod:`hmore.flow.camera`) is a suffix: ``dis+cam``, ``farneback+cam``, ``dis_mask+cam`` fit
the camera's motion to the method's own flow on the background and subtract it (the same estimator hmore uses), so a
table separates what the compensation gives from what the network gives. hmore models compensate by default (as
``hmore flow`` does); ``hmore_flow_cpu+nocam`` turns it off (the network's optical flow). hmore models also refine
their flow photometrically inside people by default (:mod:`hmore.flow.refine`, as ``hmore flow`` does);
``hmore_flow_cpu+noref`` (or ``+nocam+noref``) is the network's flow without it, ``hmore_flow_cpu+search`` the
refinement with its opt-in DIS search first (``hmore flow --refine search``). A last suffix ``+zoom``
(``hmore_flow_cpu+zoom``, ``hmore_flow_cpu+noref+zoom``) gives small people a second, enlarged pass
(:mod:`hmore.flow.zoom`, ``hmore flow --zoom auto``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hmore.errors import InputError, UsageError

log = logging.getLogger(__name__)

FLO_MAGIC = 202021.25  # "PIEH" as a little-endian float32: the Middlebury .flo tag
BASELINES = ("dis", "farneback", "dis_mask", "zero")
CAMERA_SUFFIXES = ("+cam", "+nocam")
REFINE_SUFFIX = "+noref"  # hmore models: the network's flow without the photometric refinement inside people
SEARCH_SUFFIX = "+search"  # hmore models: the refinement with the DIS search and census fusion before it (opt-in)
ZOOM_SUFFIX = "+zoom"  # hmore models: small people get a second, enlarged pass (hmore.flow.zoom)

__all__ = ["BASELINES", "FLO_MAGIC", "FlowMethod", "MethodFlow", "MethodUnavailable", "create_method",
           "list_methods", "read_flo", "read_flow_file", "write_flo"]


class MethodUnavailable(RuntimeError):
    """A method that cannot run here (no weights, missing files); the benchmark reports it with this reason."""


@dataclass(frozen=True)
class MethodFlow:
    """One method's output for a frame pair.

    Attributes:
        world: (H, W, 2) float32 flow t -> t+1 in pixels.
        local: (H, W, 2) float32 local flow (world - v_s inside subject s) when the method computes one, else None.
        subject_velocity: (P, 2) float32 v_s for labels 1..P when the method computes them, else None.
        camera: (H, W, 2) float32 camera-induced flow the method removed from ``world`` (None: none removed).
    """

    world: np.ndarray
    local: np.ndarray | None = None
    subject_velocity: np.ndarray | None = None
    camera: np.ndarray | None = None


@dataclass
class FlowMethod:
    """A named flow method.

    Attributes:
        name: the name shown in tables.
        fn: ``(frame_t, frame_t1, masks) -> MethodFlow``.
        human_centric: True when the method's output is meant to be 0 on the background.
        needs_masks: True when the method uses the person masks.
        sequential: True for file methods, which return the stored flows in call order (no backward flows).
        info: a description (weights, parameters) for the report.
        uses_pose: ``fn`` takes a fourth argument, the pose ``(kp_t, kp_t1)`` (each (P, 17, 3) for labels 1..P)
            or None (hmore: v_s from the pelvis track).
    """

    name: str
    fn: Callable[..., MethodFlow]
    human_centric: bool = False
    needs_masks: bool = False
    sequential: bool = False
    info: dict[str, str] = field(default_factory=dict)
    uses_pose: bool = False

    def __call__(self, frame_t: np.ndarray, frame_t1: np.ndarray, masks: np.ndarray | None = None,
                 pose: tuple[np.ndarray, np.ndarray] | None = None) -> MethodFlow:
        """Flow of the pair; frames (H, W, 3) uint8 RGB, masks (H, W) labels at t (or None), pose keypoints at t
        and t+1 (or None)."""
        frame_t, frame_t1 = np.asarray(frame_t), np.asarray(frame_t1)
        if frame_t.shape != frame_t1.shape or frame_t.ndim != 3 or frame_t.shape[2] != 3:
            raise ValueError(f"frames must both be (H, W, 3), got {frame_t.shape} and {frame_t1.shape}")
        from hmore.flow.inference import check_frame_size

        check_frame_size(frame_t.shape[1], frame_t.shape[0])  # OpenCV's DIS crashes on smaller frames
        out = self.fn(frame_t, frame_t1, masks, pose) if self.uses_pose else self.fn(frame_t, frame_t1, masks)
        if out.world.shape != (*frame_t.shape[:2], 2):
            raise InputError(f"method {self.name} returned a flow of shape {out.world.shape} for "
                             f"{frame_t.shape[1]}x{frame_t.shape[0]} frames")
        return out


# ---- OpenCV baselines -------------------------------------------------------------------------------------------


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _dis() -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], MethodFlow]:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def run(a: np.ndarray, b: np.ndarray, masks: np.ndarray | None) -> MethodFlow:
        return MethodFlow(world=dis.calc(_grey(a), _grey(b), None).astype(np.float32))

    return run


def _farneback(a: np.ndarray, b: np.ndarray, masks: np.ndarray | None) -> MethodFlow:
    flow = cv2.calcOpticalFlowFarneback(_grey(a), _grey(b), None, pyr_scale=0.5, levels=5, winsize=15,
                                        iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    return MethodFlow(world=flow.astype(np.float32))


def _zero(a: np.ndarray, b: np.ndarray, masks: np.ndarray | None) -> MethodFlow:
    zero = np.zeros((*a.shape[:2], 2), np.float32)
    return MethodFlow(world=zero, local=zero)


def _masked(fn: Callable[[np.ndarray, np.ndarray, np.ndarray | None], MethodFlow]
            ) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], MethodFlow]:
    """``fn``'s flow multiplied by the person mask (0 on the background)."""

    def run(a: np.ndarray, b: np.ndarray, masks: np.ndarray | None) -> MethodFlow:
        if masks is None:
            raise InputError("dis_mask needs person masks")
        out = fn(a, b, masks)
        world = np.where((np.asarray(masks) > 0)[..., None], out.world, 0.0).astype(np.float32)
        return MethodFlow(world=world, camera=out.camera)

    return run


def _compensated(fn: Callable[[np.ndarray, np.ndarray, np.ndarray | None], MethodFlow]
                 ) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], MethodFlow]:
    """``fn``'s flow minus the camera motion fitted to it on the background (:func:`hmore.flow.camera`)."""
    from hmore.flow.camera import estimate_camera

    def run(a: np.ndarray, b: np.ndarray, masks: np.ndarray | None) -> MethodFlow:
        flow = fn(a, b, masks).world
        person = np.zeros(flow.shape[:2], bool) if masks is None else np.asarray(masks) > 0
        motion = estimate_camera(flow, person, _grey(a))
        if motion.is_identity:
            return MethodFlow(world=flow)
        cam = motion.flow(flow.shape[:2])
        return MethodFlow(world=(flow - cam).astype(np.float32), camera=cam)

    return run


# ---- hmore's models ---------------------------------------------------------------------------------------------


def _hmore(name: str, weights: str | None, device: str, camera: bool = True, label: str | None = None,
           refine: str = "variational", zoom: bool = False) -> FlowMethod:
    from hmore.registry import list_models

    if name not in list_models("hmore_flow*"):
        raise UsageError(f"unknown flow method {name!r}; known: {', '.join(list_methods())}")
    if weights is None:
        from hmore.weights import list_weights

        if name not in list_weights():
            raise MethodUnavailable(f"no trained weights ship for {name} and none were given ({name}=PATH or "
                                    "--weights); a randomly initialised model is not benchmarked")
        desc = f"shipped weights {name}"
    else:
        from hmore.weights import weights_file

        desc = str(weights_file(weights))
    import torch

    from hmore.flow.inference import iter_flow, load_flow_model

    net, _ = load_flow_model(name, weights=weights, device=device)

    def run(a: np.ndarray, b: np.ndarray, masks: np.ndarray | None,
            pose: tuple[np.ndarray, np.ndarray] | None) -> MethodFlow:
        labels = "whole" if masks is None else np.stack([masks, masks]).astype(np.uint8)  # (2, H, W)
        kp = None if pose is None or masks is None else np.stack(pose)  # (2, P, 17, 3)
        with torch.inference_mode():
            pair = next(iter_flow(np.stack([a, b]), model=net, size=max(a.shape[:2]), device=device,
                                  masks=labels, progress=False, camera="homography" if camera else "off",
                                  keypoints=kp, refine=refine,
                                  zoom="auto" if zoom else "off"))
        return MethodFlow(world=pair.world.transpose(1, 2, 0).astype(np.float32),  # (2, H, W) -> (H, W, 2)
                          local=pair.local.transpose(1, 2, 0).astype(np.float32),
                          subject_velocity=pair.subject_velocity.astype(np.float32),
                          camera=None if pair.camera is None else pair.camera.transpose(1, 2, 0))

    label = (label or name) + ("" if camera else "+nocam") + {"off": REFINE_SUFFIX, "search": SEARCH_SUFFIX}.get(
        refine, "") + (ZOOM_SUFFIX if zoom else "")
    return FlowMethod(name=label, fn=run, human_centric=True, needs_masks=True,
                      uses_pose=True, info={"kind": "hmore model", "weights": desc, "device": device,
                                            "camera compensation": "homography" if camera else "off",
                                            "refinement": {"off": "off", "search": "DIS search, census fusion and "
                                                           "variational inside people"}.get(
                                                               refine, "variational inside people"),
                                            "small people": "enlarged second pass" if zoom else "off",
                                            "subject motion": "pelvis of the pose track (median without one)"})


# ---- flow files -------------------------------------------------------------------------------------------------


def write_flo(path: str | Path, flow: np.ndarray) -> Path:
    """Write a Middlebury ``.flo`` file: float32 magic 202021.25, int32 width, int32 height, (H, W, 2) float32."""
    from hmore.io.atomic import atomic_path

    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    path = Path(path)
    with atomic_path(path, suffix=".flo") as tmp, open(tmp, "wb") as fh:
        np.array([FLO_MAGIC], "<f4").tofile(fh)
        np.array([flow.shape[1], flow.shape[0]], "<i4").tofile(fh)
        flow.astype("<f4").tofile(fh)
    return path


def read_flo(path: str | Path) -> np.ndarray:
    """Read a Middlebury ``.flo`` file into (H, W, 2) float32.

    Raises:
        InputError: missing file, wrong magic number, impossible size, or truncated data.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"flow file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read flow file {path}: {exc}") from None
    if len(raw) < 12:
        raise InputError(f"{path}: not a .flo file (only {len(raw)} bytes)")
    magic = float(np.frombuffer(raw[:4], "<f4")[0])
    if magic != FLO_MAGIC:
        raise InputError(f"{path}: not a .flo file (magic {magic!r}, expected {FLO_MAGIC})")
    w, h = (int(v) for v in np.frombuffer(raw[4:12], "<i4"))
    if w <= 0 or h <= 0 or w > 100_000 or h > 100_000:
        raise InputError(f"{path}: impossible flow size {w}x{h}")
    need = 12 + 8 * w * h
    if len(raw) < need:
        raise InputError(f"{path}: truncated .flo file ({len(raw)} bytes, {need} needed for {w}x{h})")
    return np.frombuffer(raw[12:need], "<f4").reshape(h, w, 2).astype(np.float32)


def read_flow_file(path: str | Path) -> np.ndarray:
    """A flow file: ``.flo`` -> (H, W, 2); ``.npy`` -> (H, W, 2) or (N, H, W, 2) float32."""
    path = Path(path)
    if path.suffix.lower() == ".flo":
        return read_flo(path)
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise InputError(f"flow file not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read flow file {path}: {exc}") from None
        if arr.ndim not in (3, 4) or arr.shape[-1] != 2:
            raise InputError(f"{path}: flow must be (H, W, 2) or (N, H, W, 2), got {arr.shape}")
        return arr.astype(np.float32)
    raise InputError(f"{path}: unknown flow file type (use .flo or .npy)")


def _files(spec: str) -> FlowMethod:
    from hmore.io.video import natural_key

    root = Path(spec)
    if not root.exists():
        raise InputError(f"flow files not found: {root}")
    if root.is_dir():
        files = sorted((p for p in root.iterdir() if p.suffix.lower() in (".flo", ".npy")),
                       key=lambda p: natural_key(p.name))
        if not files:
            raise InputError(f"{root}: no .flo or .npy files")
        flows: list[np.ndarray] | np.ndarray = files  # read lazily
    else:
        arr = read_flow_file(root)
        flows = arr[None] if arr.ndim == 3 else arr
    state = {"i": 0}

    def run(a: np.ndarray, b: np.ndarray, masks: np.ndarray | None) -> MethodFlow:
        i = state["i"]
        if i >= len(flows):
            raise InputError(f"{root}: {len(flows)} flows given but the benchmark needs more pairs")
        state["i"] += 1
        item = flows[i]
        f = read_flow_file(item) if isinstance(item, Path) else item
        if f.ndim == 4:
            f = f[0]
        if f.shape[:2] != a.shape[:2]:
            raise InputError(f"{root}: flow {i} is {f.shape[1]}x{f.shape[0]}, the frames are "
                             f"{a.shape[1]}x{a.shape[0]}")
        return MethodFlow(world=np.asarray(f, np.float32))

    return FlowMethod(name=f"file:{root.name}", fn=run, sequential=True, info={"kind": "flow files", "path": spec})


# ---- registry ---------------------------------------------------------------------------------------------------


def list_methods() -> list[str]:
    """Names accepted by :func:`create_method` (plus ``file:PATH``, ``MODEL=WEIGHTS`` and the ``+cam`` / ``+nocam``
    suffixes)."""
    from hmore.registry import list_models

    return [*BASELINES, *(m for m in list_models("hmore_flow*"))]


def create_method(spec: str, *, weights: str | None = None, device: str = "cpu") -> FlowMethod:
    """Build the method named by ``spec`` (see the module docstring).

    Args:
        spec: ``dis``, ``farneback``, ``dis_mask``, ``zero``, a registered flow model name (optionally
            ``name=WEIGHTS``), or ``file:PATH``; ``+cam`` / ``+nocam`` turn camera compensation on / off.
        weights: weights for an hmore model when ``spec`` has none.
        device: torch device of hmore models.

    Raises:
        UsageError: an unknown name.
        InputError: missing flow or weights files.
        MethodUnavailable: an hmore model without weights.
    """
    base, camera, refine, zoom = spec, None, "variational", False
    if base.endswith(ZOOM_SUFFIX) and not spec.startswith("file:"):
        base, zoom = base[: -len(ZOOM_SUFFIX)], True
    for suffix, mode in ((REFINE_SUFFIX, "off"), (SEARCH_SUFFIX, "search")):
        if base.endswith(suffix) and not spec.startswith("file:"):
            base, refine = base[: -len(suffix)], mode
    for suffix in CAMERA_SUFFIXES:
        if base.endswith(suffix) and not spec.startswith("file:"):
            base, camera = base[: -len(suffix)], suffix == "+cam"
    if refine != "variational" and (base in BASELINES or base.startswith("file:")):
        raise UsageError(f"{REFINE_SUFFIX if refine == 'off' else SEARCH_SUFFIX} applies to hmore models only, "
                         f"not {base!r}")
    if zoom and (base in BASELINES or base.startswith("file:")):
        raise UsageError(f"{ZOOM_SUFFIX} applies to hmore models only, not {base!r}")
    if base in ("dis", "farneback", "dis_mask"):
        fn = _farneback if base == "farneback" else _dis()
        info = {"kind": "OpenCV Farneback"} if base == "farneback" else {"kind": "OpenCV DIS", "preset": "medium"}
        if camera:
            fn = _compensated(fn)
            info["camera compensation"] = "homography fitted to its own flow (hmore.flow.camera)"
        if base == "dis_mask":
            fn = _masked(fn)
            info["kind"] = "OpenCV DIS x person mask"
        return FlowMethod(name=base + ("+cam" if camera else ""), fn=fn, human_centric=base == "dis_mask",
                          needs_masks=base == "dis_mask" or bool(camera), info=info)
    if base == "zero":
        if camera is not None:
            raise UsageError("zero flow has no camera to compensate: use 'zero'")
        return FlowMethod(name="zero", fn=_zero, human_centric=True, info={"kind": "zero flow"})
    if spec.startswith("file:"):
        return _files(spec[len("file:"):])
    name, _, w = base.partition("=")
    # weights named in the spec label the row with their file stem, so several weights of one model can be compared
    label = f"{name}={Path(w).stem}" if w else None
    return _hmore(name, w or weights, device, camera=camera is not False, label=label, refine=refine, zoom=zoom)
