"""A CASIA-B-like generated gait set: identities with their own body and gait, 10 sequences per view (NM 1-6, BG 1-2,
CL 1-2), silhouettes cropped as OpenGait does (64 x 44) and the flow channels cropped with them.

Layout of a set folder (everything written atomically; building again skips what is on disk, so a build can be
stopped and resumed, or split over processes with ``shard=(i, n)``):

* ``set.json``: the :class:`GaitSetConfig` (a folder holds one set; another config is an error).
* ``base/<key>.npz`` per sequence (``key`` = ``001-nm-01-036``: subject, type, index, view): ``sil`` (T, 64, 44)
  uint8, ``valid`` (T,) bool (frames with a silhouette), ``boxes`` (T, 6) float32 crop boxes, and the flow channels of
  the ``dis`` and ``exact`` sources, each (T-1, 2, 64, 44) int8 in steps of ``hmore.flowfeed.FLOW_STEP`` pixels of the
  crop; ``meta`` (JSON).
* ``flows/<model>-<sha12>/<key>.npz`` per sequence: ``world`` and ``local`` of one H-MoRe flow model. New weights get a
  new folder; the base files are reused (the RGB frames are not stored: the generator re-renders them exactly).

Each sequence's person keeps the identity's body and walking style (``hmore.synth.identity``); with
``appearance="sequence"`` (default) the clothes' colours and textures are drawn anew for every sequence, so only
shape and motion identify people. Pair t's flow is cropped with frame t's box.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmore.errors import UsageError
from hmore.flowfeed import (
    BuildSummary,
    FlowModel,
    Prepared,
    build_clip_cache,
    load_clip_cache,
    open_set_config,
    quantise_flow,
)
from hmore.gait.silhouette import SIL_HEIGHT, SIL_WIDTH, CropBox, crop_box, crop_silhouette

log = logging.getLogger(__name__)

GAIT_TYPES = ("nm", "bg", "cl")
CONDITION_OF = {"nm": "normal", "bg": "bag", "cl": "coat"}
SIX_VIEWS = (0.0, 36.0, 72.0, 108.0, 144.0, 180.0)
CASIA_VIEWS = tuple(float(v) for v in range(0, 181, 18))


@dataclass(frozen=True)
class GaitSetConfig:
    """A generated gait set (CASIA-B-like).

    Attributes:
        identities: number of people; subjects 1..N.
        test_identities: the last ones form the test split (CASIA-B: the first 74 train, the other 50 test).
        views: view angles (degrees; 0 walks towards the camera, 90 side view, 180 walks away).
        nm, bg, cl: sequences per view in the normal, bag and coat conditions (CASIA-B: 6, 2, 2).
        frames: frames per sequence (CASIA-B's are ~100; 16 at 20 fps span most of a gait cycle and keep the flow
            computation within a CPU budget).
        fps: frame rate (CASIA-B: 25).
        size: rendered (H, W); the person is about 0.75 H tall.
        seed: the set's seed (identities, sequences).
        camera_motion: ``static`` (CASIA-B), ``pan`` or ``track``.
        distractors: independently moving background objects.
        appearance: ``sequence`` (new clothes colours/textures per sequence) or ``identity`` (the person's own).
        elevation_deg: camera tilt.
    """

    identities: int = 60
    test_identities: int = 30
    views: tuple[float, ...] = SIX_VIEWS
    nm: int = 6
    bg: int = 2
    cl: int = 2
    frames: int = 16
    fps: float = 20.0
    size: tuple[int, int] = (96, 128)
    seed: int = 0
    camera_motion: str = "static"
    distractors: int = 0
    appearance: str = "sequence"
    elevation_deg: float = 8.0

    def __post_init__(self) -> None:
        if self.identities < 2 or not 1 <= self.test_identities < self.identities:
            raise UsageError(f"a gait set needs >= 2 identities and 1 <= test_identities < identities, got "
                             f"{self.identities} and {self.test_identities}")
        if len(self.views) < 1 or any(not 0.0 <= v <= 180.0 for v in self.views) or len(set(self.views)) != len(
                self.views):
            raise UsageError(f"views must be distinct angles within 0-180 degrees, got {self.views}")
        if self.nm < 1 or self.bg < 0 or self.cl < 0:
            raise UsageError(f"sequence counts must be nm >= 1, bg >= 0, cl >= 0, got {self.nm}, {self.bg}, "
                             f"{self.cl}")
        if self.frames < 3:
            raise UsageError(f"frames must be >= 3, got {self.frames}")
        if self.appearance not in ("sequence", "identity"):
            raise UsageError(f"appearance must be 'sequence' or 'identity', got {self.appearance!r}")

    @property
    def train_subjects(self) -> tuple[int, ...]:
        return tuple(range(1, self.identities - self.test_identities + 1))

    @property
    def test_subjects(self) -> tuple[int, ...]:
        return tuple(range(self.identities - self.test_identities + 1, self.identities + 1))

    def counts(self) -> dict[str, int]:
        return {"nm": self.nm, "bg": self.bg, "cl": self.cl}


# Presets: "full" is the set of the README's tables; "casia11" has CASIA-B's 11 views; "quick" runs end to end in
# minutes (hmore bench gait --quick); "test" is for the test suite.
PRESETS: dict[str, GaitSetConfig] = {
    "full": GaitSetConfig(),
    "casia11": GaitSetConfig(views=CASIA_VIEWS),
    "quick": GaitSetConfig(identities=12, test_identities=6, views=(0.0, 90.0, 180.0), frames=12, size=(64, 96)),
    "test": GaitSetConfig(identities=4, test_identities=2, views=(0.0, 90.0), nm=5, bg=1, cl=1, frames=4,
                          size=(48, 64)),
}


def gait_preset(name: str) -> GaitSetConfig:
    if name not in PRESETS:
        raise UsageError(f"unknown gait set preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class GaitSequence:
    """One sequence: ``subject`` (1-based), ``type`` (nm/bg/cl), ``index`` (1-based within the type), ``view``."""

    subject: int
    type: str
    index: int
    view: float

    @property
    def type_name(self) -> str:
        """CASIA-B's sequence type name, e.g. ``nm-01``."""
        return f"{self.type}-{self.index:02d}"

    @property
    def view_name(self) -> str:
        """CASIA-B's view folder name, e.g. ``036``."""
        return f"{int(round(self.view)):03d}"

    @property
    def key(self) -> str:
        return f"{self.subject:03d}-{self.type_name}-{self.view_name}"


def sequences(config: GaitSetConfig, subjects: Iterable[int] | None = None) -> list[GaitSequence]:
    """Every sequence of the set (or of ``subjects``), in subject, type, index, view order."""
    subs = range(1, config.identities + 1) if subjects is None else subjects
    return [GaitSequence(subject=s, type=t, index=i, view=float(v))
            for s in subs for t in GAIT_TYPES for i in range(1, config.counts()[t] + 1) for v in config.views]


def sequence_seed(config: GaitSetConfig, seq: GaitSequence) -> int:
    """The render seed of a sequence (a function of the set's seed and the sequence only)."""
    ss = np.random.SeedSequence([int(config.seed) & 0xFFFFFFFF, seq.subject, GAIT_TYPES.index(seq.type), seq.index,
                                 int(round(seq.view * 10)), 0x6A17])
    return int(ss.generate_state(1)[0] >> 1)


def sequence_identity(config: GaitSetConfig, seq: GaitSequence) -> Any:
    """The person of a sequence: the subject's body and gait; clothes drawn per sequence (``appearance``)."""
    from hmore.synth.identity import sample_identity

    person = sample_identity(seq.subject, seed=config.seed)
    if config.appearance == "identity":
        return person
    outfit = sample_identity(seq.subject, seed=sequence_seed(config, seq))
    return dataclasses.replace(person, top=outfit.top, bottom=outfit.bottom, shoes=outfit.shoes,
                               top_pattern=outfit.top_pattern, bottom_pattern=outfit.bottom_pattern,
                               texture_seed=outfit.texture_seed)


def render_sequence(config: GaitSetConfig, seq: GaitSequence) -> Any:
    """The generated clip of a sequence (:class:`hmore.synth.clip.Clip`); the same arguments, the same bytes."""
    from hmore.synth.clip import render_clip

    return render_clip(size=tuple(config.size), num_frames=config.frames, subjects=1, seed=sequence_seed(config, seq),
                       actions=["walk"], conditions=[CONDITION_OF[seq.type]], views=[seq.view],
                       identities=[sequence_identity(config, seq)], camera_motion=config.camera_motion,
                       distractors=config.distractors, fps=config.fps, elevation_deg=config.elevation_deg)


# ---- cropping ---------------------------------------------------------------------------------------------------


def _box_row(box: CropBox | None) -> np.ndarray:
    if box is None:
        return np.full(6, -1.0, np.float32)
    return np.array([box.top, box.bottom, box.width, box.left, box.sx, box.sy], np.float32)


def _box_of_row(row: np.ndarray) -> CropBox | None:
    if row[0] < 0:
        return None
    return CropBox(top=int(row[0]), bottom=int(row[1]), width=int(row[2]), left=int(row[3]), sx=float(row[4]),
                   sy=float(row[5]))


def crop_masks(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, H, W) person masks -> silhouettes (T, 64, 44) uint8, valid (T,) bool, boxes (T, 6) float32."""
    boxes = [crop_box(m) for m in masks]
    sil = np.stack([crop_silhouette(m, b) for m, b in zip(masks, boxes)])
    return sil, np.array([b is not None for b in boxes]), np.stack([_box_row(b) for b in boxes])


def crop_flows(flows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(T-1, 2, H, W) float flow -> (T-1, 2, 64, 44) int8 (quantised), pair t cropped with frame t's box."""
    out = np.zeros((flows.shape[0], 2, SIL_HEIGHT, SIL_WIDTH), np.int8)
    for t in range(flows.shape[0]):
        box = _box_of_row(boxes[t])
        if box is not None:
            out[t] = quantise_flow(box.apply(flows[t].transpose(1, 2, 0), flow=True).transpose(2, 0, 1))
    return out


# ---- building ----------------------------------------------------------------------------------------------------


def open_set(root: str | Path, config: GaitSetConfig | None = None) -> GaitSetConfig:
    """The config of the gait set in ``root``; with ``config``, create ``set.json`` or check that it matches."""
    return open_set_config(root, GaitSetConfig, config, what="gait set", hint="hmore bench gait")


def prepare_sequence(config: GaitSetConfig, seq: GaitSequence, clip: Any) -> Prepared:
    """Silhouettes, valid frames and crop boxes of a rendered sequence, and the crop of its flows."""
    sil, valid, boxes = crop_masks((clip.masks > 0).astype(np.uint8))
    meta = {"sequence": dataclasses.asdict(seq), "seed": sequence_seed(config, seq),
            "person_px": clip.meta["camera"]["person_px"], "generator": clip.meta["generator"]}
    return Prepared(arrays={"sil": sil, "valid": valid, "boxes": boxes},
                    crop_flow=lambda f: crop_flows(f, boxes), meta=meta)


def build_gait_set(root: str | Path, config: GaitSetConfig, *, flow_model: FlowModel | None = None,
                   shard: tuple[int, int] = (0, 1), progress: bool | None = None,
                   subjects: Sequence[int] | None = None) -> BuildSummary:
    """Generate the set's base files and (with ``flow_model``) its H-MoRe flows; resumable and shardable.

    Args:
        root: the set folder.
        config: the set (checked against ``root/set.json``).
        flow_model: an H-MoRe model whose world/local flows are cached under ``flows/<its key>/``.
        shard: ``(i, n)``: this process does the sequences whose position modulo n is i.
        progress: progress bar (None: only on a terminal).
        subjects: only these subjects (default all).
    """
    open_set(root, config)
    by_key = {s.key: s for s in sequences(config, subjects)}
    return build_clip_cache(root, list(by_key), render=lambda k: render_sequence(config, by_key[k]),
                            prepare=lambda k, clip: prepare_sequence(config, by_key[k], clip),
                            flow_model=flow_model, shard=shard, progress=progress, desc="gait set")


# ---- loading ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaitArrays:
    """Sequences in memory: per sequence, silhouettes (T, 64, 44) uint8, valid (T,) bool and the requested flow
    channels (T-1, 2, 64, 44) int8 (``hmore.flowfeed.FLOW_STEP`` pixels per unit).

    Attributes:
        sequences: the sequences, in order.
        sil, valid: one array per sequence.
        flows: channel name -> one array per sequence.
    """

    sequences: list[GaitSequence]
    sil: list[np.ndarray]
    valid: list[np.ndarray]
    flows: dict[str, list[np.ndarray]]

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, keep: Sequence[int]) -> GaitArrays:
        return GaitArrays(sequences=[self.sequences[k] for k in keep], sil=[self.sil[k] for k in keep],
                          valid=[self.valid[k] for k in keep],
                          flows={c: [v[k] for k in keep] for c, v in self.flows.items()})


def load_gait_set(root: str | Path, *, channels: Sequence[str] = (), flow_key: str | None = None,
                  subjects: Iterable[int] | None = None, progress: bool | None = None) -> GaitArrays:
    """Load the sequences of ``subjects`` (default all) with the flow ``channels`` (``dis``, ``exact_world``,
    ``exact_local`` from the base files; ``world``, ``local`` from ``flows/<flow_key>/``).

    Raises:
        InputError: missing files (the set or its flows are not built yet), or a flow channel without ``flow_key``.
    """
    config = open_set(root)
    seqs = sequences(config, subjects)
    got = load_clip_cache(root, [s.key for s in seqs], arrays=("sil", "valid"), channels=channels,
                          flow_key=flow_key, progress=progress, desc="load gait set")
    return GaitArrays(sequences=seqs, sil=got["sil"], valid=got["valid"], flows={c: got[c] for c in channels})
