"""``hmore gait``: enrol the people of a gallery video and name the people of a probe video by their gait.

Both videos go through ``hmore priors`` (MediaPipe pose with person masks, tracked ids; cached in ``OUT/priors``).
Every track with enough frames becomes a silhouette sequence cropped as OpenGait does (and, for models that take flow,
the H-MoRe / DIS flow of the video cropped with it); a trained gait model embeds each sequence; each probe track is
named after its nearest gallery tracks (Euclidean distance per strip, averaged). The report shows every track (a
frame and its silhouettes) and, per probe track, the nearest gallery identities with their distances.

The model is shipped weights (a name, e.g. ``gaitbase_cpu_sil``), a ``.safetensors`` checkpoint or a run folder of
``hmore train gait``; it was trained on generated people, so real footage is out of its training distribution.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hmore.errors import InputError, UsageError
from hmore.flowfeed import channels_of
from hmore.gait.silhouette import crop_box, crop_silhouette
from hmore.io.atomic import atomic_path, write_json_atomic
from hmore.metrics.gait import part_distance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GaitModel:
    """A gait model ready to embed: the network, its input channels, flow scale and flow representation
    (``hmore.flowfeed.flow_channel``), and where it came from."""

    net: torch.nn.Module
    channels: tuple[str, ...]
    flow_scale: float
    source: str
    flow_mask: bool = False
    flow_smooth: int = 1


def load_gait_model(weights: str | Path) -> GaitModel:
    """Shipped weights ``name``, a checkpoint ``.safetensors`` or a run folder, with its channels from the metadata.

    Raises:
        InputError: nothing found, or a checkpoint without the gait task's model config.
    """
    from hmore.train.checkpoint import load_weights_into, read_metadata, resolve_checkpoint
    from hmore.weights import build_model_from_config, list_weights, load_model, read_weights_metadata

    src = Path(weights)
    if src.exists():
        path = resolve_checkpoint(src)
        meta = read_metadata(path)
        cfg = meta.get("model_config", meta.get("model"))
        if not isinstance(cfg, dict):
            raise InputError(f"{path} carries no model config in its metadata")
        net = build_model_from_config(cfg, source=str(path))
        load_weights_into(net, path, strict=True)
        desc = str(path)
    elif str(weights) in list_weights():
        cfg = read_weights_metadata(str(weights))["model"]
        net = load_model(str(weights))
        desc = f"shipped weights {weights}"
    else:
        raise InputError(f"gait weights not found: {weights} (a shipped name: {', '.join(list_weights()) or 'none'}, "
                         "a .safetensors file or a run folder)")
    if "channels" not in cfg:
        raise InputError(f"{weights}: not a gait model (no 'channels' in its model config)")
    channels = channels_of(str(cfg["channels"]))
    if any(c.startswith("exact") for c in channels):
        raise UsageError(f"{weights} takes exact (generated) flow, which real videos do not have")
    return GaitModel(net=net.eval(), channels=channels, flow_scale=float(cfg.get("flow_scale", 2.0)), source=desc,
                     flow_mask=bool(cfg.get("flow_mask", False)), flow_smooth=int(cfg.get("flow_smooth", 1)))


@dataclass(frozen=True)
class Track:
    """One person of a video: track id, frame indices, silhouettes (S, 64, 44), flow channels (S, 2, 64, 44)
    (pair t of frame t), a representative frame crop (RGB) and the mean person height in pixels."""

    track_id: int
    frames: np.ndarray
    sil: np.ndarray
    flows: dict[str, np.ndarray]
    thumbnail: np.ndarray
    height_px: float


def _priors(video: Path, out: Path, *, max_side: int, stride: int) -> Any:
    from hmore.priors.batch import PriorsSettings, run_priors
    from hmore.priors.pipeline import load_priors
    from hmore.priors.pose import create_estimator

    folder = out / "priors" / video.stem
    run_priors([video], folder, estimator=create_estimator("mediapipe"),
               settings=PriorsSettings(max_side=max_side, stride=stride), folder_mode=False, preview=False)
    return load_priors(folder / "priors.npz")


def _video_flows(video: Path, priors: Any, channels: tuple[str, ...], *, max_side: int, stride: int
                 ) -> dict[str, np.ndarray]:
    """(T-1, 2, h, w) flow channels of the video at the priors' mask size."""
    from hmore.io.video import iter_frames

    h, w = priors.masks.shape[1:]
    out: dict[str, np.ndarray] = {}
    if "world" in channels or "local" in channels:
        from hmore.flow.inference import flow

        rep = flow(str(video), size=max_side, stride=stride, masks=priors.masks, progress=False)
        out["world"], out["local"] = _resize_flows(rep.world, (h, w)), _resize_flows(rep.local, (h, w))
    if "dis" in channels:
        from hmore.flowfeed import dis_flows

        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) if f.shape[:2] != (h, w) else f
                           for f in iter_frames(video, stride=stride, max_side=max_side)])
        out["dis"] = dis_flows(frames)
    return out


