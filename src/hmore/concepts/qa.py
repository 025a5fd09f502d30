"""Motion question answering data: a BABEL-QA-style reader, a QA set generated from known labels, a word tokenizer.

**BABEL-QA** (docs/humocon.md): ``questions.json`` is a list (or ``{"questions": [...]}``) of records with
``babel_id``, ``question``, ``answer``, ``query_type`` (action / direction / body_part), ``relation_type``
(no_relation / before / after / in_between), ``question_id`` and ``program``; optional ``segment`` /
``start`` + ``end`` (frames) say which part of the motion the question is about. Motions (when a folder is given)
are ``<babel_id>.npy`` or ``.npz`` (key ``joints``) arrays (T, 22, 3) SMPL joints or (T, 17, 3) H36M-17, metres,
y up, at 30 Hz (:func:`read_babel_motion` maps SMPL-22 to H36M-17).

**Generated QA** (:func:`generate_qa`): questions whose answers are computed from labelled skeleton sequences
(Bandai-Namco, NW-UCLA, procedural motions; the held-out split of each stays held out):

* ``action``: what the person does (the sequence's action label);
* ``body_part``: which body part moves most (left arm, right arm, both arms, legs), from the joints' speeds
  relative to the root;
* ``left_right``: which hand is used (clear one-sided arm motion) or which way the person turns (heading change
  over 45 degrees), from the motion;
* ``repetitions``: how many times the main movement repeats (peaks of the most moving joint's main direction,
  asked only when the peaks are regular), answers 1, 2, 3, 4 or "5 or more";
* ``before_after``: two sequences played one after the other: what happens before / after the named one.

Answers are computed from the motion itself where possible (body part, side, count), so a label that disagrees
with the motion does not make a wrong answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hmore.concepts.motion import MODEL_FPS, SkeletonSequence, resample_joints
from hmore.errors import InputError
from hmore.io.jsonfile import read_json

QUERY_TYPES = ("action", "body_part", "left_right", "repetitions", "before_after")
BODY_PARTS = ("left arm", "right arm", "both arms", "legs")
COUNT_ANSWERS = ("1", "2", "3", "4", "5 or more")
L_ARM, R_ARM = (11, 12, 13), (14, 15, 16)
LEGS = (2, 3, 5, 6)
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class QAItem:
    """One question about a motion.

    Attributes:
        question, answer: text.
        query_type: e.g. ``"action"`` (see :data:`QUERY_TYPES`; BABEL-QA's own types when read from it).
        relation_type: ``"no_relation"``, ``"before"``, ``"after"`` or ``"in_between"``.
        motion_id: which motion (a BABEL id or a sequence name).
        segment: (start, end) frames at the motion's rate the question is about, or None.
        question_id: id.
        joints: (T, 17, 3) y-up motion at MODEL_FPS when loaded, else None.
        has_root: whether the motion's root trajectory is meaningful.
        split: ``"train"`` or ``"test"``.
    """

    question: str
    answer: str
    query_type: str
    relation_type: str = "no_relation"
    motion_id: str = ""
    segment: tuple[int, int] | None = None
    question_id: str = ""
    joints: np.ndarray | None = field(default=None, repr=False)
    has_root: bool = True
    split: str = "train"


# ---- BABEL-QA --------------------------------------------------------------------------------------------------
def read_babel_qa(path: str | Path, *, motions: str | Path | None = None, split: str = "train") -> list[QAItem]:
    """Read a BABEL-QA ``questions.json`` (and the motions, when a folder is given).

    Raises:
        InputError: missing file, bad JSON, a record without question/answer/query_type, a missing motion.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"BABEL-QA questions not found: {path}")
    data = read_json(path, what="BABEL-QA questions file")
    records = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a list of questions (or {{'questions': [...]}})")
    items = []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not all(k in r for k in ("question", "answer", "query_type")):
            raise InputError(f"{path}: question {i} lacks question, answer or query_type")
        seg = r.get("segment")
        if seg is None and "start" in r and "end" in r:
            seg = (r["start"], r["end"])
        joints = None
        mid = str(r.get("babel_id", ""))
        if motions is not None:
            joints = read_babel_motion(Path(motions), mid)
        items.append(QAItem(question=str(r["question"]), answer=str(r["answer"]), query_type=str(r["query_type"]),
                            relation_type=str(r.get("relation_type", "no_relation")), motion_id=mid,
                            segment=None if seg is None else (int(seg[0]), int(seg[1])),
                            question_id=str(r.get("question_id", i)), joints=joints, split=split))
    return items


