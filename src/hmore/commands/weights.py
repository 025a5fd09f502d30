"""The weights that ship with hmore: what each is, where it came from, whether its file is intact.

``hmore weights`` lists them (name, model, task, size, licence); ``hmore weights NAME`` shows one's provenance (the
recipe command, the data, seeds, metrics, what it was fine-tuned from and its sha256); ``--check`` recomputes every
listed file's sha256 against its JSON and exits 1 naming the first that differs. Any of them can be given by name to
``--weights`` (flow, lift, classify, mesh, gait) where the model family fits.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import PurePath

HELP = "list the shipped weights, show one's provenance, check their sha256"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*",
                   help="a name (shows its provenance) or a shell-style filter, e.g. 'hmore_flow*'")
    p.add_argument("--check", action="store_true", help="recompute each listed file's sha256 against its JSON")
    p.add_argument("--json", action="store_true", help="print the full JSON metadata of the matching weights")


def _model(meta: dict) -> str:
    """The registered model name, or the builder function of an unregistered one."""
    model = meta.get("model") or {}
    return str(model.get("name") or str(model.get("builder", "?")).split(":")[-1])


def _licence(meta: dict) -> str:
    text = str(meta.get("licence") or "")
    return "MIT" if text.startswith("MIT") else ("research only" if "research" in text else text.split(":")[0])


def _origin(meta: dict, *, short: bool = False) -> str:
    """What the weights' training started from: ``scratch``, exported weights' name or a checkpoint (its file name
    when ``short``), with the step."""
    origin = meta.get("initialised_from")
    if not isinstance(origin, dict):
        return "scratch"
    name = str(origin.get("name") or origin.get("checkpoint") or "?")
    if short and not origin.get("name"):
        name = PurePath(name.split(" ")[0]).name
    step = origin.get("step")
    return name + (f" (step {step})" if step is not None else "")


def _show(name: str, meta: dict) -> None:
    rows = [
        ("model", f"{_model(meta)} {json.dumps(meta.get('model', {}).get('kwargs') or {}, sort_keys=True)}"),
        ("task", meta.get("task")),
        ("file", f"{meta.get('file')} ({meta.get('size_bytes', 0) / 1e6:.2f} MB, {meta.get('dtype')})"),
        ("sha256", meta.get("sha256")),
        ("licence", meta.get("licence")),
        ("recipe", meta.get("recipe_command")),
        ("step", meta.get("step")),
        ("seeds", json.dumps(meta.get("seeds")) if meta.get("seeds") is not None else None),
        ("started from", _origin(meta)),
    ]
    data = meta.get("training_data")
    if isinstance(data, dict):
        keys = ("source", "sources", "body", "folder", "video_folder", "cache", "size", "fps")
        rows.append(("data", ", ".join(f"{k}={json.dumps(data[k])}" for k in keys if k in data and data[k] != "")))
    metrics = meta.get("metrics")
    if isinstance(metrics, dict):
        rows.append(("metrics", ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in metrics.items())))
    for extra in ("flow_weights", "validation", "benchmark"):
        if extra in meta:
            rows.append((extra.replace("_", " "), json.dumps(meta[extra])))
    print(name)
    for key, value in rows:
        if value not in (None, ""):
            print(f"  {key:13s} {value}")


def run(args: argparse.Namespace) -> int:
    from hmore.errors import InputError
    from hmore.weights import list_ensembles, list_weights, read_ensemble_metadata, read_weights_metadata, weights_file

    everything = list_weights()
    names = [n for n in everything if fnmatch.fnmatchcase(n, args.pattern)]
    ensembles = {e: read_ensemble_metadata(e) for e in list_ensembles() if fnmatch.fnmatchcase(e, args.pattern)}
    if not names and not ensembles:
        raise InputError(f"no shipped weights match {args.pattern!r} (shipped: {', '.join(everything) or 'none'})")
    metas = {n: read_weights_metadata(n) for n in names}
    if args.check:  # an ensemble's members are weights of their own: checked when they match
        for n in names:
            weights_file(n)  # InputError naming the file whose sha256 differs
        print(f"{len(names)} weights files match their recorded sha256")
        return 0
    if args.json:
        found = {**metas, **ensembles}
        print(json.dumps(found if len(found) > 1 else next(iter(found.values())), indent=2))
        return 0
    if names == [args.pattern]:  # one name given exactly: its provenance
        _show(names[0], metas[names[0]])
        return 0
    if names:
        print(f"{'name':30s} {'model':22s} {'task':12s} {'MB':>5s}  {'licence':13s} started from")
    for n in names:
        m = metas[n]
        print(f"{n:30s} {_model(m):22s} {str(m.get('task')):12s} "
              f"{m.get('size_bytes', 0) / 1e6:5.2f}  {_licence(m):13s} {_origin(m, short=True)}")
    for e, meta in ensembles.items():  # score ensembles of shipped weights (`hmore classify --ensemble NAME`)
        members = " + ".join(f"{m.get('weight', 1.0):g}*{m['weights']}" for m in meta["members"])
        print(f"{e:30s} ensemble of {members}")
    return 0
