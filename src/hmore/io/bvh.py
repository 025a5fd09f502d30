"""BVH motion capture: a reader, forward kinematics in metres, and the CMU hierarchy mapped onto H36M-17 / COCO-17.

Conventions:

* **End Sites are kept** as extra leaf joints named ``"<parent>_End"`` with no channels, so their positions (the head
  top, toe and finger tips) come out of :meth:`Bvh.forward_kinematics` like any other joint.
* A joint's local transform is ``T(translation) @ R(c1) @ R(c2) @ R(c3)`` with the rotation channels in file order
  (``Zrotation Xrotation Yrotation`` means ``Rz @ Rx @ Ry``), angles in degrees; a child's position is
  ``p_parent + R_parent_global @ translation``. The translation of a joint **with position channels is those
  channels** (its OFFSET is only the rest value), of a joint without them its OFFSET. This is what exporters that
  write position channels on every joint mean: the Bandai-Namco files repeat each joint's OFFSET in its position
  channels and give the root (``Hips``, OFFSET = its rest place) its current place there, so adding OFFSET and
  channels would double every bone. ``positions="add"`` gives the other reading (OFFSET + channels). The two agree
  for the common files whose only position channels are the root's with a zero OFFSET (CMU).
* BVH files are unitless. :data:`UNITS` lists the known ones; ``scale=None`` picks the unit whose factor makes the
  skeleton's vertical span (lowest to highest joint, End Sites included; the larger of the rest pose's and the first
  frame's, as some rigs rest lying along an axis) closest to 1.45 m, the joint span of an adult (foot joints to head
  top). The CMU files (the "3ds Max friendly" conversion of the CMU ASF data, whose offsets equal the ASF bone
  lengths) are in the ASF unit: the CMU FAQ (mocap.cs.cmu.edu/faqs.php) gives ``(1.0 / 0.45) * 2.54 / 100 =
  0.056444`` m per unit. Subject 131 then has a rest span of 24.2 units = 1.37 m,
  legs (hip to ankle) of 0.80 m, its pelvis 0.86 m and head top 1.45 m above the floor while standing, and it walks
  at about 1.1 m/s. The head top is lower than a 1.6 m stature would put it because the CMU spine chain is short
  (hips to head top 0.5 m); the legs, 0.80 m = 0.49 x stature for a 1.63 m person, the pelvis height and the walking
  speed all agree with the FAQ factor, while inches would make a 0.6 m person and metres a 24 m one.
* Files read from ``.gz`` paths are gunzipped first.
* World frame: the BVH's own axes (y up for CMU and most exporters), which are hmore's (y up).
"""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hmore.errors import InputError

log = logging.getLogger(__name__)

#: Metres per BVH unit for the units ``scale=`` accepts by name.
UNITS: dict[str, float] = {
    "m": 1.0,
    "cm": 0.01,
    "mm": 0.001,
    "inch": 0.0254,
    "cmu": 0.0254 / 0.45,  # CMU ASF/AMC: ":units length 0.45" = 1/0.45 inch per unit
}
#: Rest-pose joint span (lowest to highest joint) that the automatic unit aims at, metres.
TYPICAL_SPAN_M = 1.45

_AXES = {"X": 0, "Y": 1, "Z": 2}
_CHANNELS = {f"{a}{kind}" for a in "XYZ" for kind in ("position", "rotation")}