# SMPL-22 joints averaged into each H36M-17 joint (SMPL order: 0 pelvis, 1/2 L/R hip, 4/5 knees, 7/8 ankles,
# 3/6/9 spine, 12 neck, 15 head, 16/17 shoulders, 18/19 elbows, 20/21 wrists).
SMPL22_TO_H36M17: tuple[tuple[int, ...], ...] = (
    (0,), (2,), (5,), (8,), (1,), (4,), (7,), (3, 6), (9, 12), (12, 15), (15,), (16,), (18,), (20,), (17,), (19,),
    (21,),
)


def read_babel_motion(folder: Path, babel_id: str, *, fps: float = 30.0) -> np.ndarray:
    """``<folder>/<babel_id>.npy`` or ``.npz`` (key ``joints``) -> (T, 17, 3) H36M-17 at MODEL_FPS."""
    for suffix in (".npy", ".npz"):
        f = folder / f"{babel_id}{suffix}"
        if f.is_file():
            try:
                arr = np.load(f, allow_pickle=False)
                arr = arr["joints"] if suffix == ".npz" else arr
            except (OSError, KeyError, ValueError) as exc:
                raise InputError(f"cannot read motion {f}: {exc}") from None
            arr = np.asarray(arr, np.float64)
            if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[1] not in (17, 22):
                raise InputError(f"{f}: expected (T, 22, 3) SMPL or (T, 17, 3) H36M joints, got {arr.shape}")
            if arr.shape[1] == 22:
                m = np.zeros((17, 22))
                for i, src in enumerate(SMPL22_TO_H36M17):
                    m[i, list(src)] = 1.0 / len(src)
                arr = np.einsum("ds,tsc->tdc", m, arr)
            return resample_joints(arr, fps)
    raise InputError(f"motion of {babel_id!r} not found in {folder} (.npy or .npz)")


# ---- measurements from the motion --------------------------------------------------------------------------------
def _root_relative(joints: np.ndarray) -> np.ndarray:
    j = np.asarray(joints, np.float64)
    return j - j[:, :1]


def part_energy(joints: np.ndarray) -> dict[str, float]:
    """Mean speed (m per frame) of the left arm, right arm and leg joints relative to the root."""
    r = _root_relative(joints)
    speed = np.linalg.norm(np.diff(r, axis=0), axis=-1) if len(r) > 1 else np.zeros((1, 17))
    return {"left": float(speed[:, L_ARM].mean()), "right": float(speed[:, R_ARM].mean()),
            "legs": float(speed[:, LEGS].mean())}


def moving_part(joints: np.ndarray, *, ratio: float = 2.0) -> str:
    """Which of :data:`BODY_PARTS` moves most (one arm when it moves ``ratio`` x more than the other)."""
    e = part_energy(joints)
    if e["legs"] >= max(e["left"], e["right"]):
        return "legs"
    if e["left"] >= ratio * e["right"]:
        return "left arm"
    if e["right"] >= ratio * e["left"]:
        return "right arm"
    return "both arms"


def heading_change(joints: np.ndarray) -> float:
    """Turn of the body's facing from the first to the last frame, radians, positive = to the person's left."""
    j = np.asarray(joints, np.float64)
    left = (j[:, 4] - j[:, 1]) + (j[:, 11] - j[:, 14])
    yaw = np.unwrap(np.arctan2(-left[:, 2], left[:, 0]))
    return float(yaw[-1] - yaw[0])


