"""The H-MoRe flow pipeline: inference on videos and clips (:mod:`hmore.flow.inference`), with camera compensation
(:mod:`hmore.flow.camera`), photometric refinement inside people (:mod:`hmore.flow.refine`) and the subject motion of
local flow (:mod:`hmore.flow.subject`), and training (:mod:`hmore.flow.task`, the ``hmore train flow`` task, with its
config, data, objective and evaluation modules). The network itself lives in :mod:`hmore.models.flow`.

The package is callable, so ``hmore.flow(video, ...)`` stays the one-line entry point: it is
:func:`hmore.flow.inference.flow` (same arguments).
"""

from __future__ import annotations

import sys
import types
from typing import Any


def flow(video_or_frames: Any, **kwargs: Any) -> Any:
    """H-MoRe world/local flow of a clip: :func:`hmore.flow.inference.flow` (imported lazily; same arguments)."""
    from hmore.flow.inference import flow as _flow

    return _flow(video_or_frames, **kwargs)


class _CallableModule(types.ModuleType):
    """``hmore.flow`` is both this package and a function: calling the package calls :func:`flow`."""

    def __call__(self, video_or_frames: Any, **kwargs: Any) -> Any:
        return flow(video_or_frames, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
