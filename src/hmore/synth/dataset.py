"""Datasets of generated clips: a folder of ``clip_00000.npz`` ... plus ``manifest.jsonl``.

Each manifest line is ``{"file": ..., "labels": [...], "seed": ...}`` (labels as in the clip's ``meta``). Clip i is
rendered with a seed derived from (dataset seed, i), so a dataset can be extended or resumed: clips already on disk
(written atomically, so complete) with the expected seed and parameters are kept, not rendered again.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hmore.errors import UsageError
from hmore.io.atomic import write_text_atomic
from hmore.synth.clip import clip_params, render_clip

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"


def clip_seed(seed: int, index: int) -> int:
    """The seed of clip ``index`` of a dataset with seed ``seed`` (independent streams per clip)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index), 0xDA7A]).generate_state(1)[0] >> 1)


def clip_name(index: int) -> str:
    return f"clip_{index:05d}.npz"


def _existing_meta(path: Path) -> dict[str, Any] | None:
    """The meta of a clip already on disk, or None when it is absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def _render_and_save(job: tuple[Path, int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Render clip ``job = (path, seed, render_kwargs)``, write it, return its labels (runs in worker processes)."""
    path, s, render_kwargs = job
    clip = render_clip(seed=s, **render_kwargs)
    clip.save(path)
    return clip.meta["labels"]


def write_dataset(
    out_dir: str | Path,
    *,
    clips: int,
    seed: int = 0,
    workers: int = 1,
    progress: bool | None = None,
    **render_kwargs: Any,
) -> list[dict[str, Any]]:
    """Render ``clips`` clips into ``out_dir`` and write ``manifest.jsonl``.

    Args:
        out_dir: the dataset folder (created when the first clip is written).
        clips: number of clips (>= 1).
        seed: dataset seed; clip i uses :func:`clip_seed` (seed, i).
        workers: processes rendering clips in parallel (the bytes do not depend on it).
        progress: show a progress bar (None: only on a terminal).
        **render_kwargs: passed to :func:`hmore.synth.clip.render_clip` (size, num_frames, subjects, ...).

    Returns:
        The manifest entries, one per clip.

    Raises:
        UsageError: ``clips < 1``, ``workers < 1`` or bad render arguments (raised before the first clip is written
            when the arguments themselves are wrong).
    """
    if int(clips) < 1:
        raise UsageError(f"clips must be >= 1, got {clips}")
    if int(workers) < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    seeds = [clip_seed(seed, i) for i in range(int(clips))]
    labels: dict[int, list[dict[str, Any]]] = {}
    for i, s in enumerate(seeds):  # resume: keep what is already there
        meta = _existing_meta(out / clip_name(i))
        if meta is not None and meta.get("seed") == s and _same_params(meta, render_kwargs):
            log.info("keeping %s (already rendered)", out / clip_name(i))
            labels[i] = meta["labels"]
    todo = [i for i in range(int(clips)) if i not in labels]
    disable = None if progress is None else not progress
    with tqdm(total=int(clips), initial=len(labels), desc="synth", unit="clip", disable=disable) as bar:
        if int(workers) == 1 or len(todo) <= 1:
            for i in todo:
                labels[i] = _render_and_save((out / clip_name(i), seeds[i], render_kwargs))
                bar.update()
        else:
            with concurrent.futures.ProcessPoolExecutor(max_workers=min(int(workers), len(todo))) as pool:
                futures = {pool.submit(_render_and_save, (out / clip_name(i), seeds[i], render_kwargs)): i
                           for i in todo}
                for fut in concurrent.futures.as_completed(futures):
                    labels[futures[fut]] = fut.result()
                    bar.update()
    entries = [{"file": clip_name(i), "labels": labels[i], "seed": seeds[i]} for i in range(int(clips))]
    write_text_atomic(out / MANIFEST, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    return entries


def _same_params(meta: dict[str, Any], render_kwargs: dict[str, Any]) -> bool:
    """Whether a clip on disk was rendered with these arguments (render_clip's defaults filled in)."""
    defaults = {k: p.default for k, p in inspect.signature(render_clip).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return meta.get("params") == clip_params(**{**defaults, **render_kwargs})