def used_side(joints: np.ndarray, *, ratio: float = 2.5, turn: float = math.radians(45)) -> tuple[str, str] | None:
    """(``"hand"`` or ``"turn"``, ``"left"`` / ``"right"``) when the motion is clearly one-sided, else None."""
    h = heading_change(joints)
    if abs(h) >= turn:
        return "turn", "left" if h > 0 else "right"
    e = part_energy(joints)
    if max(e["left"], e["right"]) > 0.5 * e["legs"]:
        if e["left"] >= ratio * e["right"]:
            return "hand", "left"
        if e["right"] >= ratio * e["left"]:
            return "hand", "right"
    return None


def count_repetitions(joints: np.ndarray, *, fps: float = MODEL_FPS, max_cv: float = 0.35) -> int | None:
    """Cycles of the main movement: peaks of the most moving joint's displacement along its main direction
    (smoothed; prominence >= 30 % of the range; at least 0.3 s apart); None when the peaks are irregular (spacing
    coefficient of variation above ``max_cv``) or the joint barely moves."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    r = _root_relative(joints)
    if len(r) < 8:
        return None
    var = r.var(axis=0).sum(axis=-1)  # (17,)
    j = int(np.argmax(var))
    x = r[:, j] - r[:, j].mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    sig = gaussian_filter1d(x @ vt[0], sigma=1.0)
    span = float(sig.max() - sig.min())
    if span < 0.05:  # metres: no clear movement
        return None
    if abs(sig[np.argmax(np.abs(sig))]) != sig.max():
        sig = -sig  # count the side of the largest excursion
    peaks, _ = find_peaks(sig, prominence=0.3 * span, distance=max(1, int(0.3 * fps)))
    if len(peaks) == 0:
        return None
    if len(peaks) >= 3:
        gaps = np.diff(peaks)
        if gaps.std() / gaps.mean() > max_cv:
            return None
    return int(len(peaks))


def count_answer(n: int) -> str:
    return COUNT_ANSWERS[min(n, 5) - 1]


def action_words(label: str) -> str:
    """A label as words: ``"wave-right-hand"`` -> ``"wave right hand"``, ``"pick up with one hand"`` kept."""
    return re.sub(r"[-_]+", " ", label).strip()


# ---- the generated set -------------------------------------------------------------------------------------------
_TEMPLATES = {
    "action": ("what is the person doing", "what action does the person perform", "which action is shown",
               "what does the person do in this motion"),
    "body_part": ("which body part moves the most", "which part of the body is moving most",
                  "what body part does the person mainly move"),
    "left_right_hand": ("which hand does the person use left or right", "is it the left or the right hand",
                        "which side is the moving hand on"),
    "left_right_turn": ("which way does the person turn left or right", "does the person turn left or right",
                        "in which direction does the person turn"),
    "repetitions": ("how many times does the person repeat the movement", "how many repetitions are there",
                    "how often is the movement repeated"),
    "before": ("what does the person do before they {other}", "what happens before the person {other}"),
    "after": ("what does the person do after they {other}", "what happens after the person {other}"),
}


def _question(rng: np.random.Generator, key: str, **kw: str) -> str:
    options = _TEMPLATES[key]
    return options[int(rng.integers(len(options)))].format(**kw)


def questions_for(seq: SkeletonSequence, rng: np.random.Generator) -> list[QAItem]:
    """The single-motion questions whose answers this sequence supports."""
    j = seq.joints
    base = dict(motion_id=seq.name, joints=j, has_root=seq.has_root, split=seq.split)
    items = [QAItem(question=_question(rng, "action"), answer=action_words(seq.action), query_type="action", **base),
             QAItem(question=_question(rng, "body_part"), answer=moving_part(j), query_type="body_part", **base)]
    side = used_side(j)
    if side is not None:
        items.append(QAItem(question=_question(rng, f"left_right_{side[0]}"), answer=side[1],
                            query_type="left_right", **base))
    reps = count_repetitions(j)
    if reps is not None:
        items.append(QAItem(question=_question(rng, "repetitions"), answer=count_answer(reps),
                            query_type="repetitions", **base))
    return items


def concatenate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Motion ``b`` played after ``a``: b moved on the ground so its first root position is a's last."""
    shift = a[-1, 0] - b[0, 0]
    shift[1] = 0.0
    return np.concatenate([a, b + shift], axis=0)