def _axis_rotation(axis: int, deg: np.ndarray) -> np.ndarray:
    """(F, 3, 3) right-handed rotations about axis 0/1/2 by ``deg`` degrees (F,)."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[:, axis, axis] = 1.0
    r[:, i, i] = c
    r[:, j, j] = c
    r[:, i, j] = -s
    r[:, j, i] = s
    return r


@dataclass(frozen=True)
class Bvh:
    """A parsed BVH file.

    Attributes:
        names: joint names in file order (End Sites as ``"<parent>_End"``).
        parents: parent index of each joint (-1 for the root).
        offsets: (J, 3) rest offsets from the parent, file units.
        channels: per joint, its channel names in file order (``()`` for End Sites).
        frame_time: seconds per frame.
        motion: (F, C) float64 channel values, C = total channel count, angles in degrees.
        source: file path (or the ``name`` given to :func:`parse_bvh`).
        is_end_site: per joint, whether it is an End Site.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    frame_time: float
    motion: np.ndarray
    source: str = "<string>"
    is_end_site: tuple[bool, ...] = field(default=())

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def channel_starts(self) -> tuple[int, ...]:
        """Column of each joint's first channel in :attr:`motion`."""
        starts, c = [], 0
        for ch in self.channels:
            starts.append(c)
            c += len(ch)
        return tuple(starts)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"{self.source}: no joint named {name!r}") from None

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions of the rest pose (offsets only, no channels), file units."""
        pos = np.zeros((self.num_joints, 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] + (pos[p] if p >= 0 else 0.0)
        return pos

    def auto_scale(self) -> tuple[str, float]:
        """The unit (name, metres per unit) that makes the rest-pose span closest to :data:`TYPICAL_SPAN_M`."""
        rest = self.rest_positions()
        first = self.forward_kinematics(scale=1.0, frames=[0])[0] if self.num_frames else rest
        span = max(float(np.ptp(rest[:, 1])), float(np.ptp(first[:, 1])))
        if span <= 0:
            span = float(np.ptp(rest, axis=0).max())
        if span <= 0:
            raise InputError(f"{self.source}: the rest pose has no extent; pass scale= explicitly")
        name = min(UNITS, key=lambda u: abs(np.log(span * UNITS[u] / TYPICAL_SPAN_M)))
        return name, UNITS[name]

    def resolve_scale(self, scale: float | str | None) -> float:
        """Metres per file unit: a number as given, a unit name from :data:`UNITS`, or None for :meth:`auto_scale`."""
        if scale is None:
            name, value = self.auto_scale()
            log.debug("%s: units guessed as %s (%.5f m per unit)", self.source, name, value)
            return value
        if isinstance(scale, str):
            if scale not in UNITS:
                raise ValueError(f"unknown BVH unit {scale!r}; known: {', '.join(UNITS)}")
            return UNITS[scale]
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number of metres per unit, got {scale!r}")
        return float(scale)

    def forward_kinematics(
        self, *, scale: float | str | None = None, frames: slice | np.ndarray | list[int] = slice(None),
        positions: str = "replace",
    ) -> np.ndarray:
        """Joint positions of the selected frames.

        Args:
            scale: metres per file unit, a unit name from :data:`UNITS`, or None to guess (see the module doc).
            frames: which frames (a slice or indices).
            positions: ``"replace"`` (a joint's position channels are its translation) or ``"add"`` (OFFSET +
                position channels); see the module doc.

        Returns:
            (F, J, 3) float64 positions in metres, the file's axes (y up), End Sites included.
        """
        if positions not in ("replace", "add"):
            raise ValueError(f"positions must be 'replace' or 'add', got {positions!r}")
        s = self.resolve_scale(scale)
        mot = self.motion[frames]  # (F, C)
        if mot.ndim == 1:
            mot = mot[None]
        f = mot.shape[0]
        rot = np.zeros((f, self.num_joints, 3, 3))  # global rotation of each joint's frame
        pos = np.zeros((f, self.num_joints, 3))
        for j, (p, chans, start) in enumerate(zip(self.parents, self.channels, self.channel_starts)):
            local_r = np.broadcast_to(np.eye(3), (f, 3, 3))
            trans = np.broadcast_to(self.offsets[j], (f, 3)).copy()
            if positions == "replace" and any(ch.endswith("position") for ch in chans):
                trans[:] = 0.0
            for k, ch in enumerate(chans):
                axis = _AXES[ch[0]]
                if ch.endswith("rotation"):
                    local_r = local_r @ _axis_rotation(axis, mot[:, start + k])
                else:
                    trans[:, axis] += mot[:, start + k]
            if p < 0:
                rot[:, j] = local_r
                pos[:, j] = trans
            else:
                rot[:, j] = rot[:, p] @ local_r
                pos[:, j] = pos[:, p] + np.einsum("fij,fj->fi", rot[:, p], trans)
        return pos * s


# ---- parsing -----------------------------------------------------------------------------------------------------
class _Tokens:
    """Whitespace tokens of the HIERARCHY part with their 1-based line numbers."""

    def __init__(self, lines: list[str], start: int, where: str) -> None:
        self.items: list[tuple[str, int]] = []
        self.where = where
        self.end_line = start
        for i in range(start, len(lines)):
            if lines[i].strip().upper().startswith("MOTION"):
                self.end_line = i
                break
            for tok in re.sub(r"([{}])", r" \1 ", lines[i]).split():
                self.items.append((tok, i + 1))
        else:
            self.end_line = len(lines)
        self.pos = 0

    def error(self, line: int, what: str) -> InputError:
        return InputError(f"{self.where}:{line}: {what}")

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            last = self.items[-1][1] if self.items else 1
            raise self.error(last, f"unexpected end of HIERARCHY, expected {what}")
        tok = self.items[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok.upper() != word.upper():
            raise self.error(line, f"expected {word!r}, found {tok!r}")
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise self.error(line, f"expected a number ({what}), found {tok!r}") from None


def _parse_joint(tk: _Tokens, name: str, parent: int, out: dict[str, list]) -> None:
    idx = len(out["names"])
    out["names"].append(name)
    out["parents"].append(parent)
    out["end"].append(False)
    tk.expect("{")
    tk.expect("OFFSET")
    out["offsets"].append([tk.number(f"{name} OFFSET x"), tk.number(f"{name} OFFSET y"), tk.number(f"{name} OFFSET z")])
    word, line = tk.next("CHANNELS")
    if word.upper() != "CHANNELS":
        raise tk.error(line, f"expected CHANNELS for joint {name!r}, found {word!r}")
    n_tok, n_line = tk.next("channel count")
    if not n_tok.isdigit() or int(n_tok) not in (3, 6):
        raise tk.error(n_line, f"joint {name!r}: channel count must be 3 or 6, found {n_tok!r}")
    chans = []
    for _ in range(int(n_tok)):
        ch, ch_line = tk.next("a channel name")
        norm = ch[0].upper() + ch[1:].lower() if ch else ch
        if norm not in _CHANNELS:
            raise tk.error(
                ch_line, f"joint {name!r}: expected {n_tok} channel names (Xposition ... Zrotation), found {ch!r}"
            )
        chans.append(norm)
    if len({c[0] for c in chans if c.endswith("rotation")}) != sum(c.endswith("rotation") for c in chans):
        raise tk.error(ch_line, f"joint {name!r}: repeated rotation axis in {chans}")
    out["channels"].append(tuple(chans))
    while True:
        tok, line = tk.next("JOINT, End Site or '}'")
        up = tok.upper()
        if up == "}":
            return
        if up == "JOINT":
            child, _ = tk.next("joint name")
            _parse_joint(tk, child, idx, out)
        elif up == "END":
            tk.expect("Site")
            tk.expect("{")
            tk.expect("OFFSET")
            off = [tk.number("End Site OFFSET x"), tk.number("End Site OFFSET y"), tk.number("End Site OFFSET z")]
            tk.expect("}")
            out["names"].append(f"{name}_End")
            out["parents"].append(idx)
            out["offsets"].append(off)
            out["channels"].append(())
            out["end"].append(True)
        else:
            raise tk.error(line, f"inside joint {name!r}: expected JOINT, End Site or '}}', found {tok!r}")


def parse_bvh(text: str, name: str = "<string>") -> Bvh:
    """Parse BVH text. ``name`` is used as the source in error messages (``name:line: what is wrong``).

    Raises:
        InputError: missing HIERARCHY or MOTION, bad channel counts or names, non-numeric values, frame rows of the
            wrong length or fewer rows than ``Frames:`` announces.
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip().upper() != "HIERARCHY":
        raise InputError(f"{name}:{min(i + 1, max(len(lines), 1))}: expected 'HIERARCHY' at the start of a BVH file")
    tk = _Tokens(lines, i + 1, name)
    out: dict[str, list] = {"names": [], "parents": [], "offsets": [], "channels": [], "end": []}
    tok, line = tk.next("ROOT")
    if tok.upper() != "ROOT":
        raise tk.error(line, f"expected 'ROOT', found {tok!r}")
    root_name, _ = tk.next("root name")
    _parse_joint(tk, root_name, -1, out)
    if tk.pos < len(tk.items):
        tok, line = tk.items[tk.pos]
        raise tk.error(line, f"unexpected {tok!r} after the root joint (one ROOT per file)")
    m = tk.end_line  # 0-based index of the MOTION line
    if m >= len(lines):
        raise InputError(f"{name}:{len(lines)}: missing 'MOTION' section")
    n_chan = sum(len(c) for c in out["channels"])

    def header(k: int, label: str) -> str:
        if k >= len(lines) or not lines[k].strip().lower().startswith(label.lower()):
            found = lines[k].strip() if k < len(lines) else "end of file"
            raise InputError(f"{name}:{k + 1}: expected '{label} ...', found {found!r}")
        return lines[k].split(":", 1)[1].strip()

    frames_txt = header(m + 1, "Frames:")
    if not frames_txt.isdigit():
        raise InputError(f"{name}:{m + 2}: 'Frames:' needs a whole number, found {frames_txt!r}")
    n_frames = int(frames_txt)
    ft_txt = header(m + 2, "Frame Time:")
    try:
        frame_time = float(ft_txt)
    except ValueError:
        raise InputError(f"{name}:{m + 3}: 'Frame Time:' needs a number, found {ft_txt!r}") from None
    if not frame_time > 0:
        raise InputError(f"{name}:{m + 3}: 'Frame Time:' must be positive, found {ft_txt!r}")
    rows: list[list[str]] = []
    row_lines: list[int] = []
    for k in range(m + 3, len(lines)):
        parts = lines[k].split()
        if not parts:
            continue
        if len(rows) == n_frames:
            log.warning("%s:%d: more frame rows than 'Frames: %d'; the rest is ignored", name, k + 1, n_frames)
            break
        if len(parts) != n_chan:
            raise InputError(f"{name}:{k + 1}: frame row has {len(parts)} values, the hierarchy has {n_chan} channels")
        rows.append(parts)
        row_lines.append(k + 1)
    if len(rows) < n_frames:
        raise InputError(
            f"{name}:{len(lines)}: 'Frames: {n_frames}' (line {m + 2}) but only {len(rows)} frame rows follow"
        )
    try:
        motion = np.array(rows, dtype=np.float64).reshape(n_frames, n_chan)  # (F, C)
    except ValueError:
        for parts, ln in zip(rows, row_lines):
            for v in parts:
                try:
                    float(v)
                except ValueError:
                    raise InputError(f"{name}:{ln}: non-numeric value {v!r} in a frame row") from None
        raise
    if not np.isfinite(motion).all():
        bad = int(np.argwhere(~np.isfinite(motion))[0, 0])
        raise InputError(f"{name}:{row_lines[bad]}: NaN or infinite value in a frame row")
    return Bvh(
        names=tuple(out["names"]),
        parents=tuple(out["parents"]),
        offsets=np.asarray(out["offsets"], dtype=np.float64).reshape(-1, 3),
        channels=tuple(out["channels"]),
        frame_time=frame_time,
        motion=motion,
        source=name,
        is_end_site=tuple(out["end"]),
    )


