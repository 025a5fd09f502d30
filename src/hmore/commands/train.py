"""Train a model: ``hmore train TASK --config FILE [--out DIR] [--resume/--no-resume] [--set key=value ...]``.

The config is a strict YAML/JSON file (unknown keys are errors, ``base:`` inherits from another file) with ``model``,
``data`` and ``train`` sections; ``--set train.steps=100`` overrides single values. The run folder gets the resolved
config, checkpoints, TensorBoard logs and ``metrics.jsonl``; running the same command again resumes from the last
checkpoint. Under ``torchrun --nproc_per_node N -m hmore train ...`` the processes train together with DDP.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmore.train.tasks import TASKS

HELP = f"train a model (tasks: {', '.join(TASKS)}) with checkpoints, exact resume and DDP"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help=f"training task name: {', '.join(TASKS)}")
    add_run_options(p)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a training run (everything but the task), shared with ``hmore concepts train``."""
    p.add_argument("--config", type=Path, default=None, help="YAML/JSON run config (default: the task's defaults)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<task>/<config name>)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the run folder's last checkpoint (default) or start over")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set train.steps=100 (repeatable)")
    p.add_argument("--export", metavar="NAME", default=None,
                   help="then export the run's weights as shipped weights NAME (fp16 safetensors + JSON metadata): "
                        "the best evaluation's when train.best_metric is set, else the last checkpoint's")
    p.add_argument("--export-dir", type=Path, default=None,
                   help="folder for --export (default: the package's hmore/assets/weights)")


def run(args: argparse.Namespace) -> int:
    from hmore.config import to_dict
    from hmore.io.atomic import check_output_dir
    from hmore.train.distributed import env_int
    from hmore.train.engine import train
    from hmore.train.tasks import build_task, load_task_config

    cfg = load_task_config(args.task, args.config, args.overrides)
    out = args.out or Path("runs") / args.task / (args.config.stem if args.config else "default")
    check_output_dir(out, option="--out")
    task = build_task(args.task, cfg)
    summary = train(task, cfg.train, out, resume=args.resume, run_config=to_dict(cfg))
    if env_int("RANK", 0) == 0:
        if summary.step == summary.start_step:
            print(f"{args.task}: {out} is already at step {summary.step}; nothing to do")
        else:
            loss = summary.last_log.get("loss", float("nan"))
            print(f"{args.task}: steps {summary.start_step}->{summary.step} in {summary.seconds:.1f} s "
                  f"({summary.seconds_per_step:.3f} s/step), last loss {loss:.4g}; checkpoint {summary.checkpoint}")
            for k, v in summary.eval_metrics.items():
                print(f"  eval {k}: {v:.4g}")
        if args.export:
            from hmore.train.checkpoint import best_checkpoint
            from hmore.weights import export_weights

            run_cfg = to_dict(cfg)
            source: Path = out
            metrics = summary.eval_metrics or _last_eval(out)
            best = best_checkpoint(out) if cfg.train.best_metric else None
            if best is not None:
                source, record = best
                metrics = _last_eval(out, step=int(record["step"])) or {record["metric"]: record["value"]}
                print(f"exporting the best evaluation: step {record['step']}, {record['metric']} "
                      f"{record['value']:.4g}")
            metadata = {
                "training_data": run_cfg.get("data"),
                "seeds": {"train": cfg.train.seed, "data": (run_cfg.get("data") or {}).get("seed")},
                "metrics": metrics,
                "recipe_command": _command(args),
            }
            if getattr(task, "weights_licence", None):  # trained on data whose terms apply (default: MIT, generated)
                metadata["licence"] = task.weights_licence
            metadata.update(getattr(task, "export_metadata", None) or {})  # a task's own provenance (its inputs)
            origin = _initialised_from(run_cfg.get("init_from"))
            if origin:
                metadata["initialised_from"] = origin
            st, js = export_weights(source, args.export, metadata=metadata, out_dir=args.export_dir)
            print(f"exported {st} ({st.stat().st_size / 1e6:.2f} MB) and {js}")
    return 0


def _last_eval(run_dir: Path, *, step: int | None = None) -> dict[str, float]:
    """The last ``eval/`` record of a run's ``metrics.jsonl`` (without the prefix; of ``step`` if given), or {}."""
    import json

    path = run_dir / "metrics.jsonl"
    found: dict[str, float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            evals = {k[len("eval/"):]: v for k, v in rec.items() if k.startswith("eval/")}
            if evals and (step is None or rec["step"] == step):
                found = dict(evals, step=rec["step"])
    return found


def _initialised_from(init_from: object) -> dict[str, object] | None:
    """Where a fine-tuned run's starting weights came from: the checkpoint, its step and its own recipe."""
    if not init_from:
        return None
    from hmore.errors import InputError
    from hmore.train.checkpoint import read_metadata, resolve_checkpoint
    from hmore.weights import weights_file

    try:
        if Path(str(init_from)).exists():
            path = resolve_checkpoint(str(init_from))
        else:  # a task may start from shipped weights by name (``init_from: lift_mlp_h36m``)
            path = weights_file(str(init_from))
        meta = read_metadata(path)
    except InputError as exc:  # the run already loaded it; a moved file must not block the export
        return {"checkpoint": str(init_from), "note": f"metadata unavailable at export: {exc}"}
    exported = _exported_info(path)
    if exported is not None:  # exported weights: their JSON carries the recipe and, nested, its own origin
        keep = ("name", "sha256", "step", "recipe", "recipe_command", "seeds", "metrics", "initialised_from")
        return {"checkpoint": str(init_from), **{k: exported[k] for k in keep if k in exported}}
    return {"checkpoint": str(init_from), "step": meta.get("step"), "recipe": meta.get("run_config")}


def _exported_info(path: Path) -> dict[str, object] | None:
    """The JSON written beside exported weights (``<stem>.json``), if it describes exactly this file."""
    import json

    from hmore.weights import sha256_file

    info_path = path.with_suffix(".json")
    if path.suffix != ".safetensors" or not info_path.is_file():
        return None
    try:
        info = json.loads(info_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(info, dict) or info.get("sha256") != sha256_file(path):  # a stale or foreign JSON
        return None
    return info


def _command(args: argparse.Namespace) -> str:
    parts = ["hmore", "train", args.task]
    if args.config:
        parts += ["--config", str(args.config)]
    parts += [f"--set {o}" for o in args.overrides]
    return " ".join(parts)