def generate_qa(seqs: Sequence[SkeletonSequence], *, seed: int = 0, composites_per_sequence: float = 1.0,
                max_part_frames: int = 120) -> list[QAItem]:
    """The generated QA set of labelled sequences (see the module docstring); each item keeps its sequence's split
    (a composite uses two sequences of the same split and source).

    Args:
        seqs: labelled sequences at MODEL_FPS.
        seed: question wording, composites and crops.
        composites_per_sequence: before/after questions per sequence (on average).
        max_part_frames: each sequence is cut to at most this many frames (its middle) first.
    """
    rng = np.random.default_rng([seed, 0x0A])
    usable = []
    for s in seqs:
        if not s.action or s.num_frames < 8:
            continue
        if s.num_frames > max_part_frames:
            start = (s.num_frames - max_part_frames) // 2
            s = replace(s, joints=s.joints[start : start + max_part_frames])
        usable.append(s)
    items: list[QAItem] = []
    for s in usable:
        items += questions_for(s, rng)
    groups: dict[tuple[str, str], list[SkeletonSequence]] = {}
    for s in usable:
        groups.setdefault((s.source, s.split), []).append(s)
    for (_, split), group in groups.items():
        if len({g.action for g in group}) < 2:
            continue
        n = int(round(composites_per_sequence * len(group)))
        for _ in range(n):
            a = group[int(rng.integers(len(group)))]
            b = group[int(rng.integers(len(group)))]
            if a.action == b.action:
                continue
            joints = concatenate(a.joints, b.joints)
            ask_before = bool(rng.random() < 0.5)
            other, answer = (b, a) if ask_before else (a, b)
            q = _question(rng, "before" if ask_before else "after", other=action_words(other.action))
            seg = (0, a.num_frames) if ask_before else (a.num_frames, a.num_frames + b.num_frames)
            items.append(QAItem(question=q, answer=action_words(answer.action), query_type="before_after",
                                relation_type="before" if ask_before else "after",
                                motion_id=f"{a.name}+{b.name}", segment=seg, joints=joints,
                                has_root=a.has_root and b.has_root, split=split))
    return items


# ---- tokenizer ---------------------------------------------------------------------------------------------------
def words(text: str) -> list[str]:
    """Lower-case alphanumeric words of a question."""
    return _WORD.findall(text.lower())


def build_vocab(questions: Sequence[str], *, min_count: int = 1) -> tuple[str, ...]:
    """``<pad>``, ``<unk>`` and every word seen at least ``min_count`` times, sorted."""
    from hmore.models.concepts.qa import PAD_WORD, UNK_WORD

    counts: dict[str, int] = {}
    for q in questions:
        for w in words(q):
            counts[w] = counts.get(w, 0) + 1
    return (PAD_WORD, UNK_WORD, *sorted(w for w, c in counts.items() if c >= min_count))


def encode_question(question: str, vocab: Sequence[str], *, max_words: int) -> np.ndarray:
    """(max_words,) int64 word ids (1 for unknown words, 0 padding)."""
    index = {w: i for i, w in enumerate(vocab)}
    ids = [index.get(w, 1) for w in words(question)][:max_words]
    out = np.zeros(max_words, np.int64)
    out[: len(ids)] = ids
    return out


def segment_tokens(frame_ids: np.ndarray, segment: int, *, max_tokens: int) -> np.ndarray:
    """(max_tokens,) concept ids, one per ``segment`` frames (the segment's first frame), -1 padding; a longer
    motion is sampled evenly down to ``max_tokens``."""
    tok = np.asarray(frame_ids)[::segment]
    if len(tok) > max_tokens:
        tok = tok[np.linspace(0, len(tok) - 1, max_tokens).round().astype(int)]
    out = np.full(max_tokens, -1, np.int64)
    out[: len(tok)] = tok
    return out


__all__ = ["BODY_PARTS", "COUNT_ANSWERS", "QAItem", "QUERY_TYPES", "action_words", "build_vocab", "concatenate",
           "count_repetitions", "encode_question", "generate_qa", "heading_change", "moving_part", "part_energy",
           "questions_for", "read_babel_motion", "read_babel_qa", "segment_tokens", "used_side", "words"]
