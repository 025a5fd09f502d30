"""Bad inputs across every subcommand: one row per case, each asserting the exit code, a single one-line error that
names the cause (no traceback), and no stray output. The full catalogue, each case in its own process, is
``benchmarks/bad_inputs.py``; here the CLI runs in-process, and in a subprocess only where a regression could crash
natively (OpenCV's HOG detector on small frames).

Pickle safety: crafted pickles (a plain ``__reduce__``, a nested one, and protocol 4's dotted ``STACK_GLOBAL`` names
that reach ``eval``) go through the four commands that read pickles and must not create their marker file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hmore.cli import main
from hmore.errors import InputError

# ---- fixtures ---------------------------------------------------------------------------------------------------


def _video(path: Path, w: int, h: int, frames: int = 4) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "bgr0"
        for i in range(frames):
            a = np.random.default_rng(i).integers(0, 255, (h, w, 3), np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


class _Reduce:
    def __init__(self, fn: object, args: tuple) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return self.fn, self.args


def _text(s: str) -> bytes:
    return b"\x8c" + bytes([len(s)]) + s.encode()  # SHORT_BINUNICODE


def dotted_global_payload(name: str, code: str) -> bytes:
    """Protocol 4: ``STACK_GLOBAL("numpy.dtypes", name)`` walked to ``eval`` (what allowed-by-module-prefix
    unpicklers let through), then ``eval(code)``."""
    def glob(module: str, attr: str) -> bytes:
        return _text(module) + _text(attr) + b"\x93"

    t1, t2, call = b"\x85", b"\x86", b"R"
    p = b"\x80\x04"
    if name.endswith("__builtins__"):  # the builtins dict of a numpy.dtypes function: .get("eval")
        p += glob("numpy.dtypes", name + ".get") + _text("eval") + t1 + call
    else:  # object.__getattribute__ walked to _add_dtype_helper.__globals__["__builtins__"]["eval"]
        ga = glob("numpy.dtypes", name)
        p += ga + ga + ga + glob("numpy.dtypes", "_add_dtype_helper") + _text("__globals__") + t2 + call
        p += _text("get") + t2 + call + _text("__builtins__") + t1 + call
        p += _text("get") + t2 + call + _text("eval") + t1 + call
    return p + _text(code) + t1 + call + b"."


def _kp(frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(20, 60, (1, frames, 17)), rng.uniform(10, 40, (1, frames, 17)),
                     np.ones((1, frames, 17))], -1).astype(np.float32)  # (M, T, 17, 3)


def _pyskl(clips: list[tuple[str, int, np.ndarray]], *, protocol: int = 4, dtype: type = np.float16) -> bytes:
    anns = [{"frame_dir": n, "label": lab, "img_shape": (48, 64), "original_shape": (48, 64),
             "total_frames": kp.shape[1], "keypoint": kp[..., :2].astype(dtype),
             "keypoint_score": kp[..., 2].astype(dtype)} for n, lab, kp in clips]
    return pickle.dumps({"split": {"test": [c[0] for c in clips]}, "annotations": anns}, protocol=protocol)


def _coco(frames: int, value: object = None, scale: float = 1.0) -> list[dict]:
    kp = _kp(frames)[0]
    kp[..., :2] *= scale
    return [{"image_id": t, "category_id": 1, "score": 0.9,
             "keypoints": kp[t].ravel().tolist() if value is None else [value] * 51} for t in range(frames)]


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> dict[str, Path]:
    """Every input of the table, built once (tiny: 64x48 frames, 4-12 frames)."""
    import hmore.synth as synth
    from hmore.priors.pipeline import Priors, save_priors
    from hmore.registry import create_model
    from hmore.train.checkpoint import save_weights
    from hmore.weights import default_weights_dir

    root = tmp_path_factory.mktemp("bad_inputs")
    f: dict[str, Path] = {"root": root, "markers": root / "markers"}
    f["markers"].mkdir()
    f["video"] = _video(root / "tiny.mkv", 64, 48)
    f["clip"] = synth.render_clip(size=(48, 64), num_frames=3, distractors=0, seed=1).save(root / "clip.npz")
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(1).bytes(3000))
    f["corrupt"] = root / "corrupt.mp4"
    f["a_file"] = root / "a_file.txt"
    f["a_file"].write_text("in the way\n")
    kp = root / "kp"
    kp.mkdir()
    for name, obj in {"good": _coco(12), "huge": _coco(12, scale=1e30), "text": _coco(12, value="abc"),
                      "unhashable": [dict(d, image_id=[t]) for t, d in enumerate(_coco(12))],
                      "strsize": {"images": [{"id": t, "file_name": f"{t:06d}.jpg", "width": "wide", "height": 48}
                                             for t in range(12)], "categories": [{"id": 1}],
                                  "annotations": [{"id": t, "image_id": t, "keypoints": d["keypoints"]}
                                                  for t, d in enumerate(_coco(12))]}}.items():
        f[f"kp_{name}"] = kp / f"{name}.json"
        f[f"kp_{name}"].write_text(json.dumps(obj))
    images, anns = [], []
    for vid in ("000342", "014054"):  # PoseTrack's val.json: several videos in one file
        for t, d in enumerate(_coco(6)):
            images.append({"id": int(f"1{vid}{t:04d}"), "vid_id": vid, "file_name": f"images/val/{vid}/{t:06d}.jpg",
                           "width": 64, "height": 48})
            anns.append({"id": len(anns), "image_id": images[-1]["id"], "track_id": 0, "keypoints": d["keypoints"]})
    f["posetrack"] = kp / "posetrack.json"
    f["posetrack"].write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1}]}))
    np.savez(kp / "zero.npz", kp2d=np.zeros((0, 1, 17, 3), np.float32))
    f["kp_zero"] = kp / "zero.npz"
    (kp / "notzip.npz").write_bytes(b"not a zip file" * 20)
    f["kp_notzip"] = kp / "notzip.npz"
    pickles = {"good": _pyskl([("a", 0, _kp(20)), ("b", 1, _kp(20, 1))]),
               "proto2": _pyskl([("a", 0, _kp(20)), ("b", 1, _kp(20, 1))], protocol=2),
               "label_neg": _pyskl([("a", 0, _kp(20)), ("b", -7, _kp(20, 1))]),
               "label_big": _pyskl([("a", 0, _kp(20)), ("b", 99, _kp(20, 1))]),
               "huge": _pyskl([("a", 0, _kp(20) * np.float32(1e30))], dtype=np.float32),
               "zero": _pyskl([("a", 0, np.zeros((1, 0, 17, 3), np.float32))]),
               "evil_reduce": pickle.dumps(_Reduce(os.system, (f"touch {f['markers']}/evil_reduce",)), protocol=2),
               "evil_nested": pickle.dumps({"annotations": [{"frame_dir": "x", "label": 0, "img_shape": (4, 4),
                                                             "keypoint": _Reduce(eval, (
                                                                 f"open('{f['markers']}/evil_nested', 'w')",))}]}),
               "evil_dotted_builtins": dotted_global_payload("_add_dtype_helper.__builtins__",
                                                             f"open('{f['markers']}/evil_dotted_builtins', 'w')"),
               "evil_dotted_getattribute": dotted_global_payload(
                   "Float64DType.__getattribute__", f"open('{f['markers']}/evil_dotted_getattribute', 'w')")}
    for name, blob in pickles.items():
        f[f"pkl_{name}"] = kp / f"{name}.pkl"
        f[f"pkl_{name}"].write_bytes(blob)
    torch.manual_seed(0)
    action = create_model("dstformer_action_test", num_classes=2)
    f["action"] = save_weights(root / "action.safetensors", action, metadata={"model_config": {
        "name": "dstformer_action_test", "kwargs": {"num_classes": 2}, "classes": ["a", "b"], "clip_len": 9}})
    f["w_dstformer"] = default_weights_dir() / "dstformer_cpu.safetensors"
    f["w_corrupt"] = root / "corrupt.safetensors"
    f["w_corrupt"].write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json" + bytes(64))
    T = 3
    other = Priors(kp2d=np.zeros((T, 1, 17, 3), np.float32), valid=np.ones((T, 1), bool),
                   interpolated=np.zeros((T, 1), bool), track_ids=np.array([1]), masks=np.ones((T, 30, 40), np.uint8),
                   boundaries=np.zeros((T, 30, 40), np.uint8), fps=30.0, size=(640, 480), mask_size=(40, 30),
                   frame_index=np.arange(T) * 10, backend="file", backend_version="x", source="other.mp4")
    f["other_priors"] = save_priors(root / "other_priors.npz", other)
    f["bad_yaml"] = root / "bad.yaml"
    f["bad_yaml"].write_text("train: [unclosed\n")
    return f


# ---- the table --------------------------------------------------------------------------------------------------
FLOW = "flow --masks whole --size 32"
LIFT = "lift --no-video"
TRAIN_LIFT = ("train lift --set model.name=dstformer_test --set data.train_identities=1 --set data.test_identities=1 "
              "--set data.headings=1 --set data.motion_frames=40 --set data.bvh_train=[] --set data.bvh_test=[] "
              "--set train.device=cpu --set train.tensorboard=false --set train.steps=1 --set train.batch_size=1")
OUT = "-o {root}/out"

# (case, command line with {fixture} fields, exit code, words of which one must be in the error line)
CASES = [
    ("cli/no-command-args", "bench", 2, "flow"),
    ("models/no-match", "models zzz*", 1, "zzz"),
    ("synth/out-is-file", "synth --frames 2 --size 16x16 --out {a_file}", 2, "a_file.txt"),
    ("synth/out-under-file", "synth --frames 2 --size 16x16 --out {a_file}/sub", 2, "a_file.txt"),
    ("synth/huge", "synth --frames 100000000 --size 4000x4000 --out {root}/out", 2, "memory"),
    ("synth/fps-0", "synth --frames 2 --size 16x16 --fps 0 --out {root}/out", 2, "fps"),
    ("priors/out-is-file", "priors {video} -o {a_file}", 2, "a_file.txt"),
    ("priors/corrupt-video", "priors {corrupt} " + OUT, 1, "corrupt.mp4"),
    ("priors/keypoints-huge", "priors {video} --backend file --keypoints {kp_huge} " + OUT, 1, "coordinates"),
    ("priors/keypoints-text", "priors {video} --backend file --keypoints {kp_text} " + OUT, 1, "numbers"),
    ("priors/keypoints-posetrack", "priors {video} --backend file --keypoints {posetrack} " + OUT, 1, "2 videos"),
    ("flow/out-is-file", FLOW + " {video} -o {a_file}", 2, "a_file.txt"),
    ("flow/weights-missing", FLOW + " {video} --weights {root}/nosuch.safetensors " + OUT, 1, "nosuch"),
    ("flow/weights-corrupt", FLOW + " {video} --weights {w_corrupt} " + OUT, 1, "corrupt"),
    ("flow/weights-dstformer", FLOW + " {video} --weights {w_dstformer} " + OUT, 1, "not a flow model"),
    ("flow/model-unknown", FLOW + " {video} --model nosuch " + OUT, 2, "nosuch"),
    ("flow/model-dstformer", FLOW + " {video} --model dstformer_cpu " + OUT, 2, "not a flow model"),
    ("flow/iters-0", FLOW + " {video} --iters 0 " + OUT, 2, "--iters"),
    ("flow/device-bogus", FLOW + " {video} --device bogus " + OUT, 2, "bogus"),
    ("flow/device-cuda", FLOW + " {video} --device cuda " + OUT, 2, "cuda"),
    ("flow/masks-bogus", "flow {video} --masks bogus " + OUT, 2, "bogus"),
    ("flow/masks-json", "flow {video} --masks {kp_good} " + OUT, 1, "good.json"),
    ("flow/masks-other-video", "flow {video} --masks {other_priors} " + OUT, 1, "640x480"),
    ("flow/one-frame", FLOW + " {video} --stride 10 " + OUT, 1, "fewer than 2 frames"),
    ("flow/corrupt-video", FLOW + " {corrupt} " + OUT, 1, "corrupt.mp4"),
    ("lift/out-is-file", LIFT + " {kp_good} --size 64x48 -o {a_file}", 2, "a_file.txt"),
    ("lift/fps-0", LIFT + " {kp_good} --size 64x48 --fps 0 " + OUT, 2, "--fps"),
    ("lift/focal-neg", LIFT + " {kp_good} --size 64x48 --trajectory --focal -5 " + OUT, 2, "--focal"),
    ("lift/weights-flow", LIFT + " {kp_good} --size 64x48 --weights hmore_flow_cpu " + OUT, 1, "not a 2d-to-3d"),
    ("lift/huge-coords", LIFT + " {kp_huge} --size 64x48 " + OUT, 1, "coordinates"),
    ("lift/text-coords", LIFT + " {kp_text} --size 64x48 " + OUT, 1, "numbers"),
    ("lift/string-size", LIFT + " {kp_strsize} " + OUT, 1, "width and height"),
    ("lift/unhashable-ids", LIFT + " {kp_unhashable} --size 64x48 " + OUT, 1, "image_id"),
    ("lift/npz-not-zip", LIFT + " {kp_notzip} --size 64x48 " + OUT, 1, "notzip.npz"),
    ("lift/zero-frames", LIFT + " {kp_zero} --size 64x48 " + OUT, 1, "no frames"),
    ("lift/posetrack-unchosen", LIFT + " {posetrack} " + OUT, 1, "2 videos (000342, 014054)"),
    ("lift/posetrack-unknown", LIFT + " {posetrack} --clip 999999 " + OUT, 1, "out of range"),
    ("lift/pickle-several", LIFT + " {pkl_good} " + OUT, 1, "2 clips"),
    ("classify/size-0", "classify {kp_good} --checkpoint {action} --size 0x0", 2, "size"),
    ("classify/zero-frames", "classify {pkl_zero} --checkpoint {action}", 1, "no frames"),
    ("classify/label-beyond", "classify {pkl_label_big} --checkpoint {action}", 1, "[99]"),
    ("classify/huge-coords", "classify {pkl_huge} --checkpoint {action}", 1, "coordinates"),
    ("classify/lifter-weights", "classify {pkl_good} --weights dstformer_cpu", 1, "not an action model"),
    ("train/out-is-file", TRAIN_LIFT + " --out {a_file}", 2, "a_file.txt"),
    ("train/config-bad-yaml", "train lift --config {bad_yaml}", 2, "bad.yaml"),
    ("train/clip-longer-than-model", TRAIN_LIFT + " --set data.clip_len=34 --out {root}/out", 2, "max_len of 27"),
    ("train/bvh-missing", TRAIN_LIFT + " --set data.bvh_train=[/nope/x.bvh] --out {root}/out", 1, "/nope/x.bvh"),
    ("bench/out-is-file", "bench flow --methods dis --cost-sizes -o {a_file}", 2, "a_file.txt"),
    ("bench/weights-dstformer", "bench flow --methods hmore_flow_cpu={w_dstformer} --cost-sizes --clips 1 --pairs 1 "
     + OUT, 1, "not a flow model"),
    ("bench/device-cuda", "bench flow --methods hmore_flow_cpu --device cuda --cost-sizes " + OUT, 2, "cuda"),
    ("demo/flow-model-unknown", "demo --flow-model nosuch " + OUT, 2, "nosuch"),
    ("demo/flow-model-dstformer", "demo --flow-model dstformer_cpu " + OUT, 2, "not a flow model"),
    ("demo/out-is-file", "demo --flow-model none -o {a_file}/sub", 2, "a_file.txt"),
]
EVIL = ("evil_reduce", "evil_nested", "evil_dotted_builtins", "evil_dotted_getattribute")
PICKLE_PATHS = {
    "priors": "priors {video} --backend file --keypoints {pkl} " + OUT,
    "lift": LIFT + " {pkl} " + OUT,
    "classify": "classify {pkl} --checkpoint {root}/no_model_needed",
    "train": "train action --set data.pickle={pkl} --set model.name=dstformer_action_test --set train.steps=1 "
             "--set train.tensorboard=false --out {root}/out",
}


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = int(exc.code)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _assert_one_line_error(err: str, needle: str) -> str:
    assert "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(errors) == 1, err
    assert needle.lower() in errors[0].lower(), errors[0]
    return errors[0]


def _stray_files(root: Path) -> list[Path]:
    out = root / "out"
    files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    return files + [p for p in root.rglob("*") if ".tmp" in p.name or p.name.endswith(".part")]


@pytest.mark.parametrize(("case", "cmd", "code", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_code(fx, capsys, case, cmd, code, needle) -> None:
    shutil.rmtree(fx["root"] / "out", ignore_errors=True)
    argv = [a.format(**fx) for a in cmd.split()]
    rc, _, err = _run(argv, capsys)
    assert rc == code, err
    _assert_one_line_error(err, needle)
    assert _stray_files(fx["root"]) == []


@pytest.mark.parametrize("payload", EVIL)
@pytest.mark.parametrize("command", sorted(PICKLE_PATHS))
def test_crafted_pickles_run_no_code(fx, capsys, command, payload) -> None:
    shutil.rmtree(fx["root"] / "out", ignore_errors=True)
    argv = [a.format(pkl=fx[f"pkl_{payload}"], **fx) for a in PICKLE_PATHS[command].split()]
    rc, _, err = _run(argv, capsys)
    assert not (fx["markers"] / payload).exists(), f"{payload} ran code through hmore {command}"
    assert rc == 1
    _assert_one_line_error(err, "refusing to load the global")


def test_safe_pickle_loads_every_protocol_and_refuses_object_arrays() -> None:
    from collections import OrderedDict

    from hmore.io.safe_pickle import loads_safely

    data = {"keypoint": np.arange(12, dtype=np.float16).reshape(1, 2, 3, 2), "label": np.int64(3),
            "img_shape": (480, 640), "frame_dir": "S001", "empty": np.zeros((0, 17, 3)), "raw": b"\x00\xff",
            "rec": np.zeros(2, [("x", "<f4"), ("y", "<i2")]), "set": {1}, "od": OrderedDict(a=1)}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = loads_safely(pickle.dumps(data, protocol=protocol))
        assert back.keys() == data.keys()
        np.testing.assert_array_equal(back["keypoint"], data["keypoint"])
        assert back["keypoint"].dtype == np.float16 and back["label"] == 3 and back["raw"] == b"\x00\xff"
        assert back["img_shape"] == (480, 640) and back["rec"].dtype == data["rec"].dtype
    with pytest.raises(InputError, match="arrays of Python objects"):
        loads_safely(pickle.dumps(np.array([None, 1], dtype=object)))
    with pytest.raises(InputError, match="not a readable pickle"):
        loads_safely(pickle.dumps(data)[:-10])


def test_pyskl_file_as_mmcv_writes_it_still_loads(fx) -> None:
    """pyskl's annotation files are written by ``mmcv.dump`` (pickle protocol 2: bytes through ``_codecs.encode``,
    builtins as ``__builtin__``), with float16 keypoints."""
    from hmore.io.keypoints import read_keypoints
    from hmore.lift.actions import read_action_pickle

    ds = read_action_pickle(fx["pkl_proto2"])
    assert [c.label for c in ds.clips] == [0, 1] and ds.clips[0].kp2d.shape == (1, 20, 17, 3)
    np.testing.assert_allclose(ds.clips[1].kp2d, _kp(20, 1)[0][None].astype(np.float16), rtol=1e-3)
    seq = read_keypoints(fx["pkl_proto2"], clip="b")
    assert seq.kp2d.shape == (20, 1, 17, 3) and seq.image_size == (64, 48)


def test_posetrack_file_is_split_per_video(fx) -> None:
    from hmore.io.keypoints import read_keypoints

    for clip in ("014054", 1, "1"):
        seq = read_keypoints(fx["posetrack"], clip=clip)
        assert seq.num_frames == 6 and seq.num_people == 1 and seq.image_size == (64, 48)
        np.testing.assert_allclose(seq.kp2d[:, 0], _kp(6)[0], rtol=1e-6)


def test_classify_negative_label_is_unlabelled_with_a_warning(fx, capsys, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        rc, out, err = _run(["classify", str(fx["pkl_label_neg"]), "--checkpoint", str(fx["action"])], capsys)
    assert rc == 0, err
    assert "b=-7" in caplog.text and "left out of the accuracy" in caplog.text
    assert out.splitlines()[-1].endswith("on 1 labelled clips")


def test_models_pattern_that_matches(capsys) -> None:
    rc, out, _ = _run(["models", "hmore_flow*"], capsys)
    assert rc == 0 and out.split() == ["hmore_flow", "hmore_flow_cpu", "hmore_flow_test"]


# ---- disk full, folder mode, run-folder lock ----------------------------------------------------------------------
def test_disk_full_is_one_line_and_leaves_no_partial_file(fx, capsys, monkeypatch) -> None:
    real = np.lib.format.write_array

    def full(fh, array, **kw):
        real(fh, array[: max(1, len(array) // 2)] if array.ndim else array, **kw)
        raise OSError(errno.ENOSPC, "No space left on device")

    out = fx["root"] / "full"
    monkeypatch.setattr(np.lib.format, "write_array", full)
    rc, _, err = _run(["synth", "--frames", "2", "--size", "48x64", "--distractors", "0", "--out", str(out)], capsys)
    assert rc == 1
    line = _assert_one_line_error(err, "no space left on the device")
    assert str(out) in line
    assert [p.name for p in out.rglob("*") if p.is_file()] == []


def test_flow_disk_full_removes_its_temporary_files(fx, capsys, monkeypatch) -> None:
    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array_header_2_0", full)
    out = fx["root"] / "flow_full"
    rc, _, err = _run([*FLOW.split(), str(fx["video"]), "--no-preview", "-o", str(out)], capsys)
    assert rc == 1
    _assert_one_line_error(err, "no space left on the device")
    assert [p.name for p in out.rglob("*") if p.is_file()] == []


def test_flow_folder_skips_bad_clips_and_redoes_incomplete_ones(fx, capsys) -> None:
    videos = fx["root"] / "videos"
    videos.mkdir(exist_ok=True)
    for name in ("a.mkv", "c.mkv"):
        shutil.copy(fx["video"], videos / name)
    shutil.copy(fx["corrupt"], videos / "b.mp4")
    out = fx["root"] / "flow_folder"
    (out / "a").mkdir(parents=True)
    np.savez(out / "a" / "flow.npz", world=np.zeros(1))  # what a run killed after writing flow.npz leaves
    rc, stdout, err = _run([*FLOW.split(), str(videos), "-o", str(out)], capsys)
    assert rc == 1
    _assert_one_line_error(err, "1 of 3 videos failed (first: b.mp4")
    assert "2 videos processed, 0 skipped" in stdout and "b.mp4: failed: " in stdout
    for clip in ("a", "c"):
        assert {p.name for p in (out / clip).iterdir()} == {"flow.npz", "meta.json", "preview.mp4", "index.html"}
        with np.load(out / clip / "flow.npz") as z:
            assert z["world"].shape == (3, 2, 24, 32)
    rc, stdout, err = _run([*FLOW.split(), str(videos), "-o", str(out)], capsys)
    assert rc == 1 and "0 videos processed, 2 skipped (done before), 1 failed" in stdout


def test_second_train_on_a_held_run_folder_is_refused_and_a_dead_holder_is_taken_over(fx, tmp_path, capsys) -> None:
    from hmore.io.lock import LOCK_FILE, run_folder_lock

    run = tmp_path / "run"
    run.mkdir()
    argv = ["train", "toy", "--set", "train.steps=2", "--set", "train.tensorboard=false", "--set",
            "train.device=cpu", "--out", str(run)]
    with run_folder_lock(run):
        rc, _, err = _run(argv, capsys)
    assert rc == 1
    line = _assert_one_line_error(err, "is in use by another hmore train")
    assert f"pid {os.getpid()}" in line and not (run / "metrics.jsonl").exists()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from hmore.io.lock import run_folder_lock
        with run_folder_lock(Path({str(run)!r})):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc, _, err = _run(argv, capsys)
        assert rc == 1 and f"pid {holder.pid}" in err
    finally:
        holder.kill()  # SIGKILL: the lock file keeps the dead holder's line, the kernel drops its lock
        holder.wait()
    assert f"pid {holder.pid}" in (run / LOCK_FILE).read_text()
    rc, out, err = _run(argv, capsys)
    assert rc == 0, err
    assert "steps 0->2" in out and (run / LOCK_FILE).read_text() == ""


# ---- native crashes: run in a subprocess ----------------------------------------------------------------------------
def test_small_frames_give_a_result_or_a_clear_error_never_a_crash() -> None:
    """OpenCV's HOG ``detectMultiScale`` corrupts the heap on frames smaller than its 64x128 window (SIGSEGV/SIGABRT
    or a cv2.error): the guard enlarges or skips them. OpenCV's DIS flow (inside the flow model) raises or crashes on
    frames under 16 px on a side (15x200: SIGSEGV): flow refuses them. In a subprocess, so that a regression fails
    this test instead of killing the test run."""
    code = textwrap.dedent("""
        import numpy as np
        import hmore
        from hmore.errors import InputError
        from hmore.priors.pose import MediaPipePose
        est = MediaPipePose(max_people=1)
        for w, h in [(1, 1), (16, 2000), (2000, 16), (33, 17), (96, 128), (128, 72), (63, 127), (64, 128)]:
            frame = np.random.default_rng(w * h).integers(0, 255, (h, w, 3), np.uint8)
            boxes = est.detect_boxes(frame)
            people = est.estimate_people(frame)
            assert all(len(b) == 4 for b in boxes), boxes
            print("priors", w, h, len(boxes), len(people))
        for w, h in [(1, 1), (200, 15), (64, 8), (16, 16)]:
            frames = np.random.default_rng(w).integers(0, 255, (2, h, w, 3), np.uint8)
            try:
                rep = hmore.flow(frames, masks="whole", device="cpu", progress=False)
                print("flow", w, h, rep.world.shape)
            except InputError as exc:
                assert "too small for flow" in str(exc), exc
                print("flow", w, h, "refused")
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert len(lines) == 12 and lines[-4:] == ["flow 1 1 refused", "flow 200 15 refused", "flow 64 8 refused",
                                               "flow 16 16 (1, 2, 16, 16)"]
