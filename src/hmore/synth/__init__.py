"""Ground-truth generator of people in motion: bodies, motions, cameras, exact rasterisation and flow."""

# Lazy exports (importing the renderer pulls in the motion library): hmore.synth.render_clip(...) etc.
_LAZY = {"render_clip": "clip", "load_clip": "clip", "Clip": "clip", "local_flow": "clip", "write_dataset": "dataset"}


def __getattr__(name: str):  # PEP 562
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"hmore.synth.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hmore.synth' has no attribute {name!r}")
