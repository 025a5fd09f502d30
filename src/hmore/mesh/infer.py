"""``hmore mesh``'s library side: 2D keypoint tracks -> an Anny mesh per person and frame, written as
``meshes.npz``, one ``.obj`` per person for a chosen frame, a preview video with the meshes drawn over the input and
``index.html``.

``meshes.npz`` holds (P people, T frames, V = 13,718 vertices, F = 27,420 triangles):

- ``vertices`` (P, T, V, 3) float32: camera frame (x right, y down, z forward), metres, root-relative, or placed on
  the estimated root trajectory when ``root`` is finite;
- ``faces`` (F, 3) int32 (counter-clockwise seen from outside);
- ``joints`` (P, T, 17, 3) float32: H36M-17 joints of the meshes (same frame as ``vertices``);
- ``rot`` (P, T, 24, 3, 3) float32: camera-frame bone-group rotations; ``phenotype`` (P, 6) Anny phenotypes;
- ``root`` (P, T, 3) float32: the camera-frame root trajectory (weak-perspective fit to the 2D);
- ``kp2d`` (P, T, 17, 3), ``interpolated`` (P, T), ``track_ids``, ``frame_index``, ``fps``, ``size``, ``meta``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmore.errors import InputError, UsageError
from hmore.io.atomic import save_npz_atomic, write_text_atomic
from hmore.lift.data import flip_pair, normalize_2d
from hmore.lift.infer import blend_weights, estimate_root, fill_gaps, window_starts

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "dstformer_mesh_cpu_h36m"  # Human3.6M MPJPE 1.08x the H36M lifter (README, Measured)


@dataclass(frozen=True)
class MeshResult:
    """Per person and frame: rot (P, T, G, 3, 3), phenotype (P, 6), vertices (P, T, V, 3), joints (P, T, 17, 3),
    root (P, T, 3), kp2d (P, T, 17, 3) (gaps filled), interpolated (P, T)."""

    rot: np.ndarray
    phenotype: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    root: np.ndarray
    kp2d: np.ndarray
    interpolated: np.ndarray


def _project_rotations(m: np.ndarray) -> np.ndarray:
    """The nearest rotations (..., 3, 3) to matrices (..., 3, 3) (SVD)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, -1] *= d[..., None]
    return u @ vt