def bvh_stem(path: str | Path) -> str:
    """A BVH file's name without ``.bvh`` / ``.bvh.gz``: ``"walk_001.bvh.gz"`` -> ``"walk_001"``."""
    name = Path(path).name
    for suffix in (".gz", ".bvh"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def read_bvh(path: str | Path) -> Bvh:
    """Read a BVH file, gzipped when its name ends in ``.gz`` (see :func:`parse_bvh`).

    Raises:
        InputError: a missing, unreadable (or not gzip when named ``.gz``) or malformed file.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                text = fh.read().decode("utf-8", errors="replace")
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read BVH file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_bvh(text, name=str(path))


# ---- mapping onto H36M-17 / COCO-17 ------------------------------------------------------------------------------
# Candidate names per role, first match wins. The CMU BVHs come in two namings: the "3ds Max friendly" one
# (LeftHip/LeftKnee/LeftAnkle, lowerneck/Neck/Head, LeftCollar/LeftShoulder/LeftElbow/LeftWrist) and the
# "MotionBuilder friendly" one (LeftUpLeg/LeftLeg/LeftFoot, Neck/Neck1/Head, LeftShoulder/LeftArm/LeftForeArm/
# LeftHand). In the latter LeftShoulder is the collar bone, so the arm names are tried first. The Bandai-Namco
# skeleton (Hips, Spine, Chest, Neck, Head, Shoulder_L = collar, UpperArm_L, LowerArm_L, Hand_L, UpperLeg_L,
# LowerLeg_L, Foot_L, Toes_L and _R) maps by its own names; its Neck sits at the base of the neck like H36M's Thorax.
_ROLES: dict[str, tuple[str, ...]] = {
    "left_hip": ("LeftUpLeg", "LeftHip", "LeftThigh", "LeftUpperLeg", "lfemur", "UpperLeg_L"),
    "left_knee": ("LeftLeg", "LeftKnee", "LeftShin", "LeftLowerLeg", "ltibia", "LowerLeg_L"),
    "left_ankle": ("LeftFoot", "LeftAnkle", "lfoot", "Foot_L"),
    "right_hip": ("RightUpLeg", "RightHip", "RightThigh", "RightUpperLeg", "rfemur", "UpperLeg_R"),
    "right_knee": ("RightLeg", "RightKnee", "RightShin", "RightLowerLeg", "rtibia", "LowerLeg_R"),
    "right_ankle": ("RightFoot", "RightAnkle", "rfoot", "Foot_R"),
    "neck": ("lowerneck", "Neck", "neck"),
    "head": ("Head", "head"),
    "left_shoulder": ("LeftArm", "LeftUpperArm", "LeftShoulder", "lhumerus", "UpperArm_L"),
    "left_elbow": ("LeftForeArm", "LeftLowerArm", "LeftElbow", "lradius", "LowerArm_L"),
    "left_wrist": ("LeftHand", "LeftWrist", "lwrist", "Hand_L"),
    "right_shoulder": ("RightArm", "RightUpperArm", "RightShoulder", "rhumerus", "UpperArm_R"),
    "right_elbow": ("RightForeArm", "RightLowerArm", "RightElbow", "rradius", "LowerArm_R"),
    "right_wrist": ("RightHand", "RightWrist", "rwrist", "Hand_R"),
}
# Face points in the head frame (u up the head, f forward, l to the person's left), in units of the head segment
# length s = |head top - head joint| (about 9 cm for CMU subjects): nose 0.35 s up and 0.9 s forward; eyes 0.6 s up,
# 0.7 s forward, 0.35 s to each side; ears 0.45 s up, 0.75 s to each side.
_FACE: dict[str, tuple[float, float, float]] = {  # (up, forward, left)
    "nose": (0.35, 0.9, 0.0),
    "left_eye": (0.6, 0.7, 0.35),
    "right_eye": (0.6, 0.7, -0.35),
    "left_ear": (0.45, 0.0, 0.75),
    "right_ear": (0.45, 0.0, -0.75),
}


def _roles(bvh: Bvh) -> dict[str, int]:
    lower = {n.lower(): i for i, n in enumerate(bvh.names)}
    found: dict[str, int] = {}
    missing = []
    for role, cands in _ROLES.items():
        idx = next((lower[c.lower()] for c in cands if c.lower() in lower), None)
        if idx is None:
            missing.append(f"{role} (one of {', '.join(cands)})")
        else:
            found[role] = idx
    if missing:
        raise InputError(f"{bvh.source}: unknown BVH hierarchy, no joint for: {'; '.join(missing)}")
    return found


# Head top for rigs whose Head has no End Site, or one at the Head joint itself (Bandai-Namco: OFFSET 0 0 0): placed
# on the neck -> head line at HEAD_TOP_PER_LEG x the leg length (hip-knee + knee-ankle) from the neck, H36M's mean
# |Head - Thorax| / leg (0.18-0.23 on S1/Walking, S9/Walking, S11/Eating, S5/Directions 1). The face is then built on
# a head segment of HEAD_SEGMENT_PER_LEG x leg below that top, the CMU rigs' |Head_End - Head| / leg (0.115).
HEAD_TOP_PER_LEG = 0.21
HEAD_SEGMENT_PER_LEG = 0.115
_MIN_HEAD_SEGMENT_PER_LEG = 0.02  # a shorter head End Site counts as missing


def _leg_length(pos: np.ndarray, r: dict[str, int]) -> np.ndarray:
    """(F, 1) mean of the two legs' hip-knee + knee-ankle lengths."""
    legs = [np.linalg.norm(pos[:, r[f"{s}_knee"]] - pos[:, r[f"{s}_hip"]], axis=-1)
            + np.linalg.norm(pos[:, r[f"{s}_ankle"]] - pos[:, r[f"{s}_knee"]], axis=-1) for s in ("left", "right")]
    return (0.5 * (legs[0] + legs[1]))[:, None]


def _head_frame(pos: np.ndarray, bvh: Bvh, r: dict[str, int]) -> tuple[np.ndarray, ...]:
    """Head joint (or the estimated head-segment base), head top, head size s (F, 1) and unit axes up, forward,
    left (F, 3) each."""
    head = pos[:, r["head"]]
    tops = [j for j, p in enumerate(bvh.parents) if p == r["head"]]
    top = pos[:, tops[0]] if tops else head
    leg = _leg_length(pos, r)
    if np.median(np.linalg.norm(top - head, axis=-1) / np.maximum(leg[:, 0], 1e-12)) < _MIN_HEAD_SEGMENT_PER_LEG:
        neck_up = head - pos[:, r["neck"]]
        neck_up /= np.maximum(np.linalg.norm(neck_up, axis=-1, keepdims=True), 1e-12)
        top = pos[:, r["neck"]] + HEAD_TOP_PER_LEG * leg * neck_up
        head = top - HEAD_SEGMENT_PER_LEG * leg * neck_up
    up = top - head
    s = np.linalg.norm(up, axis=-1, keepdims=True)
    up = up / np.maximum(s, 1e-9)
    left = pos[:, r["left_shoulder"]] - pos[:, r["right_shoulder"]]
    fwd = np.cross(left, up)
    fwd /= np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9)
    left = np.cross(up, fwd)
    return head, top, s, up, fwd, left


