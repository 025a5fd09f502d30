"""Held-out 3D motions seen by fixed, seeded virtual cameras: lifting test sets of people and mocap a lifter has not
trained on (``hmore bench lift --data bandai`` / ``--data generated``).

Each motion (a Bandai-Namco take, a generated clip) is seen whole by one static camera drawn from
:class:`hmore.lift.data.CameraConfig` (distance 3-12 m, elevation -5..35 degrees, field of view 40-80 degrees, the
person off the image centre; for a motion that travels, no nearer than 4x the farthest the root goes from its mean
position, so a walk stays in the picture) with a seed of its own (``[seed, 31, k]`` for the motion's index ``k``),
so the set is the same for every model and every run. The input is what a COCO detector gives: the body's COCO-17
keypoints (Anny's regressor on Anny bodies, else those built on the skeleton by
:func:`hmore.lift.data.h36m_to_coco`) converted to H36M-17 (:func:`hmore.skeleton.convert`), projected, normalised
by the image size, with MotionBERT's 2D noise on every motion (one noise keyframe every 3 frames, jitter and
outliers, confidence from the offset; no joints dropped). Targets: the motion's H36M-17 joints in the camera frame,
root-relative, metres. The arrays are a :class:`hmore.lift.h36m.LiftArrays` with the single input source ``"det"``,
scored by :func:`hmore.lift.h36m.evaluate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hmore.lift.data import CameraConfig, MotionClip, MotionPool, NoiseConfig, SampleConfig, virtual_batch
from hmore.lift.h36m import LiftArrays

SOURCE = "det"
NOISE_EVERY = 3  # frames between two noise keyframes (MotionBERT: 27 keyframes over 81-frame clips)
KEEP_IN_VIEW = 0.25  # the nearest camera is 4x as far as the root goes from its mean position


@dataclass(frozen=True)
class ViewExample:
    """One motion seen by one camera: ``sequence`` (the motion's name), ``action`` and ``style`` labels (``""`` when
    the source has none), ``camera`` (the view's index) and ``num_frames``."""

    sequence: str
    action: str
    style: str
    camera: int
    num_frames: int


def view_arrays(clips: Sequence[MotionClip], *, labels: Sequence[tuple[str, str]], fps: float, seed: int = 0,
                camera: CameraConfig = CameraConfig(), noise: NoiseConfig = NoiseConfig()  # noqa: B008
                ) -> LiftArrays:
    """Inputs and targets of ``clips`` each seen by one fixed camera (see the module doc).

    Args:
        clips: world-frame motions (resampled to ``fps``).
        labels: (action, style) of each clip.
        fps: frame rate of the arrays.
        seed: seed of the cameras and the noise.
        camera: camera ranges.
        noise: 2D noise; ``keyframes`` is replaced by one every :data:`NOISE_EVERY` frames and every clip is noised.
    """
    if len(labels) != len(clips):
        raise ValueError(f"{len(clips)} clips but {len(labels)} labels")
    pool = MotionPool.from_clips(clips, fps=fps)
    xs, ys, examples = [], [], []
    for k, (a, b) in enumerate(zip(pool.offsets[:-1], pool.offsets[1:])):
        n = int(b - a)
        root = pool.joints[a:b, 0, ::2]  # (n, 2) horizontal path of the root
        reach = float(np.linalg.norm(root - root.mean(axis=0), axis=-1).max())
        near = max(camera.distance[0], reach / KEEP_IN_VIEW)  # a long walk stays in the picture
        cam = dataclasses.replace(camera, distance=(near, max(camera.distance[1], near + 9.0)))
        cfg = SampleConfig(camera=cam, flip_prob=0.0, input_from_coco=True,
                           noise=dataclasses.replace(noise, keyframes=max(1, n // NOISE_EVERY), noise_prob=1.0))
        x, y = virtual_batch(pool, np.array([a]), n, np.random.default_rng([seed, 31, k]), cfg)  # (1, n, 17, 3) each
        xs.append(x[0])
        ys.append(y[0])
        examples.append(ViewExample(sequence=pool.names[k], action=labels[k][0], style=labels[k][1], camera=0,
                                    num_frames=n))
    return LiftArrays(examples=tuple(examples), offsets=pool.offsets.copy(),
                      x={SOURCE: np.concatenate(xs) if xs else np.zeros((0, 17, 3), np.float32)},
                      y=np.concatenate(ys) if ys else np.zeros((0, 17, 3), np.float32))


def bandai_arrays(*, fps: float, seed: int = 0, root: str | None = None, limit: int | None = None) -> LiftArrays:
    """The held-out Bandai-Namco takes (:func:`hmore.data.bandai.is_held_out`), in index order (``limit``: the first
    n only, for tests), seen by fixed cameras; labels (action, style)."""
    from hmore.data import bandai

    takes = [t for t in bandai.load_index(root) if bandai.is_held_out(t)][:limit]
    return view_arrays([bandai.motion_clip(t) for t in takes], labels=[(t.action, t.style) for t in takes], fps=fps,
                       seed=seed)


#: Held-out generated people: identities never used in training (the recipes train on 0 .. n-1), another seed.
GENERATED_IDENTITIES = tuple(range(1000, 1008))
GENERATED_SEED = 1


def generated_arrays(*, body: str, fps: float, seed: int = 0, identities: Sequence[int] = GENERATED_IDENTITIES,
                     actions: Sequence[str] | None = None, num_frames: int = 150) -> LiftArrays:
    """Held-out generated identities (every action, one heading, motion seed :data:`GENERATED_SEED`) on ``body``
    (``"capsule"`` or ``"anny"``), seen by fixed cameras; labels (action, "")."""
    from hmore.lift.data import generated_clips

    clips = generated_clips(identities=identities, actions=actions, num_frames=num_frames, headings=1,
                            seed=GENERATED_SEED, fps=30.0, body=body)
    return view_arrays(clips, labels=[(c.name.split("/")[0], "") for c in clips], fps=fps, seed=seed)


__all__ = ["GENERATED_IDENTITIES", "SOURCE", "ViewExample", "bandai_arrays", "generated_arrays", "view_arrays"]
