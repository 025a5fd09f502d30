"""The bad-input catalogue: every subcommand of ``hmore`` fed bad inputs and faults, each run in its own process.

Each case is one ``hmore`` command line with what should happen: ``error`` (a non-zero exit and a one-line message
that names the cause: the case lists words of which one must appear), ``ok`` (exit 0) or ``warn`` (exit 0 with a
warning that names what was assumed). The table classifies every run:

- ``crash``: killed by a signal (SIGSEGV, SIGABRT ...), the worst;
- ``traceback``: a Python traceback reached the user;
- ``misleading``: refused, but the message does not name the real cause (or an ``ok`` case refused);
- ``silent``: an impossible value accepted without an error (or a ``warn`` case without its warning);
- ``incomplete``: a partial result counted as done, or a half-written file left behind (``.tmp``/``.part``);
- ``good``: what the case expects.

Fixtures are tiny and built in OUT/fixtures (generated clips, odd-sized videos, keypoint files, crafted pickles,
tiny run folders). Disk-full cases write into ``--full-dir`` (a small filesystem, e.g. a 200 kB tmpfs) when given,
else they run under a file-size limit (``RLIMIT_FSIZE``: writes fail with EFBIG). Every process runs under an 8 GB
address-space limit so that an absurd size fails instead of eating the machine's memory.

Usage: python benchmarks/bad_inputs.py [-o out/bad_inputs] [--only SUBSTRING] [--full-dir DIR] [--timeout 300]
Prints one line per case and the counts; writes OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PY = sys.executable
MEMORY_LIMIT = 8 << 30


@dataclass
class Case:
    """One command line and what it should do."""

    name: str
    argv: list[str]
    expect: str = "error"  # error | ok | warn | usage (exit 2 with the usage text) | either (ok, or a good error)
    needles: tuple[str, ...] = ()  # one of these (lower case) must be in the message (error) or stderr (warn)
    check: str = ""  # extra post-run check (see _check)
    disk_full: bool = False
    setup: str = ""  # special set-up (see _setup)
    out: str = ""  # output folder to inspect for stray files (relative to the scratch folder)
    cwd_files: list[str] = field(default_factory=list)


# ---- fixtures ---------------------------------------------------------------------------------------------------
def _video(path: Path, w: int, h: int, frames: int, *, codec: str = "ffv1", rgb: np.ndarray | None = None) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=30)
        s.width, s.height = w, h
        s.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        for i in range(frames):
            a = rgb[i] if rgb is not None else np.random.default_rng(i).integers(0, 255, (h, w, 3), np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _coco_results(frames: int, *, scale: float = 1.0, value: object = None) -> list[dict]:
    rng = np.random.default_rng(0)
    base = np.stack([rng.uniform(40, 200, 17), rng.uniform(20, 180, 17), np.ones(17)], 1)
    out = []
    for t in range(frames):
        kp = base + [t, 0, 0]
        kp[:, :2] *= scale
        flat = kp.ravel().tolist() if value is None else [value] * 51
        out.append({"image_id": t, "category_id": 1, "keypoints": flat, "score": 0.9})
    return out


class _Reduce:
    def __init__(self, fn: object, args: tuple) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return self.fn, self.args


def _op_str(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE


def dotted_payload(module: str, name: str, code: str) -> bytes:
    """A protocol-4 pickle that reaches ``eval`` through dotted STACK_GLOBAL names and evaluates ``code``.

    ``name`` is ``"<function>.__builtins__"`` (its builtins dict's ``get``) or ``"<class>.__getattribute__"``
    (``object.__getattribute__``, walked to ``numpy.dtypes._add_dtype_helper.__globals__["__builtins__"]``).
    """
    def glob(mod: str, attr: str) -> bytes:
        return _op_str(mod) + _op_str(attr) + b"\x93"  # STACK_GLOBAL

    tuple1, tuple2, reduce = b"\x85", b"\x86", b"R"
    p = b"\x80\x04"  # PROTO 4
    if name.endswith("__builtins__"):
        p += glob(module, name + ".get") + _op_str("eval") + tuple1 + reduce  # -> eval
    else:
        ga = glob(module, name)  # object.__getattribute__
        p += ga + ga + ga + glob("numpy.dtypes", "_add_dtype_helper") + _op_str("__globals__") + tuple2 + reduce
        p += _op_str("get") + tuple2 + reduce  # globals.get
        p += _op_str("__builtins__") + tuple1 + reduce  # the builtins dict
        p += _op_str("get") + tuple2 + reduce + _op_str("eval") + tuple1 + reduce  # -> eval
    return p + _op_str(code) + tuple1 + reduce + b"."  # eval(code), STOP


def _pyskl(clips: list[tuple[str, int, np.ndarray]], protocol: int = 4, dtype: type = np.float16) -> bytes:
    anns = [{"frame_dir": n, "label": lab, "img_shape": (180, 320), "original_shape": (180, 320),
             "total_frames": kp.shape[1], "keypoint": kp[..., :2].astype(dtype),
             "keypoint_score": kp[..., 2].astype(dtype)} for n, lab, kp in clips]
    data = {"split": {"train": [c[0] for c in clips], "test": [c[0] for c in clips]}, "annotations": anns}
    return pickle.dumps(data, protocol=protocol)


def _kp(frames: int, people: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = np.stack([rng.uniform(60, 260, (people, frames, 17)), rng.uniform(20, 170, (people, frames, 17)),
                   np.ones((people, frames, 17))], -1)
    return kp.astype(np.float32)  # (M, T, 17, 3)


def build_fixtures(root: Path) -> dict[str, Path]:
    """Write every input the cases use into ``root``; returns name -> path."""
    import hmore.synth as synth
    from hmore.io.atomic import save_npz_atomic

    root.mkdir(parents=True, exist_ok=True)
    f: dict[str, Path] = {}
    for w, h in ((1, 1), (16, 2000), (33, 17), (96, 128)):
        f[f"v{w}x{h}"] = _video(root / f"v_{w}x{h}.mkv", w, h, 4)
    clip = synth.render_clip(size=(180, 320), num_frames=6, subjects=1, seed=3, distractors=0)
    f["small"] = _video(root / "small.avi", 320, 180, 6, codec="mpeg4", rgb=clip.frames)
    good = synth.render_clip(size=(192, 256), num_frames=8, subjects=1, seed=5, distractors=0)
    f["good"] = _video(root / "good.mp4", 256, 192, 8, codec="mpeg4", rgb=good.frames)
    f["clip"] = good.save(root / "clip.npz")
    f["corrupt_video"] = root / "corrupt.mp4"
    f["corrupt_video"].write_bytes(np.random.default_rng(1).bytes(5000))
    f["empty_video"] = root / "empty.mp4"
    f["empty_video"].write_bytes(b"")
    data = f["good"].read_bytes()
    f["truncated_video"] = root / "truncated.mp4"
    f["truncated_video"].write_bytes(data[: len(data) // 3])
    # a folder of videos with one bad clip
    vids = root / "videos"
    vids.mkdir(exist_ok=True)
    shutil.copy(f["good"], vids / "a_good.mp4")
    (vids / "b_bad.mp4").write_bytes(np.random.default_rng(2).bytes(3000))
    shutil.copy(f["good"], vids / "c_good.mp4")
    f["videos"] = vids
    # image folders: grey frames, a corrupt PNG among good ones
    import cv2

    grey = root / "grey_frames"
    grey.mkdir(exist_ok=True)
    for i, fr in enumerate(good.frames[:3]):
        cv2.imwrite(str(grey / f"{i:03d}.png"), cv2.cvtColor(fr, cv2.COLOR_RGB2GRAY))
    f["grey_frames"] = grey
    bad_png = root / "bad_png_frames"
    bad_png.mkdir(exist_ok=True)
    for i, fr in enumerate(good.frames[:3]):
        cv2.imwrite(str(bad_png / f"{i:03d}.png"), fr[..., ::-1])
    (bad_png / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    f["bad_png_frames"] = bad_png
    # generated clips with problems
    z = dict(np.load(f["clip"], allow_pickle=False))
    save_npz_atomic(root / "clip_float64.npz", **{**z, "frames": z["frames"].astype(np.float64)})
    f["clip_float64"] = root / "clip_float64.npz"
    save_npz_atomic(root / "clip_nomasks.npz", **{k: v for k, v in z.items() if k != "masks"})
    f["clip_nomasks"] = root / "clip_nomasks.npz"
    # keypoint files
    kp_dir = root / "kp"
    kp_dir.mkdir(exist_ok=True)

    def js(name: str, obj: object) -> Path:
        p = kp_dir / name
        p.write_text(json.dumps(obj))
        f[p.stem] = p
        return p

    js("kp_good.json", _coco_results(12))
    js("kp_huge.json", _coco_results(12, scale=1e30))
    js("kp_text.json", _coco_results(12, value="abc"))
    gt = {"images": [{"id": t, "file_name": f"{t:06d}.jpg", "width": "wide", "height": 180} for t in range(12)],
          "annotations": [{"id": t, "image_id": t, "keypoints": r["keypoints"], "num_keypoints": 17}
                          for t, r in enumerate(_coco_results(12))], "categories": [{"id": 1}]}
    js("kp_strsize.json", gt)
    unh = _coco_results(12)
    for t, r in enumerate(unh):
        r["image_id"] = [t]
    js("kp_unhashable.json", unh)
    # PoseTrack val.json layout: two videos in one file
    pt_images, pt_anns = [], []
    for vid in ("000342", "014054"):
        for t in range(10):
            iid = int(f"1{vid}{t:04d}")
            pt_images.append({"id": iid, "file_name": f"images/val/{vid}_mpii_test/{t:06d}.jpg", "vid_id": vid,
                              "frame_id": iid, "nframes": 10, "width": 320, "height": 180})
            for person in range(2):
                r = _coco_results(10)[t]
                kp = np.asarray(r["keypoints"], float).reshape(17, 3)
                kp[:, 0] += 60 * person
                pt_anns.append({"id": len(pt_anns), "image_id": iid, "track_id": person, "category_id": 1,
                                "keypoints": kp.ravel().tolist(), "num_keypoints": 17})
    js("posetrack.json", {"images": pt_images, "annotations": pt_anns, "categories": [{"id": 1, "name": "person"}]})
    np.savez(kp_dir / "kp_zero.npz", kp2d=np.zeros((0, 1, 17, 3), np.float32))
    f["kp_zero"] = kp_dir / "kp_zero.npz"
    np.savez(kp_dir / "kp_ok.npz", kp2d=_kp(12).transpose(1, 0, 2, 3))
    f["kp_ok"] = kp_dir / "kp_ok.npz"
    blob = (kp_dir / "kp_ok.npz").read_bytes()
    (kp_dir / "kp_trunc.npz").write_bytes(blob[: len(blob) // 2])
    f["kp_trunc"] = kp_dir / "kp_trunc.npz"
    (kp_dir / "kp_notzip.npz").write_bytes(b"this is not a zip file at all" * 10)
    f["kp_notzip"] = kp_dir / "kp_notzip.npz"
    # pickles
    f["pkl_good"] = kp_dir / "good.pkl"
    f["pkl_good"].write_bytes(_pyskl([("a", 0, _kp(40)), ("b", 1, _kp(40, seed=1))]))
    f["pkl_good2"] = kp_dir / "good_proto2.pkl"  # mmcv.dump's protocol (pyskl's files)
    f["pkl_good2"].write_bytes(_pyskl([("a", 0, _kp(40)), ("b", 1, _kp(40, seed=1))], protocol=2))
    f["pkl_one"] = kp_dir / "one.pkl"
    f["pkl_one"].write_bytes(_pyskl([("a", 0, _kp(40))]))
    f["pkl_neg"] = kp_dir / "label_neg.pkl"
    f["pkl_neg"].write_bytes(_pyskl([("a", 0, _kp(40)), ("b", -7, _kp(40, seed=1))]))
    f["pkl_big_label"] = kp_dir / "label_99.pkl"
    f["pkl_big_label"].write_bytes(_pyskl([("a", 0, _kp(40)), ("b", 99, _kp(40, seed=1))]))
    f["pkl_huge"] = kp_dir / "huge.pkl"
    f["pkl_huge"].write_bytes(_pyskl([("a", 0, _kp(40) * np.float32(1e30))], dtype=np.float32))
    f["pkl_zero"] = kp_dir / "zero_frames.pkl"
    f["pkl_zero"].write_bytes(_pyskl([("a", 0, np.zeros((1, 0, 17, 3), np.float32))]))
    markers = root / "markers"
    markers.mkdir(exist_ok=True)
    evil = {
        "reduce": pickle.dumps(_Reduce(os.system, (f"touch {markers}/reduce",)), protocol=2),
        "nested": pickle.dumps({"annotations": [{"frame_dir": "x", "label": 0, "img_shape": (10, 10),
                                                 "keypoint": _Reduce(eval, (f"open('{markers}/nested','w')",))}]}),
        "dotted_builtins": dotted_payload("numpy.dtypes", "_add_dtype_helper.__builtins__",
                                          f"open('{markers}/dotted_builtins','w')"),
        "dotted_getattribute": dotted_payload("numpy.dtypes", "Float64DType.__getattribute__",
                                              f"open('{markers}/dotted_getattribute','w')"),
    }
    for k, v in evil.items():
        (kp_dir / f"evil_{k}.pkl").write_bytes(v)
        f[f"evil_{k}"] = kp_dir / f"evil_{k}.pkl"
    f["markers"] = markers
    # masks: priors of another video (other size and length)
    from hmore.priors.pipeline import Priors, save_priors

    T = 3
    pr = Priors(kp2d=np.zeros((T, 1, 17, 3), np.float32), valid=np.ones((T, 1), bool),
                interpolated=np.zeros((T, 1), bool), track_ids=np.array([1]), masks=np.ones((T, 60, 80), np.uint8),
                boundaries=np.zeros((T, 60, 80), np.uint8), fps=30.0, size=(640, 480), mask_size=(80, 60),
                frame_index=np.arange(T) * 10, backend="file", backend_version="x", source="other.mp4")
    f["other_priors"] = save_priors(root / "other_priors.npz", pr)
    # weights
    from hmore.weights import default_weights_dir

    wd = default_weights_dir()
    f["w_flow"] = wd / "hmore_flow_cpu.safetensors"
    f["w_dst"] = wd / "dstformer_cpu.safetensors"
    raw = f["w_flow"].read_bytes()
    (root / "w_trunc.safetensors").write_bytes(raw[: len(raw) // 2])
    f["w_trunc"] = root / "w_trunc.safetensors"
    (root / "w_corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json" + b"\0" * 64)
    f["w_corrupt"] = root / "w_corrupt.safetensors"
    # files in the way of outputs, bad configs, BVH
    f["a_file"] = root / "a_file.txt"
    f["a_file"].write_text("not a folder\n")
    f["bad_yaml"] = root / "bad.yaml"
    f["bad_yaml"].write_text("train: [unclosed\n")
    f["unknown_key"] = root / "unknown_key.yaml"
    f["unknown_key"].write_text("train:\n  stepz: 3\n")
    f["bad_bvh"] = root / "bad.bvh"
    f["bad_bvh"].write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    # tiny run folders: an action model and a lifter
    _tiny_runs(root, f)
    return f


def _tiny_runs(root: Path, f: dict[str, Path]) -> None:
    from hmore.train.engine import train
    from hmore.train.tasks import build_task, load_task_config

    runs = root / "runs"
    sets = {
        "action": ["model.name=dstformer_action_test", "data.train_identities=2", "data.test_identities=1",
                   "data.clips_per_pair=1", "data.num_frames=30", "data.clip_len=9", "data.frame_step=1",
                   f"data.cache={runs}/actions.pkl", "train.steps=2", "train.batch_size=2", "train.device=cpu",
                   "train.tensorboard=false", "train.eval_every=0"],
        "lift": ["model.name=dstformer_test", "data.train_identities=2", "data.test_identities=1",
                 "data.headings=1", "data.motion_frames=30", "data.clip_len=9", "data.min_len=9", "data.bvh_train=[]",
                 "data.bvh_test=[]", "data.eval_clips=2", "train.steps=2", "train.batch_size=2",
                 "train.device=cpu", "train.tensorboard=false", "train.eval_every=0"],
    }
    for task, overrides in sets.items():
        out = runs / task
        if not (out / "checkpoints" / "last").is_file():
            cfg = load_task_config(task, None, overrides)
            train(build_task(task, cfg), cfg.train, out)
        f[f"run_{task}"] = out


# ---- cases ------------------------------------------------------------------------------------------------------
def cases(f: dict[str, Path]) -> list[Case]:
    """The catalogue: (name, argv, expectation)."""
    c: list[Case] = []

    def add(name: str, argv: list, expect: str = "error", *needles: str, **kw: object) -> None:
        c.append(Case(name, [str(a) for a in argv], expect, tuple(n.lower() for n in needles), **kw))

    tiny = {"v1x1": "1x1", "v16x2000": "16x2000", "v33x17": "33x17", "v96x128": "96x128"}
    # -- general
    add("cli/no-command", [], "usage")
    add("cli/unknown-command", ["nosuch"], "error", "invalid choice")
    # -- models
    add("models/no-match", ["models", "zzz*"], "error", "zzz")
    add("models/params", ["models", "--params", "dstformer_test"], "ok")
    # -- synth
    syn = ["synth", "--clips", "1", "--frames", "2", "--size", "32x48", "--distractors", "0"]
    add("synth/out-is-file", [*syn, "--out", f["a_file"]], "error", "a_file")
    add("synth/out-under-file", [*syn, "--out", f["a_file"] / "sub"], "error", "a_file")
    add("synth/size-0", ["synth", "--out", "o", "--size", "0x5"], "error", "size")
    add("synth/size-text", ["synth", "--out", "o", "--size", "abc"], "error", "size")
    add("synth/frames-0", ["synth", "--out", "o", "--frames", "0"], "error", "frames")
    add("synth/frames-neg", ["synth", "--out", "o", "--frames", "-3"], "error", "frames")
    add("synth/clips-0", ["synth", "--out", "o", "--clips", "0"], "error", "clips")
    add("synth/subjects-0", ["synth", "--out", "o", "--subjects", "0"], "error", "subject")
    add("synth/fps-0", [*syn, "--out", "o", "--fps", "0"], "error", "fps")
    add("synth/fps-nan", [*syn, "--out", "o", "--fps", "nan"], "error", "fps")
    add("synth/overlap-2", [*syn, "--out", "o", "--overlap", "2"], "error", "overlap")
    add("synth/action-unknown", [*syn, "--out", "o", "--actions", "flying"], "error", "flying")
    add("synth/condition-unknown", [*syn, "--out", "o", "--conditions", "wet"], "error", "wet")
    add("synth/views-text", [*syn, "--out", "o", "--views", "a,b"], "error", "views")
    add("synth/views-out-of-range", [*syn, "--out", "o", "--views", "400"], "error", "view")
    add("synth/bvh-missing", [*syn, "--out", "o", "--bvh", "nosuch.bvh"], "error", "nosuch.bvh")
    add("synth/bvh-corrupt", [*syn, "--out", "o", "--bvh", f["bad_bvh"]], "error", "bad.bvh")
    add("synth/workers-0", [*syn, "--out", "o", "--workers", "0"], "error", "workers")
    add("synth/distractors-neg", [*syn, "--out", "o", "--distractors", "-2"], "error", "distractor")
    add("synth/huge-frames", ["synth", "--out", "o", "--frames", "100000000", "--size", "4000x4000"], "error",
        "memory", "gb", "tb", "bytes")
    add("synth/huge-size", ["synth", "--out", "o", "--frames", "2", "--size", "100000x100000"], "error",
        "memory", "gb", "tb", "bytes")
    add("synth/disk-full", ["synth", "--clips", "2", "--frames", "8", "--size", "96x128", "--out", "FULL/synth"],
        "error", "space", "too large", "full", disk_full=True, out="FULL/synth")
    add("synth/ok", [*syn, "--out", "o_synth"], "ok", out="o_synth")
    # -- priors
    small = ("too small", "no person")  # what a tiny video may be refused for (else it gives a result)
    for key, label in tiny.items():
        add(f"priors/video-{label}", ["priors", f[key], "-o", f"o_pri_{label}"], "either", *small)
    add("priors/small-size128", ["priors", f["small"], "--max-side", "128", "-o", "o_pri_small"], "ok")
    add("priors/out-is-file", ["priors", f["good"], "-o", f["a_file"]], "error", "a_file")
    add("priors/corrupt-video", ["priors", f["corrupt_video"], "-o", "o_pri_c"], "error", "corrupt.mp4")
    add("priors/empty-video", ["priors", f["empty_video"], "-o", "o_pri_e"], "error", "empty")
    add("priors/missing", ["priors", "nosuch.mp4", "-o", "o_pri_m"], "error", "nosuch.mp4")
    add("priors/start-past-end", ["priors", f["good"], "--start", "100", "-o", "o_pri_s"], "error", "frame")
    add("priors/stride-0", ["priors", f["good"], "--stride", "0", "-o", "o"], "error", "stride")
    add("priors/keypoints-missing", ["priors", f["good"], "--backend", "file", "--keypoints", "nosuch.json", "-o",
                                     "o"], "error", "nosuch.json")
    add("priors/keypoints-huge", ["priors", f["good"], "--backend", "file", "--keypoints", f["kp_huge"], "-o",
                                  "o_pri_h"], "error", "coordinate", "finite", "range", "large")
    add("priors/keypoints-text", ["priors", f["good"], "--backend", "file", "--keypoints", f["kp_text"], "-o",
                                  "o_pri_t"], "error", "number", "numeric")
    add("priors/folder-bad-clip", ["priors", f["videos"], "-o", "o_pri_folder"], "error", "b_bad", "failed",
        check="folder_summary:o_pri_folder:priors.npz")
    for k in ("reduce", "nested", "dotted_builtins", "dotted_getattribute"):
        add(f"priors/evil-{k}", ["priors", f["good"], "--backend", "file", "--keypoints", f[f"evil_{k}"], "-o",
                                 "o_pri_evil"], "error", "refus", check=f"marker:{k}")
    # -- flow
    fl = ["flow", "--masks", "whole", "--size", "64"]
    for key, label in tiny.items():
        add(f"flow/video-{label}", ["flow", f[key], "-o", f"o_flow_{label}"], "either", *small)
    add("flow/small-size128", ["flow", f["small"], "--size", "128", "-o", "o_flow_small"], "ok")
    add("flow/out-is-file", [*fl, f["good"], "-o", f["a_file"]], "error", "a_file")
    add("flow/weights-missing", [*fl, f["good"], "--weights", "nosuch.safetensors", "-o", "o"], "error", "nosuch")
    add("flow/weights-corrupt", [*fl, f["good"], "--weights", f["w_corrupt"], "-o", "o"], "error", "corrupt")
    add("flow/weights-truncated", [*fl, f["good"], "--weights", f["w_trunc"], "-o", "o"], "error", "corrupt",
        "truncat")
    add("flow/weights-dstformer", [*fl, f["good"], "--weights", f["w_dst"], "-o", "o"], "error", "flow model",
        "dstformer")
    add("flow/model-unknown", [*fl, f["good"], "--model", "nosuch", "-o", "o"], "error", "nosuch")
    add("flow/model-dstformer", [*fl, f["good"], "--model", "dstformer_cpu", "-o", "o"], "error", "flow model",
        "dstformer")
    add("flow/iters-0", [*fl, f["good"], "--iters", "0", "-o", "o"], "error", "iters")
    add("flow/device-bogus", [*fl, f["good"], "--device", "bogus", "-o", "o"], "error", "bogus")
    add("flow/device-cuda", [*fl, f["good"], "--device", "cuda", "-o", "o"], "error", "cuda")
    add("flow/masks-bogus", ["flow", f["good"], "--masks", "bogus", "--size", "64", "-o", "o"], "error", "bogus")
    add("flow/masks-json", ["flow", f["good"], "--masks", f["kp_good"], "--size", "64", "-o", "o"], "error",
        "kp_good")
    add("flow/masks-other-video", ["flow", f["good"], "--masks", f["other_priors"], "--size", "64", "-o", "o"],
        "error", "other_priors")
    add("flow/corrupt-png", [*fl, f["bad_png_frames"], "-o", "o"], "error", "001.png")
    add("flow/grey-frames", [*fl, f["grey_frames"], "-o", "o_flow_grey"], "ok")
    add("flow/clip-float64", ["flow", f["clip_float64"], "--size", "64", "-o", "o"], "error", "float64", "uint8")
    add("flow/clip-nomasks", ["flow", f["clip_nomasks"], "--size", "64", "-o", "o"], "error", "masks")
    add("flow/corrupt-video", [*fl, f["corrupt_video"], "-o", "o"], "error", "corrupt.mp4")
    # cut before its index (moov atom): nothing can be decoded, and the message must say which file
    add("flow/truncated-video", [*fl, f["truncated_video"], "-o", "o_flow_tr"], "error", "truncated.mp4")
    add("flow/one-frame", [*fl, f["good"], "--stride", "100", "-o", "o"], "error", "fewer than 2 frames")
    add("flow/stride-0", [*fl, f["good"], "--stride", "0", "-o", "o"], "error", "stride")
    add("flow/size-8", ["flow", f["good"], "--size", "8", "-o", "o"], "error", "size")
    add("flow/size-huge", [*fl[:-2], f["good"], "--size", "100000", "-o", "o_flow_big"], "ok")
    add("flow/shard-bad", [*fl, f["videos"], "--shard", "3/2", "-o", "o"], "error", "shard")
    add("flow/folder-bad-clip", [*fl, f["videos"], "-o", "o_flow_folder"], "error", "b_bad", "failed",
        check="folder_summary:o_flow_folder:flow.npz")
    add("flow/folder-resume-incomplete", [*fl, f["videos"], "-o", "o_flow_inc"], "error", "b_bad", "failed",
        setup="flow_incomplete:o_flow_inc", check="complete:o_flow_inc/a_good")
    add("flow/disk-full", [*fl, f["good"], "-o", "FULL/flow"], "error", "space", "too large", "full",
        disk_full=True, out="FULL/flow")
    add("flow/huge-memory", ["flow", f["good"], "--masks", "whole", "--size", "100000", "-o", "o"], "ok")
    # -- lift
    lf = ["lift", "--no-video"]
    for key, label in tiny.items():
        add(f"lift/video-{label}", [*lf, f[key], "-o", f"o_lift_{label}"], "either", *small)
    add("lift/small-video", [*lf, f["small"], "-o", "o_lift_small"], "ok")
    add("lift/out-is-file", [*lf, f["kp_ok"], "--size", "320x180", "-o", f["a_file"]], "error", "a_file")
    add("lift/fps-0", [*lf, f["kp_ok"], "--size", "320x180", "--fps", "0", "-o", "o"], "error", "fps")
    add("lift/fps-neg", [*lf, f["kp_ok"], "--size", "320x180", "--fps", "-5", "-o", "o"], "error", "fps")
    add("lift/fps-nan", [*lf, f["kp_ok"], "--size", "320x180", "--fps", "nan", "-o", "o"], "error", "fps")
    add("lift/focal-neg", [*lf, f["kp_ok"], "--size", "320x180", "--trajectory", "--focal", "-5", "-o", "o"],
        "error", "focal")
    add("lift/focal-0", [*lf, f["kp_ok"], "--size", "320x180", "--trajectory", "--focal", "0", "-o", "o"],
        "error", "focal")
    add("lift/window-0", [*lf, f["kp_ok"], "--window", "0", "-o", "o"], "error", "window")
    add("lift/window-long", [*lf, f["kp_ok"], "--window", "99", "-o", "o"], "error", "window")
    add("lift/size-0", [*lf, f["kp_ok"], "--size", "0x0", "-o", "o"], "error", "size")
    add("lift/weights-flow", [*lf, f["kp_ok"], "--weights", "hmore_flow_cpu", "-o", "o"], "error", "hmore_flow_cpu")
    add("lift/weights-unknown", [*lf, f["kp_ok"], "--weights", "nosuch", "-o", "o"], "error", "nosuch")
    add("lift/checkpoint-missing", [*lf, f["kp_ok"], "--checkpoint", "nosuch_run", "-o", "o"], "error", "nosuch")
    add("lift/checkpoint-action", [*lf, f["kp_ok"], "--checkpoint", f["run_action"], "-o", "o"], "error",
        "action", "lift")
    add("lift/huge-coords", [*lf, f["kp_huge"], "--size", "320x180", "-o", "o"], "error", "coordinate", "finite",
        "range", "large")
    add("lift/text-coords", [*lf, f["kp_text"], "--size", "320x180", "-o", "o"], "error", "number", "numeric")
    add("lift/string-size", [*lf, f["kp_strsize"], "-o", "o"], "error", "width", "size")
    add("lift/unhashable-ids", [*lf, f["kp_unhashable"], "--size", "320x180", "-o", "o"], "error", "image_id",
        "image id")
    add("lift/npz-truncated", [*lf, f["kp_trunc"], "--size", "320x180", "-o", "o"], "error", "kp_trunc")
    add("lift/npz-notzip", [*lf, f["kp_notzip"], "--size", "320x180", "-o", "o"], "error", "kp_notzip")
    add("lift/zero-frames", [*lf, f["kp_zero"], "--size", "320x180", "-o", "o"], "error", "frame")
    add("lift/posetrack", [*lf, f["posetrack"], "-o", "o_lift_pt"], "error", "video")
    add("lift/pickle-multi", [*lf, f["pkl_good"], "-o", "o"], "error", "clip")
    add("lift/pickle-clip-range", [*lf, f["pkl_good"], "--clip", "7", "-o", "o"], "error", "clip")
    add("lift/pickle-proto2", [*lf, f["pkl_good2"], "--clip", "0", "-o", "o_lift_p2"], "ok")
    add("lift/pickle-zero-frames", [*lf, f["pkl_zero"], "-o", "o"], "error", "frame")
    add("lift/ok", [*lf, f["kp_ok"], "--size", "320x180", "-o", "o_lift_ok"], "ok")
    for k in ("reduce", "nested", "dotted_builtins", "dotted_getattribute"):
        add(f"lift/evil-{k}", [*lf, f[f"evil_{k}"], "-o", "o"], "error", "refus", check=f"marker:{k}")
    # -- classify
    cl = ["classify", "--checkpoint", f["run_action"]]
    add("classify/size-0", [*cl, f["kp_ok"], "--size", "0x0"], "error", "size")
    add("classify/size-text", [*cl, f["kp_ok"], "--size", "abc"], "error", "size")
    add("classify/top-0", [*cl, f["pkl_good"], "--top", "0"], "error", "top")
    add("classify/zero-frames", [*cl, f["kp_zero"], "--size", "320x180"], "error", "frame")
    add("classify/zero-frames-pkl", [*cl, f["pkl_zero"]], "error", "frame")
    add("classify/label-neg", [*cl, f["pkl_neg"]], "warn", "-7", "label")
    add("classify/label-99", [*cl, f["pkl_big_label"]], "error", "99")
    add("classify/huge-coords", [*cl, f["pkl_huge"]], "error", "coordinate", "finite", "range", "large")
    add("classify/checkpoint-missing", ["classify", "--checkpoint", "nosuch_run", f["pkl_good"]], "error", "nosuch")
    add("classify/checkpoint-lift", ["classify", "--checkpoint", f["run_lift"], f["pkl_good"]], "error", "action")
    add("classify/weights-lifter", ["classify", "--weights", "dstformer_cpu", f["pkl_good"]], "error", "action")
    add("classify/split-unknown", [*cl, f["pkl_good"], "--split", "nosuch"], "error", "nosuch")
    add("classify/ok", [*cl, f["pkl_good"]], "ok")
    add("classify/ok-proto2", [*cl, f["pkl_good2"]], "ok")
    for k in ("reduce", "nested", "dotted_builtins", "dotted_getattribute"):
        add(f"classify/evil-{k}", [*cl, f[f"evil_{k}"]], "error", "refus", check=f"marker:{k}")
    # -- train
    tr = ["train", "lift", "--set", "model.name=dstformer_test", "--set", "data.train_identities=2", "--set",
          "data.test_identities=1", "--set", "data.headings=1", "--set", "data.motion_frames=30", "--set",
          "data.clip_len=9", "--set", "data.min_len=9", "--set", "data.bvh_train=[]", "--set", "data.bvh_test=[]",
          "--set", "data.eval_clips=2", "--set", "train.batch_size=2", "--set", "train.device=cpu", "--set",
          "train.tensorboard=false", "--set", "train.steps=2"]
    add("train/unknown-task", ["train", "nosuch"], "error", "nosuch")
    add("train/config-missing", ["train", "lift", "--config", "nosuch.yaml"], "error", "nosuch.yaml")
    add("train/config-bad-yaml", ["train", "lift", "--config", f["bad_yaml"]], "error", "bad.yaml")
    add("train/config-unknown-key", ["train", "lift", "--config", f["unknown_key"]], "error", "stepz")
    add("train/set-bad", ["train", "lift", "--set", "train.steps=abc"], "error", "steps")
    add("train/out-is-file", [*tr, "--out", f["a_file"]], "error", "a_file")
    add("train/clip-longer-than-model", [*tr, "--set", "data.clip_len=34", "--set", "data.motion_frames=40",
                                         "--out", "o_tr_long"], "error", "34", "max_len", "27")
    add("train/bvh-missing", [*tr[:-12], "--set", "data.bvh_train=[/nope/x.bvh]", *tr[-10:], "--out", "o_tr_bvh"],
        "error", "/nope/x.bvh")
    add("train/action-pickle-missing", ["train", "action", "--set", "data.pickle=nosuch.pkl", "--set",
                                        "model.name=dstformer_action_test", "--set", "train.steps=1"],
        "error", "nosuch.pkl")
    for k in ("reduce", "nested", "dotted_builtins", "dotted_getattribute"):
        add(f"train/evil-{k}", ["train", "action", "--set", f"data.pickle={f[f'evil_{k}']}", "--set",
                                "model.name=dstformer_action_test", "--set", "train.steps=1", "--out", "o_tr_evil"],
            "error", "refus", check=f"marker:{k}")
    add("train/disk-full", [*tr, "--out", "FULL/train"], "error", "space", "too large", "full", disk_full=True,
        out="FULL/train")
    add("train/locked", [*tr, "--set", "train.steps=100000", "--out", "o_tr_lock"], "error", "lock", "running",
        "in use", setup="train_live:o_tr_lock")
    add("train/stale-lock", [*tr, "--out", "o_tr_stale"], "ok", setup="train_killed:o_tr_stale")
    add("train/ok", [*tr, "--out", "o_tr_ok"], "ok")
    # -- bench flow
    bf = ["bench", "flow", "--cost-sizes", "--pairs", "1"]
    for key, label in tiny.items():
        add(f"bench/video-{label}", [*bf, "--data", f[key], "-o", f"o_bench_{label}"], "either", *small)
    add("bench/small-video", [*bf, "--data", f["small"], "-o", "o_bench_small"], "ok")
    add("bench/out-is-file", [*bf, "--methods", "dis", "--clips", "1", "-o", f["a_file"]], "error", "a_file")
    add("bench/method-unknown", [*bf, "--methods", "nosuch", "-o", "o"], "error", "nosuch")
    add("bench/weights-dstformer", [*bf, "--methods", f"hmore_flow_cpu={f['w_dst']}", "--clips", "1", "-o", "o"],
        "error", "flow model", "dstformer")
    add("bench/device-cuda", [*bf, "--methods", "hmore_flow_cpu", "--device", "cuda", "--clips", "1", "-o", "o"],
        "error", "cuda")
    add("bench/data-missing", [*bf, "--data", "nosuch.mp4", "-o", "o"], "error", "nosuch")
    add("bench/data-corrupt", [*bf, "--data", f["corrupt_video"], "-o", "o"], "error", "corrupt.mp4")
    add("bench/pairs-0", [*bf, "--pairs", "0", "-o", "o"], "error", "pairs")
    add("bench/size-0", [*bf, "--size", "0x0", "-o", "o"], "error", "size")
    add("bench/no-target", ["bench"], "error", "flow")
    # -- demo
    dm = ["demo", "--size", "32x48", "--frames", "3"]
    add("demo/flow-model-unknown", [*dm, "--flow-model", "nosuch", "-o", "o"], "error", "nosuch")
    add("demo/flow-model-dstformer", [*dm, "--flow-model", "dstformer_cpu", "-o", "o"], "error", "flow model",
        "dstformer")
    add("demo/size-0", ["demo", "--size", "0x0", "-o", "o"], "error", "size")
    add("demo/frames-0", ["demo", "--frames", "0", "-o", "o"], "error", "frames")
    add("demo/frames-huge", ["demo", "--frames", "100000000", "--size", "4000x4000", "-o", "o"], "error", "memory",
        "gb", "tb", "bytes")
    add("demo/out-is-file", [*dm, "--flow-model", "none", "-o", f["a_file"]], "error", "a_file")
    add("demo/ok", [*dm, "--flow-model", "none", "-o", "o_demo"], "ok")
    return c


# ---- running ----------------------------------------------------------------------------------------------------
_RUNNER = textwrap.dedent("""
    import json, resource, signal, sys
    cfg = json.loads(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (cfg["mem"], cfg["mem"]))
    if cfg["fsize"]:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize"], cfg["fsize"]))
    from hmore.cli import main
    sys.argv = ["hmore", *cfg["argv"]]
    raise SystemExit(main(cfg["argv"]))
""")


def _setup(case: Case, work: Path, env: dict[str, str]) -> subprocess.Popen | None:
    kind, _, arg = case.setup.partition(":")
    if kind == "flow_incomplete":  # a clip whose flow.npz exists but whose other outputs do not (killed run)
        d = work / arg / "a_good"
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "flow.npz", world=np.zeros((1, 2, 4, 4), np.float32))
    elif kind in ("train_live", "train_killed"):
        argv = [*case.argv]
        if kind == "train_killed":
            argv = [a if a != "train.steps=2" else "train.steps=100000" for a in argv]
        cfg = json.dumps({"argv": argv, "mem": MEMORY_LIMIT, "fsize": 0})
        proc = subprocess.Popen([PY, "-c", _RUNNER, cfg], cwd=work, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        run_dir = work / arg
        deadline = time.time() + 120
        while time.time() < deadline and not (run_dir / "metrics.jsonl").is_file():
            time.sleep(0.5)
        time.sleep(1.0)
        if kind == "train_killed":
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        return proc
    return None


def _stray(root: Path) -> list[str]:
    if not root.exists():
        return []
    return [str(p) for p in root.rglob("*") if p.is_file() and re.search(r"\.(tmp|part)(\.|$)", p.name)]


def _check(case: Case, work: Path, f: dict[str, Path], stdout: str) -> str:
    """'' when the extra check passes, else what is wrong."""
    kind, _, arg = case.check.partition(":")
    if kind == "marker":
        return f"CODE RAN: marker {arg} created" if (f["markers"] / arg).exists() else ""
    if kind == "folder_summary":
        out, _, name = arg.partition(":")
        done = [p for p in ("a_good", "c_good") if (work / out / p / name).is_file()]
        return "" if len(done) == 2 else f"good clips not all processed (done: {done})"
    if kind == "complete":
        return "" if (work / arg / "meta.json").is_file() else "incomplete clip counted as done"
    return ""


def classify_run(case: Case, rc: int, stdout: str, err: str, extra: str, stray: list[str]) -> tuple[str, str]:
    """(class, message shown)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    message = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")
    if rc < 0 or rc >= 128 + 1 and rc - 128 in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE):
        return "crash", f"signal {-rc if rc < 0 else rc - 128}"
    if "Traceback" in err:
        return "traceback", next((ln for ln in reversed(lines) if not ln.startswith(" ")), "")[:160]
    if extra.startswith("CODE RAN"):
        return "incomplete", extra
    if extra and "incomplete" in extra:
        return "incomplete", extra
    if stray:
        return "incomplete", f"left {stray[0]}"
    low = err.lower()
    if case.expect == "usage":
        return ("good", "usage") if rc == 2 and "usage:" in (stdout + err).lower() else ("misleading", message)
    if case.expect == "either" and rc == 0:
        return ("incomplete", extra) if extra else ("good", "ok")
    if case.expect in ("error", "either"):
        if rc == 0:
            return "silent", "exit 0"
        errors = [ln for ln in lines if ": error: " in ln]
        if len(errors) != 1 or not any(n in errors[0].lower() for n in case.needles):
            return "misleading", message[:160]
        if extra:
            return "misleading", extra
        return "good", message[:160]
    if case.expect == "warn":
        if rc != 0:
            return "misleading", message[:160]
        return ("good", "warned") if any(n in low for n in case.needles) else ("silent", "no warning")
    if rc != 0:
        return "misleading", message[:160]
    if extra:
        return "incomplete", extra
    return "good", "ok"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=Path("out/bad_inputs"))
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    ap.add_argument("--full-dir", type=Path, default=None, help="a small filesystem for the disk-full cases")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    out = args.out.resolve()
    t0 = time.time()
    f = build_fixtures(out / "fixtures")
    print(f"fixtures in {out / 'fixtures'} ({time.time() - t0:.0f} s)", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    results = []
    counts: dict[str, int] = {}
    for case in cases(f):
        if args.only and args.only not in case.name:
            continue
        work = out / "work" / case.name.replace("/", "_")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for m in f["markers"].iterdir():
            m.unlink()
        argv, fsize = list(case.argv), 0
        if case.disk_full:
            if args.full_dir is not None:
                full = args.full_dir / case.name.replace("/", "_")
                shutil.rmtree(full, ignore_errors=True)
                argv = [a.replace("FULL", str(full)) for a in argv]
            else:
                argv = [a.replace("FULL", str(work / "full")) for a in argv]
                fsize = 64 << 10
        holder = _setup(case, work, env)
        cfg = json.dumps({"argv": argv, "mem": MEMORY_LIMIT, "fsize": fsize})
        t1 = time.time()
        try:
            p = subprocess.run([PY, "-c", _RUNNER, cfg], cwd=work, env=env, capture_output=True, text=True,
                               timeout=args.timeout)
            rc, stdout, stderr = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as exc:
            rc, stdout, stderr = 124, exc.stdout or "", (exc.stderr or "") + "\nerror: TIMEOUT"
            if isinstance(stderr, bytes):
                stderr = stderr.decode(errors="replace")
        finally:
            if holder is not None:
                os.killpg(holder.pid, signal.SIGKILL)
                holder.wait()
        seconds = time.time() - t1
        out_root = Path(argv[argv.index("-o") + 1]) if "-o" in argv else work
        stray = _stray(work) + (_stray(out_root if out_root.is_absolute() else work / out_root))
        if case.disk_full and args.full_dir is not None:
            stray += _stray(args.full_dir)
        extra = _check(case, work, f, stdout)
        kind, message = classify_run(case, rc, stdout, stderr, extra, sorted(set(stray)))
        counts[kind] = counts.get(kind, 0) + 1
        results.append({"case": case.name, "argv": argv, "expect": case.expect, "rc": rc, "class": kind,
                        "message": message, "seconds": round(seconds, 1), "stderr_tail": stderr[-2000:]})
        print(f"{kind:10s} rc={rc:<4d} {case.name:36s} {message}", flush=True)
    (out / "results.json").write_text(json.dumps({"counts": counts, "results": results}, indent=1))
    order = ("good", "crash", "traceback", "misleading", "silent", "incomplete")
    print("\n" + " | ".join(f"{k} {counts.get(k, 0)}" for k in order) + f" | total {len(results)}"
          f" ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
