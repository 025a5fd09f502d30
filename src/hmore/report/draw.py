"""Pictures for people: skeletons over frames, instance masks, labels and side-by-side panels.

All images are ``(H, W, 3)`` uint8 RGB (grey ``(H, W)`` images are accepted where noted). Keypoints follow the pixel
convention of ``hmore.synth.motion_types``: x right, y down, the centre of pixel (i, j) at x = j, y = i. The
functions return new images and never modify their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from hmore.skeleton import COCO17, Layout, get_layout

# Distinct, saturated colours (RGB) for persons and mask ids; id k uses PALETTE[(k - 1) % len(PALETTE)].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 190),
    (0, 128, 128),
    (170, 110, 40),
    (128, 0, 0),
)

_SUBPIXEL_BITS = 4  # cv2 drawing with fixed-point coordinates: 1/16 pixel precision
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def person_color(k: int) -> tuple[int, int, int]:
    """The palette colour of person ``k`` (0-based) or mask id ``k + 1``."""
    return PALETTE[k % len(PALETTE)]


def _as_rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"images must be (H, W, 3) RGB or (H, W) grey, got {img.shape}")
    return np.ascontiguousarray(img).copy()


def _fixed(x: float, y: float) -> tuple[int, int]:
    scale = 1 << _SUBPIXEL_BITS
    return int(round(x * scale)), int(round(y * scale))


def draw_skeleton(
    img: np.ndarray,
    kp: np.ndarray,
    *,
    layout: str | Layout = COCO17,
    threshold: float = 0.5,
    colors: Sequence[tuple[int, int, int]] | None = None,
    thickness: int | None = None,
    radius: int | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """Draw the bones and joints of one or several people.

    Args:
        img: ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` grey) image; not modified.
        kp: ``(P, J, C)`` or ``(J, C)`` keypoints in pixels with ``C`` = 2 (x, y: all drawn) or ``C`` >= 3 (x, y,
            score or visibility). ``J`` must be the layout's joint count.
        layout: joint layout (``COCO17``, ``H36M17`` ... or its name) giving the bones.
        threshold: joints whose score is below it, or whose coordinates are not finite, are skipped with their
            bones.
        colors: RGB colour per person; default :data:`PALETTE` in order.
        thickness: bone width in pixels; default scales with the image (1 px for small images).
        radius: joint dot radius in pixels; default ``thickness + 1``.
        antialias: smooth edges (cv2.LINE_AA); False paints exact colours on whole pixels.

    Returns:
        A new ``(H, W, 3)`` uint8 image.
    """
    out = _as_rgb(img)
    lay = get_layout(layout)
    kp = np.asarray(kp, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1] != lay.num_joints or kp.shape[2] < 2:
        raise ValueError(
            f"keypoints must be (P, {lay.num_joints}, C>=2) or ({lay.num_joints}, C>=2) for {lay.name}, "
            f"got {np.shape(kp)}"
        )
    h, w = out.shape[:2]
    if thickness is None:
        thickness = max(1, round(min(h, w) / 160))
    if radius is None:
        radius = thickness + 1
    line_type = cv2.LINE_AA if antialias else cv2.LINE_8
    for p in range(kp.shape[0]):
        color = tuple(int(c) for c in (colors[p % len(colors)] if colors else person_color(p)))
        xy = kp[p, :, :2]  # (J, 2)
        ok = np.isfinite(xy).all(axis=1)
        if kp.shape[2] >= 3:
            score = kp[p, :, 2]
            ok &= np.isfinite(score) & (score >= threshold)
        for a, b in lay.bones:
            if ok[a] and ok[b]:
                cv2.line(out, _fixed(*xy[a]), _fixed(*xy[b]), color, thickness, line_type, _SUBPIXEL_BITS)
        for j in np.flatnonzero(ok):
            cv2.circle(out, _fixed(*xy[j]), radius << _SUBPIXEL_BITS, color, -1, line_type, _SUBPIXEL_BITS)
    return out


def mask_outline(instance_mask: np.ndarray) -> np.ndarray:
    """Pixels of each non-zero id that touch (4-neighbourhood) a pixel of another id or the image border.

    Args:
        instance_mask: ``(H, W)`` integer ids, 0 background.

    Returns:
        ``(H, W)`` bool.
    """
    m = np.asarray(instance_mask)
    if m.ndim != 2:
        raise ValueError(f"instance mask must be (H, W), got {m.shape}")
    padded = np.pad(m, 1, mode="edge")
    differs = np.zeros(m.shape, dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):  # up, down, left, right neighbours in the padded array
        differs |= padded[dy : dy + m.shape[0], dx : dx + m.shape[1]] != m
    return differs & (m != 0)


def mask_to_color(
    instance_mask: np.ndarray, *, background: tuple[int, int, int] = (0, 0, 0)
) -> np.ndarray:
    """Paint each id ``k > 0`` of an ``(H, W)`` instance mask in its palette colour over ``background``."""
    m = np.asarray(instance_mask)
    if m.ndim != 2:
        raise ValueError(f"instance mask must be (H, W), got {m.shape}")
    lut = np.array([background] + [person_color(k) for k in range(len(PALETTE))], dtype=np.uint8)  # (1 + n, 3)
    idx = np.where(m > 0, (m.astype(np.int64) - 1) % len(PALETTE) + 1, 0)
    return lut[idx]


def overlay_masks(
    img: np.ndarray, instance_mask: np.ndarray, *, alpha: float = 0.5, outline: bool = True
) -> np.ndarray:
    """Tint each instance ``k > 0`` with its palette colour and draw its outline in the same colour.

    Args:
        img: ``(H, W, 3)`` uint8 RGB (or grey) image; not modified.
        instance_mask: ``(H, W)`` integer ids, 0 background (left untouched).
        alpha: weight of the colour inside the masks, in [0, 1].
        outline: also paint the boundary pixels (:func:`mask_outline`) fully in the colour.

    Returns:
        A new ``(H, W, 3)`` uint8 image.
    """
    out = _as_rgb(img)
    m = np.asarray(instance_mask)
    if m.shape != out.shape[:2]:
        raise ValueError(f"instance mask {m.shape} does not match image {out.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colors = mask_to_color(m).astype(np.float64)  # (H, W, 3)
    inside = m > 0
    blended = (1.0 - alpha) * out[inside].astype(np.float64) + alpha * colors[inside]
    out[inside] = np.floor(blended + 0.5).astype(np.uint8)
    if outline:
        edge = mask_outline(m)
        out[edge] = colors[edge].astype(np.uint8)
    return out


def label(
    img: np.ndarray,
    text: str,
    *,
    org: tuple[int, int] = (2, 2),
    scale: float | None = None,
    color: tuple[int, int, int] = (255, 255, 255),
    box: tuple[int, int, int] | None = (0, 0, 0),
) -> np.ndarray:
    """Write one line of text with its top-left corner at ``org`` (x, y), on a filled box for legibility.

    Args:
        img: ``(H, W, 3)`` uint8 RGB (or grey) image; not modified.
        text: the text (ASCII; other characters are replaced by ``?``, as cv2's fonts lack them).
        org: top-left corner of the text box in pixels.
        scale: font scale; default fits about 40 characters across a 256-pixel-wide image, at least 0.3.
        color: text colour (RGB).
        box: background colour of the box, or None for none.

    Returns:
        A new ``(H, W, 3)`` uint8 image.
    """
    out = _as_rgb(img)
    text = text.encode("ascii", "replace").decode("ascii")
    if scale is None:
        scale = max(0.3, out.shape[1] / 640.0)
    thick = 1
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
    x, y = org
    if box is not None:
        cv2.rectangle(out, (x, y), (x + tw + 2, y + th + base + 2), tuple(int(c) for c in box), -1)
    cv2.putText(out, text, (x + 1, y + th + 1), _FONT, scale, tuple(int(c) for c in color), thick, cv2.LINE_AA)
    return out


def _fit_scale(text_height: int) -> float:
    """The font scale whose letters, descenders included, are ``text_height`` pixels tall (at least 0.25)."""
    (_, th), base = cv2.getTextSize("Ag", _FONT, 1.0, 1)
    return max(0.25, text_height / (th + base))


def hstack_panels(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    height: int | None = None,
    gap: int = 2,
    title_height: int | None = None,
    background: tuple[int, int, int] = (32, 32, 32),
    even: bool = True,
) -> np.ndarray:
    """Put images side by side at one height, each with an optional title bar above it.

    Args:
        images: ``(H_i, W_i, 3)`` uint8 RGB or ``(H_i, W_i)`` grey images.
        titles: one title per image (or None for no title bars).
        height: common image height; default the tallest image's. Images are resized keeping their aspect ratio
            (nearest neighbour when enlarging by an integer factor, so pixels stay crisp; area otherwise).
        gap: pixels of ``background`` between panels.
        title_height: height of the title bar; default scales with ``height`` (at least 12 pixels).
        background: RGB of the gaps and title bars.
        even: pad the result to even width and height (H.264 needs them).

    Returns:
        ``(title_height + height, sum of widths + gaps, 3)`` uint8 RGB (plus a pixel of padding when ``even``).
    """
    if len(images) == 0:
        raise ValueError("hstack_panels needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    rgb = [_as_rgb(im) for im in images]
    if height is None:
        height = max(im.shape[0] for im in rgb)
    resized = []
    for im in rgb:
        h, w = im.shape[:2]
        if h != height:
            new_w = max(1, round(w * height / h))
            interp = cv2.INTER_NEAREST if height % h == 0 else cv2.INTER_AREA
            im = cv2.resize(im, (new_w, height), interpolation=interp)
        resized.append(im)
    bar = 0
    if titles is not None:
        bar = title_height if title_height is not None else max(12, round(height / 12))
    total_w = sum(im.shape[1] for im in resized) + gap * (len(resized) - 1)
    total_h = bar + height
    if even:
        total_w += total_w % 2
        total_h += total_h % 2
    canvas = np.empty((total_h, total_w, 3), dtype=np.uint8)
    canvas[:] = np.asarray(background, dtype=np.uint8)
    x = 0
    for i, im in enumerate(resized):
        w = im.shape[1]
        canvas[bar : bar + height, x : x + w] = im
        if titles is not None and titles[i]:
            scale = _fit_scale(bar - 2)
            strip = label(canvas[:bar, x : x + w], titles[i], org=(0, 0), scale=scale, box=None)
            canvas[:bar, x : x + w] = strip
        x += w + gap
    return canvas


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB (or grey) image as a PNG, atomically; returns the path."""
    from hmore.io.atomic import write_bytes_atomic

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(_as_rgb(rgb)[..., ::-1]))  # cv2 wants BGR
    if not ok:  # pragma: no cover - cv2 fails only on impossible shapes
        raise ValueError(f"could not encode {Path(path).name} as PNG")
    return write_bytes_atomic(Path(path), buf.tobytes())