def _check_positions(positions: np.ndarray, bvh: Bvh) -> np.ndarray:
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (bvh.num_joints, 3):
        raise ValueError(f"positions must be (F, {bvh.num_joints}, 3) for {bvh.source}, got {p.shape}")
    return p


def _face_point(name: str, head: np.ndarray, s: np.ndarray, axes: tuple[np.ndarray, ...]) -> np.ndarray:
    a, b, c = _FACE[name]
    up, fwd, left = axes
    return head + s * (a * up + b * fwd + c * left)


def to_h36m(positions: np.ndarray, bvh: Bvh) -> np.ndarray:
    """Map FK positions ``(F, J, 3)`` of a CMU-style hierarchy onto H36M-17 ``(F, 17, 3)``.

    root = mid-hip, belly = mid(root, neck), neck = base of the neck, nose derived from the head (see ``_FACE``),
    head = head top (the Head's End Site). Raises :class:`InputError` naming the joints an unknown hierarchy lacks.
    """
    p = _check_positions(positions, bvh)
    r = _roles(bvh)
    head, top, s, up, fwd, left = _head_frame(p, bvh, r)
    out = np.zeros((p.shape[0], 17, 3))
    lh, rh = p[:, r["left_hip"]], p[:, r["right_hip"]]
    out[:, 0] = 0.5 * (lh + rh)
    out[:, 1], out[:, 2], out[:, 3] = rh, p[:, r["right_knee"]], p[:, r["right_ankle"]]
    out[:, 4], out[:, 5], out[:, 6] = lh, p[:, r["left_knee"]], p[:, r["left_ankle"]]
    out[:, 8] = p[:, r["neck"]]
    out[:, 7] = 0.5 * (out[:, 0] + out[:, 8])
    out[:, 9] = _face_point("nose", head, s, (up, fwd, left))
    out[:, 10] = top
    for k, role in zip(range(11, 17), ("left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow",
                                        "right_wrist")):
        out[:, k] = p[:, r[role]]
    return out


def to_coco(positions: np.ndarray, bvh: Bvh) -> np.ndarray:
    """Map FK positions ``(F, J, 3)`` onto COCO-17 ``(F, 17, 3)``; eyes, ears and nose derived from the head frame."""
    p = _check_positions(positions, bvh)
    r = _roles(bvh)
    head, _, s, up, fwd, left = _head_frame(p, bvh, r)
    from hmore.skeleton import COCO17

    out = np.zeros((p.shape[0], 17, 3))
    for k, name in enumerate(COCO17.joints):
        if name in _FACE:
            out[:, k] = _face_point(name, head, s, (up, fwd, left))
        else:
            out[:, k] = p[:, r[name]]
    return out