@torch.no_grad()
def run_mesh_windows(model: torch.nn.Module, x: np.ndarray, *, window: int, stride: int | None = None,
                     flip: bool = True, mirror: np.ndarray | None = None,
                     batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Apply a mesh regressor to a track (T, 17, 3) of any length: rotations (T, G, 3, 3) blended over overlapping
    windows (then made rotations again) and the phenotype (6,) averaged over windows. With ``flip``, the mirrored
    input's output (mirrored back with the group map ``mirror``) is averaged in."""
    from hmore.mesh.data import MIRROR

    num = x.shape[0]
    length = min(window, num)
    starts = window_starts(num, length, stride or max(1, length // 2))
    w = blend_weights(length)
    acc, norm, ph, ph_w = None, np.zeros(num), np.zeros(6), 0.0
    for b0 in range(0, len(starts), batch_size):
        chunk = starts[b0 : b0 + batch_size]
        xb = np.stack([x[s : s + length] for s in chunk]).astype(np.float32)
        out = model(torch.from_numpy(xb))
        rot, phen = out.rot.float().numpy(), out.phenotype.float().numpy()
        if flip:
            if mirror is None:
                raise ValueError("run_mesh_windows: flip needs the group mirror map")
            outf = model(torch.from_numpy(np.ascontiguousarray(flip_pair(xb)[0])))
            rf = MIRROR @ outf.rot.float().numpy()[:, :, mirror] @ MIRROR
            rot, phen = 0.5 * (rot + rf), 0.5 * (phen + outf.phenotype.float().numpy())
        if acc is None:
            acc = np.zeros((num,) + rot.shape[2:])
        for s, r, p in zip(chunk, rot, phen):
            acc[s : s + length] += w[:, None, None, None] * r
            norm[s : s + length] += w
            ph += p
            ph_w += 1.0
    return _project_rotations(acc / norm[:, None, None, None]).astype(np.float32), (ph / ph_w).astype(np.float32)


def mesh_tracks(model: torch.nn.Module, kp2d: np.ndarray, *, width: int, height: int, decoder=None,
                window: int | None = None, stride: int | None = None, flip: bool = True,
                focal: float | None = None) -> MeshResult:
    """Meshes of H36M-17 2D tracks (P, T, 17, 3: pixels + score; a frame with all scores 0 is undetected)."""
    from hmore.mesh.decoder import anny_decoder
    from hmore.synth.anny_body import ANNY_ROLES
    from hmore.synth.retarget import mirror_groups, rig_groups

    kp2d = np.asarray(kp2d, dtype=np.float64)
    if kp2d.ndim != 4 or kp2d.shape[2:] != (17, 3):
        raise ValueError(f"mesh_tracks expects (P, T, 17, 3) H36M-17 keypoints with scores, got {kp2d.shape}")
    dec = decoder if decoder is not None else anny_decoder()
    window = window or int(getattr(getattr(model, "config", None), "max_len", 27))
    mirror = mirror_groups(rig_groups(ANNY_ROLES))
    kp2d = np.where(np.isfinite(kp2d), kp2d, 0.0)
    p, t = kp2d.shape[:2]
    valid = kp2d[..., 2].max(axis=-1) > 0
    g = dec.num_groups
    rot = np.tile(np.eye(3, dtype=np.float32), (p, t, g, 1, 1))
    phen = np.full((p, 6), 0.5, np.float32)
    filled = np.zeros_like(kp2d, dtype=np.float32)
    for i in range(p):
        f = fill_gaps(kp2d[i], valid[i])
        f[~valid[i], :, 2] = 0.0
        filled[i] = f
        if not valid[i].any():
            log.warning("person %d has no detection in any frame; their mesh is left at the rest pose", i)
            continue
        x = np.concatenate([normalize_2d(kp2d[i, ..., :2], width, height), kp2d[i, ..., 2:3]], axis=-1)
        x[kp2d[i, ..., 2] <= 0] = 0.0
        rot[i], phen[i] = run_mesh_windows(model, x, window=window, stride=stride, flip=flip, mirror=mirror)
    verts = np.zeros((p, t, dec.num_vertices, 3), np.float32)
    joints = np.zeros((p, t, 17, 3), np.float32)
    for i in range(p):
        for s in range(0, t, 32):
            with torch.no_grad():
                out = dec(torch.from_numpy(rot[i : i + 1, s : s + 32]), torch.from_numpy(phen[i : i + 1]), "all")
            verts[i, s : s + 32] = out.vertices[0].numpy()
            joints[i, s : s + 32] = out.joints[0].numpy()
    root = np.full((p, t, 3), np.nan, np.float32)
    fl = focal or float(max(width, height))
    for i in range(p):
        if valid[i].any():
            root[i] = estimate_root(joints[i].astype(np.float64), filled[i], focal=fl, cx=width / 2, cy=height / 2)
    return MeshResult(rot=rot, phenotype=phen, vertices=verts, joints=joints, root=root, kp2d=filled,
                      interpolated=~valid)


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """A Wavefront OBJ of one mesh (vertices (V, 3), faces (F, 3) 0-based), written atomically."""
    lines = [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in np.asarray(vertices, np.float64)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, np.int64)]
    return write_text_atomic(path, "\n".join(lines) + "\n")


def draw_meshes(image: np.ndarray, vertices: list[np.ndarray], faces: np.ndarray, *, focal: float,
                alpha: float = 0.6) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with meshes (camera frame, metres) drawn over it: one colour per person, Lambert
    shading from a light at the camera, exact triangle rasterisation (:mod:`hmore.synth.mesh_raster`)."""
    from hmore.report.draw import person_color
    from hmore.synth.mesh_raster import rasterise_triangles

    h, w = image.shape[:2]
    out = image.astype(np.float32)
    zbuf = np.full(h * w, np.inf)
    colour = np.zeros((h * w, 3), np.float32)
    for k, v in enumerate(vertices):
        if not np.isfinite(v).all() or (v[:, 2] <= 0.05).any():
            continue
        uv = v[:, :2] / v[:, 2:] * focal + (w / 2, h / 2)
        hits = rasterise_triangles(uv, 1.0 / v[:, 2], faces, (h, w), zbuf)
        if not hits.pixel.size:
            continue
        tri = v[faces[hits.face]]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        shade = np.abs(n[:, 2]) / np.maximum(np.linalg.norm(n, axis=1), 1e-12)
        colour[hits.pixel] = (0.35 + 0.65 * shade)[:, None] * np.asarray(person_color(k), np.float32)
    drawn = np.isfinite(zbuf)
    flat = out.reshape(-1, 3)
    flat[drawn] = (1 - alpha) * flat[drawn] + alpha * colour[drawn]
    return np.clip(flat.reshape(h, w, 3), 0, 255).astype(np.uint8)


def _input_frames(path: Path, num: int, size: tuple[int, int]) -> np.ndarray | None:
    """The input's images when it has any (a video, a generated clip), else None."""
    from hmore.io.video import VIDEO_SUFFIXES, read_frames

    if path.suffix.lower() in VIDEO_SUFFIXES:
        frames = read_frames(path)
    elif path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            frames = z["frames"] if "frames" in z.files else None
    else:
        return None
    if frames is None or len(frames) < num or frames.shape[2] != size[0] or frames.shape[1] != size[1]:
        return None
    return frames[:num]


@dataclass(frozen=True)
class MeshOutputs:
    meshes: Path
    objs: list[Path]
    video: Path | None
    index: Path
    num_people: int
    num_frames: int
    seconds: float


def mesh_file(path: str | Path, out_dir: str | Path, *, model: torch.nn.Module, size: tuple[int, int] | None = None,
              fps: float | None = None, obj_frame: int | None = None, flip: bool = True, focal: float | None = None,
              video: bool = True, model_name: str = "") -> MeshOutputs:
    """Meshes of every person of ``path`` (inputs as :func:`hmore.lift.pipeline.read_tracks`); writes
    ``meshes.npz``, ``person<k>_frame<n>.obj``, ``preview.mp4`` and ``index.html`` into ``out_dir``."""
    from hmore.lift.pipeline import read_tracks
    from hmore.report.html import Report

    path, out = Path(path), Path(out_dir)
    tracks = read_tracks(path, size=size, fps=fps)
    p, t = tracks.kp2d.shape[:2]
    if p == 0:
        raise InputError(f"{path}: no person found")
    n = t // 2 if obj_frame is None else int(obj_frame)
    if not 0 <= n < t:
        raise UsageError(f"--obj-frame must be within 0..{t - 1}, got {obj_frame}")
    from hmore.mesh.decoder import anny_decoder

    dec = anny_decoder()
    t0 = time.perf_counter()
    res = mesh_tracks(model, tracks.kp2d, width=tracks.width, height=tracks.height, decoder=dec, flip=flip,
                      focal=focal)
    seconds = time.perf_counter() - t0
    placed = res.vertices + np.where(np.isfinite(res.root), res.root, 0.0)[:, :, None, :]
    faces = dec.faces
    meta = {"input": str(path), "source": tracks.source, "model": model_name, "flip": flip,
            "units": "metres, camera frame", "body": "anny", "focal": focal or float(max(tracks.width, tracks.height))}
    npz = save_npz_atomic(out / "meshes.npz", vertices=placed.astype(np.float32), faces=faces.astype(np.int32),
                          joints=(res.joints + np.nan_to_num(res.root)[:, :, None, :]).astype(np.float32),
                          rot=res.rot, phenotype=res.phenotype, root=res.root, kp2d=res.kp2d,
                          interpolated=res.interpolated, track_ids=np.asarray(tracks.track_ids, np.int64),
                          frame_index=np.asarray(tracks.frame_index, np.int64), fps=np.float32(tracks.fps),
                          size=np.array([tracks.width, tracks.height], np.int64), meta=np.array(json.dumps(meta)))
    objs = [write_obj(out / f"person{k}_frame{n}.obj", res.vertices[k, n], faces) for k in range(p)]
    mp4 = None
    if video:
        from hmore.io.video import write_video

        frames = _input_frames(path, t, (tracks.width, tracks.height))
        fl = meta["focal"]

        def gen():
            for i in range(t):
                img = frames[i] if frames is not None else np.full((tracks.height, tracks.width, 3), 40, np.uint8)
                yield draw_meshes(img, [placed[k, i] for k in range(p)], faces, focal=fl)

        mp4 = write_video(out / "preview.mp4", gen(), fps=tracks.fps)
    rep = Report("hmore mesh", intro=f"{path} ({tracks.source}): {p} people, {t} frames, Anny meshes regressed by "
                                     f"{model_name or 'a mesh model'} from their 2D keypoints.")
    if mp4 is not None:
        rep.add_figure(mp4, "meshes (placed on the estimated root trajectory) drawn over the input")
    rows = [[int(tid), *[round(float(v), 2) for v in res.phenotype[k]]] for k, tid in enumerate(tracks.track_ids)]
    rep.add_table(rows, header=["track", "gender", "age", "muscle", "weight", "height", "proportions"])
    rep.add_text(f"meshes.npz: vertices (P, T, 13718, 3), faces, joints, rot, phenotype, root; "
                 f"{', '.join(o.name for o in objs)}: frame {n}.")
    index = rep.save(out / "index.html")
    return MeshOutputs(meshes=npz, objs=objs, video=mp4, index=Path(index) if index else out / "index.html",
                       num_people=p, num_frames=t, seconds=seconds)
