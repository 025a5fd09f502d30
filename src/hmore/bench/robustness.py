"""Generated held-out clip sets for judging flow: a mixed set and robustness sets with one knob per level.

Seeds: every clip here uses generator seed ``BENCH_SEED_BASE + 10_000 * set_id + clip_index`` with
``BENCH_SEED_BASE = HELD_OUT_SEED_BASE + 10**9`` (= 3 147 483 648): above the training seeds (< 2**31, see
:mod:`hmore.flow.data`) and apart from the trainer's own evaluation clips. Within a robustness set, every level
uses the *same* seeds (the same people, actions and scenes), so the levels differ only by the knob.

Sets (``name``: levels):

* ``overlap``: two people, subject overlap 0, 10, 20, 30, 40 % (``render_clip(overlap=...)``), static camera.
* ``background``: ``static`` (no distractor), ``distractors`` (4 moving objects), ``pan`` (camera pan + 2
  distractors), ``track`` (camera follows the people + 2 distractors).
* ``clothing``: ``normal``, ``bag``, ``coat`` (every subject wears it).
* ``small``: the same scene seen from a camera 1, 1.5, 2 and 3 times farther than the closest that fits the person
  (``render_clip(camera_distance=...)``), the image size unchanged: people about 1, 2/3, 1/2 and 1/3 as tall.
* ``motion``: one person, static camera, the same motion sampled at 30, 15, 10 and 6 frames per second: displacements
  per pair of x1, x2, x3 and x5 (fast motion, or a low frame rate).
* ``synth-heldout``: a mixed set (1-2 people, any action, static/pan camera, 0-3 distractors, overlap 0-30 %).

Clips are rendered at 30 frames per second unless a set says otherwise or ``fps`` is given (``set_specs(fps=...)``
overrides every level's rate, ``motion`` included).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hmore.errors import UsageError

log = logging.getLogger(__name__)

BENCH_SEED_BASE = 2**31 + 10**9  # HELD_OUT_SEED_BASE (2**31) + 10**9; render_clip keeps seeds modulo 2**32

OVERLAP_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4)
SMALL_DISTANCES = (1.0, 1.5, 2.0, 3.0)
# Robustness sets draw actions from these (whole-body motions of a few pixels per frame), so that the knob, not a
# near-still pose, decides the outcome; synth-heldout draws from every action, like training.
MOVING_ACTIONS = ("walk", "run", "jump", "kick", "punch", "wave_both")
MOTION_FPS = (30.0, 15.0, 10.0, 6.0)

__all__ = ["BENCH_SEED_BASE", "ROBUSTNESS_SETS", "ClipSpec", "bench_seed", "iter_set", "set_specs"]

ROBUSTNESS_SETS = ("overlap", "background", "clothing", "small", "motion")
_SET_IDS = {"synth-heldout": 0, "overlap": 1, "background": 2, "clothing": 3, "small": 4, "motion": 5}


@dataclass(frozen=True)
class ClipSpec:
    """One generated clip to render.

    Attributes:
        name: unique name (set/level/index).
        set_name: the set (``synth-heldout``, ``overlap``, ...).
        level: the level label within the set (``"0.2"``, ``"coat"``, ...; ``"all"`` for synth-heldout).
        level_value: the level as a number for curves (overlap fraction, person height...), or its index.
        seed: generator seed (see the module docstring).
        kwargs: the remaining :func:`hmore.synth.clip.render_clip` arguments.
    """

    name: str
    set_name: str
    level: str
    level_value: float
    seed: int
    kwargs: dict[str, Any] = field(default_factory=dict)

    def render(self, *, num_frames: int) -> Any:
        """Render the clip (a :class:`hmore.synth.clip.Clip`); fewer people when they do not fit."""
        from hmore.synth.clip import render_clip

        kw = dict(self.kwargs)
        while True:
            try:
                return render_clip(num_frames=num_frames, seed=self.seed, **kw)
            except UsageError:
                if kw.get("subjects", 1) <= 1:
                    raise
                kw["subjects"] -= 1
                log.info("%s: %d subjects do not fit, trying %d", self.name, kw["subjects"] + 1, kw["subjects"])


def bench_seed(set_name: str, index: int) -> int:
    """Generator seed of clip ``index`` of a set (never used in training)."""
    return BENCH_SEED_BASE + 10_000 * _SET_IDS[set_name] + int(index)


def set_specs(set_name: str, *, clips: int = 2, size: tuple[int, int] = (192, 256),
              fps: float | None = None) -> list[ClipSpec]:
    """The clips of a set, level by level.

    Args:
        set_name: ``synth-heldout`` or one of :data:`ROBUSTNESS_SETS`.
        clips: clips per level.
        size: (H, W) image size.
        fps: render every clip at this frame rate (default: 30, or the ``motion`` set's levels).

    Raises:
        UsageError: unknown set, a count that is not positive or a frame rate that is not positive.
    """
    if set_name not in _SET_IDS:
        raise UsageError(f"unknown generated set {set_name!r}; known: {', '.join(_SET_IDS)}, robustness")
    if clips < 1:
        raise UsageError(f"clips per level must be >= 1, got {clips}")
    if fps is not None and not fps > 0:
        raise UsageError(f"fps must be > 0, got {fps}")
    h, w = (int(v) for v in size)
    specs: list[ClipSpec] = []

    def add(level: str, value: float, i: int, **kw: Any) -> None:
        kw.setdefault("size", (h, w))
        if fps is not None:
            kw["fps"] = float(fps)
        if set_name != "synth-heldout":
            kw.setdefault("actions", MOVING_ACTIONS)
        specs.append(ClipSpec(name=f"{set_name}/{level}/{i}", set_name=set_name, level=level, level_value=value,
                              seed=bench_seed(set_name, i), kwargs=kw))

    for i in range(clips):
        if set_name == "synth-heldout":
            rng = np.random.default_rng([bench_seed(set_name, i), 1])
            subjects = int(rng.integers(1, 3))
            add("all", 0.0, i, subjects=subjects, camera_motion=("static", "pan")[int(rng.integers(2))],
                distractors=int(rng.integers(0, 4)),
                overlap=float(rng.uniform(0.0, 0.3)) if subjects > 1 else 0.0)
        elif set_name == "overlap":
            for ov in OVERLAP_LEVELS:
                add(f"{round(100 * ov)}%", ov, i, subjects=2, overlap=ov, distractors=0, camera_motion="static")
        elif set_name == "background":
            add("static", 0, i, subjects=1, distractors=0, camera_motion="static")
            add("distractors", 1, i, subjects=1, distractors=4, camera_motion="static")
            add("pan", 2, i, subjects=1, distractors=2, camera_motion="pan")
            add("track", 3, i, subjects=1, distractors=2, camera_motion="track")
        elif set_name == "clothing":
            for j, cond in enumerate(("normal", "bag", "coat")):
                add(cond, j, i, subjects=1, conditions=[cond], distractors=1, camera_motion="static")
        elif set_name == "motion":
            for rate in MOTION_FPS:
                add(f"{rate:g}fps", 30.0 / rate, i, subjects=1, distractors=0, camera_motion="static", fps=rate)
        else:  # small
            for d in SMALL_DISTANCES:
                add(f"x{d:g} far", d, i, camera_distance=d, subjects=1, distractors=1, camera_motion="static")
    return specs


def iter_set(name: str, *, clips: int = 2, size: tuple[int, int] = (192, 256),
             fps: float | None = None) -> Iterator[ClipSpec]:
    """Clip specs of ``name``: a set, ``robustness`` (all robustness sets) or ``robustness:SET``."""
    if name == "robustness":
        for s in ROBUSTNESS_SETS:
            yield from set_specs(s, clips=clips, size=size, fps=fps)
    elif name.startswith("robustness:"):
        yield from set_specs(name.split(":", 1)[1], clips=clips, size=size, fps=fps)
    else:
        yield from set_specs(name, clips=clips, size=size, fps=fps)