def _resize_flows(flows: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(N, 2, H, W) flows resized to ``hw`` with their vectors scaled (a no-op at that size already)."""
    if flows.shape[-2:] == hw:
        return flows
    sy, sx = hw[0] / flows.shape[-2], hw[1] / flows.shape[-1]
    return np.stack([cv2.resize(f.transpose(1, 2, 0), (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
                     .transpose(2, 0, 1) * np.array([sx, sy], np.float32)[:, None, None] for f in flows])


def video_tracks(video: str | Path, out: Path, *, channels: tuple[str, ...] = (), max_side: int = 512,
                 stride: int = 1, min_frames: int = 8) -> list[Track]:
    """The tracks of a video with at least ``min_frames`` frames that have a mask (see the module docstring)."""
    from hmore.flowfeed import quantise_flow
    from hmore.io.video import iter_frames

    video = Path(video)
    if not video.is_file():
        raise InputError(f"video not found: {video}")
    pr = _priors(video, out, max_side=max_side, stride=stride)
    flows = _video_flows(video, pr, channels, max_side=max_side, stride=stride) if channels else {}
    n_pairs = pr.masks.shape[0] - 1
    h, w = pr.masks.shape[1:]
    tracks = []
    for tid in pr.track_ids:
        present = np.flatnonzero([(m == tid).sum() >= 50 for m in pr.masks[:n_pairs]])
        if len(present) < min_frames:
            continue
        boxes = [crop_box(pr.masks[t] == tid) for t in present]
        sil = np.stack([crop_silhouette(pr.masks[t] == tid, b) for t, b in zip(present, boxes)])
        fl = {c: np.stack([quantise_flow(b.apply(flows[c][t].transpose(1, 2, 0), flow=True).transpose(2, 0, 1))
                           for t, b in zip(present, boxes)]) for c in channels}
        heights = [b.bottom - b.top + 1 for b in boxes if b is not None]
        tracks.append(Track(track_id=int(tid), frames=present, sil=sil, flows=fl, thumbnail=np.zeros((1, 1, 3)),
                            height_px=float(np.mean(heights))))
    # a thumbnail per track: the person's box in its middle frame
    mids: dict[int, list[int]] = {}  # frame -> the tracks whose middle frame it is (several may share one)
    for k, tr in enumerate(tracks):
        mids.setdefault(int(tr.frames[len(tr.frames) // 2]), []).append(k)
    for t, frame in enumerate(iter_frames(video, stride=stride, max_side=max_side)):
        if t not in mids:
            continue
        if frame.shape[:2] != (h, w):
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        for k in mids[t]:
            ys, xs = np.nonzero(pr.masks[t] == tracks[k].track_id)
            crop = frame[max(0, ys.min() - 5):ys.max() + 6, max(0, xs.min() - 5):xs.max() + 6]
            tracks[k] = dataclasses.replace(tracks[k], thumbnail=crop)
    return tracks


@torch.no_grad()
def embed_tracks(model: GaitModel, tracks: list[Track]) -> np.ndarray:
    """(N, parts, D) embeddings of the tracks (all their frames as one set)."""
    from hmore.flowfeed import flow_channel

    out = []
    for tr in tracks:
        parts = [tr.sil[:, None].astype(np.float32) / 255.0]
        every = np.arange(len(tr.sil))
        parts += [flow_channel(tr.flows[c], tr.sil, every, flow_scale=model.flow_scale, mask=model.flow_mask,
                               smooth=model.flow_smooth) for c in model.channels]
        x = torch.from_numpy(np.concatenate(parts, axis=1)[None])  # (1, S, C, 64, 44)
        out.append(model.net(x).embeddings[0].float().numpy())
    return np.stack(out)


def _card(tr: Track, label: str, height: int = 96) -> np.ndarray:
    """A picture of a track: its frame crop and 8 of its silhouettes, labelled."""
    from hmore.report.draw import hstack_panels

    thumb = tr.thumbnail if tr.thumbnail.size > 3 else np.zeros((64, 44, 3), np.uint8)
    picks = np.linspace(0, len(tr.sil) - 1, min(8, len(tr.sil))).round().astype(int)
    sils = np.concatenate([tr.sil[i] for i in picks], axis=1)
    return hstack_panels([thumb, np.repeat(sils[:, :, None], 3, axis=2)], [label, "silhouettes"], height=height)


def run_gait_demo(gallery: str | Path, probe: str | Path, out_dir: str | Path, *, weights: str | Path,
                  max_side: int = 512, stride: int = 1, min_frames: int = 8, top: int = 3) -> dict[str, Any]:
    """Enrol the gallery video's tracks, name the probe video's; writes ``OUT/gait.json`` and ``OUT/index.html``."""
    from hmore.report.html import Report

    if min_frames < 1 or top < 1 or stride < 1 or max_side < 64:
        raise UsageError("min_frames, top and stride must be >= 1 and max_side >= 64")
    out = Path(out_dir)
    model = load_gait_model(weights)
    gal = video_tracks(gallery, out, channels=model.channels, max_side=max_side, stride=stride,
                       min_frames=min_frames)
    prb = video_tracks(probe, out, channels=model.channels, max_side=max_side, stride=stride, min_frames=min_frames)
    if not gal:
        raise InputError(f"no person tracked for at least {min_frames} frames in the gallery video {gallery}")
    if not prb:
        raise InputError(f"no person tracked for at least {min_frames} frames in the probe video {probe}")
    dist = part_distance(embed_tracks(model, prb), embed_tracks(model, gal))  # (probes, gallery)
    names = [f"G{tr.track_id}" for tr in gal]
    result: dict[str, Any] = {
        "model": model.source, "channels": list(model.channels), "gallery_video": str(gallery),
        "probe_video": str(probe),
        "gallery": [{"name": n, "track_id": tr.track_id, "frames": len(tr.frames), "height_px": tr.height_px}
                    for n, tr in zip(names, gal)],
        "probes": []}
    for k, tr in enumerate(prb):
        order = np.argsort(dist[k], kind="stable")[:top]
        result["probes"].append({"name": f"P{tr.track_id}", "track_id": tr.track_id, "frames": len(tr.frames),
                                 "height_px": tr.height_px,
                                 "nearest": [{"gallery": names[j], "distance": float(dist[k, j])} for j in order]})
    write_json_atomic(out / "gait.json", result)

    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    rep = Report("hmore gait", intro="Each probe track is named after its nearest gallery tracks (gait embeddings of "
                 "silhouette sequences). The model was trained on generated people; the videos are real footage "
                 "(with tracking boxes and ids burned in by the tool that made them), so treat the names as a "
                 "demonstration, not a measured accuracy.")
    rep.add_table([[p["name"], p["frames"], round(p["height_px"]), *[f"{n['gallery']} ({n['distance']:.3f})"
                                                                     for n in p["nearest"]]]
                   for p in result["probes"]], header=["probe", "frames", "height px",
                                                       *[f"nearest {i + 1}" for i in range(min(top, len(gal)))]])
    rep.add_text(f"Model: {model.source}; input channels: sil{''.join('+' + c for c in model.channels)}.")
    for title, trs, prefix in (("Gallery", gal, "G"), ("Probes", prb, "P")):
        rep.add_section(title)
        for tr in trs:
            path = figs / f"{prefix}{tr.track_id}.png"
            with atomic_path(path, suffix=".png") as tmp:
                cv2.imwrite(str(tmp), cv2.cvtColor(_card(tr, f"{prefix}{tr.track_id}"), cv2.COLOR_RGB2BGR))
            rep.add_figure(path, f"{prefix}{tr.track_id}: {len(tr.frames)} frames")
    rep.save(out / "index.html")
    return result
