"""The training engine shared by every hmore model: a task supplies the model, batches and loss; this loop does the
rest (AdamW with warm-up and exponential decay, gradient clipping, mixed precision on CUDA, DDP under ``torchrun``,
safetensors checkpoints with exact resume, TensorBoard, ``metrics.jsonl``, a progress bar).

A run folder ``out_dir`` holds ``config.json`` (the resolved run config), ``checkpoints/`` (see
:mod:`hmore.train.checkpoint`), ``tb/`` (TensorBoard events), ``metrics.jsonl`` (one JSON object per log step and
per evaluation) and ``train.lock``: while a run trains, it holds an exclusive lock on that file (``flock``, released by
the kernel when the process ends, even by ``kill -9``), so a second run on the same folder is refused instead of
interleaving checkpoints and metrics, and the lock of a killed run is taken over. Resuming continues from the last
complete checkpoint and reproduces the uninterrupted run exactly: model, optimiser, scheduler and RNG states are
restored and the data of a step is a function of the step only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm

from hmore.config import to_dict
from hmore.errors import ConfigError
from hmore.io.atomic import write_json_atomic, write_text_atomic
from hmore.io.lock import run_folder_lock
from hmore.train import checkpoint as ckpt
from hmore.train import distributed as dist_utils
from hmore.train.schedule import build_optimizer, build_scheduler, check_optim

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up, exponential decay and gradient clipping.

    Attributes:
        lr: base learning rate.
        weight_decay: AdamW's decoupled weight decay.
        betas: Adam's moment coefficients.
        decay_gamma: the learning rate is multiplied by this every ``decay_every`` steps (1 = constant).
        decay_every: steps between two decays.
        warmup_steps: linear warm-up length (0 = none).
        grad_clip: maximum global gradient norm (0 disables clipping).
    """

    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    decay_gamma: float = 1.0
    decay_every: int = 1
    warmup_steps: int = 0
    grad_clip: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """The generic part of every run config (its ``train:`` section).

    Attributes:
        steps: total optimiser steps of the run (resuming continues up to this number).
        batch_size: GLOBAL batch size, split evenly over the DDP ranks.
        seed: seeds python, numpy and torch before the model is built.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: autocast + GradScaler; only takes effect on CUDA.
        log_every: steps between two lines of ``metrics.jsonl`` / TensorBoard scalars (averaged over the window).
        ckpt_every: steps between two checkpoints (one is always written at the end).
        eval_every: steps between two evaluations (0 = only at the end, if the task evaluates anything).
        keep_checkpoints: how many of the newest checkpoints to keep (0 keeps all).
        best_metric: an eval metric (a key of the task's ``evaluate``); when set, the weights of the evaluation with
            the best value so far are kept as ``checkpoints/best.safetensors`` (``--export`` then ships those).
            Evaluations are noisy and training is not monotone: the last checkpoint is rarely the best one.
        best_mode: ``"min"`` (errors) or ``"max"`` (accuracies): which direction of ``best_metric`` is better.
        tensorboard: write TensorBoard events into ``tb/`` (skipped with a warning if tensorboard is missing).
        find_unused_parameters: DDP only: tolerate parameters that get no gradient in a step (slower).
        threads: torch intra-op threads of each process (0 keeps torch's default); 1 is often fastest on a busy CPU.
        prefetch: build the next step's batch in a background thread while this step trains (only for tasks whose
            ``batch`` is thread-safe and uses no global RNG: the data stay a function of the step).
        optim: optimiser and schedule.
    """

    steps: int = 1000
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    log_every: int = 10
    ckpt_every: int = 200
    eval_every: int = 0
    keep_checkpoints: int = 2
    best_metric: str = ""
    best_mode: str = "min"
    tensorboard: bool = True
    find_unused_parameters: bool = False
    threads: int = 0
    prefetch: bool = False
    optim: OptimConfig = field(default_factory=OptimConfig)


@runtime_checkable
class Task(Protocol):
    """What a model contributes to training. Implementations live in :mod:`hmore.train.tasks`.

    ``loss`` receives the model as trained (wrapped in DistributedDataParallel under DDP: call it, do not reach into
    its attributes); ``evaluate`` and ``images`` receive the plain model in eval mode under ``torch.no_grad``.
    """

    name: str

    def build_model(self) -> torch.nn.Module:
        """A freshly initialised model (called after seeding)."""
        ...

    def model_config(self) -> dict:
        """JSON-able description that rebuilds the model: ``{"name": registry name, "kwargs": {...}}``."""
        ...

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> Any:
        """The LOCAL batch of ``step`` for ``rank``: samples ``[rank*b, (rank+1)*b)`` of the global batch."""
        ...

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss (mean over the local batch) and floats to log."""
        ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Held-out metrics (may be empty)."""
        ...

    def images(self, model: torch.nn.Module, batch: Any) -> dict[str, np.ndarray]:
        """HxWx3 uint8 pictures for TensorBoard (may be empty)."""
        ...


@dataclass(frozen=True)
class TrainSummary:
    """What a call of :func:`train` did.

    Attributes:
        out_dir: the run folder.
        start_step: the step the call started from (0, or the resumed checkpoint's step).
        step: the step reached.
        losses: loss of every step run by this call (averaged over the ranks), in order.
        last_log: the last logged values (window averages).
        eval_metrics: the last evaluation's metrics (empty if none ran).
        checkpoint: the newest checkpoint's weights file (None if none was written).
        seconds: wall time of the training loop.
    """

    out_dir: Path
    start_step: int
    step: int
    losses: tuple[float, ...]
    last_log: dict[str, float]
    eval_metrics: dict[str, float]
    checkpoint: Path | None
    seconds: float

    @property
    def seconds_per_step(self) -> float:
        n = self.step - self.start_step
        return self.seconds / n if n > 0 else float("nan")


def check_train_config(cfg: TrainConfig, *, world_size: int = 1) -> None:
    """Raise :class:`ConfigError` for values the engine cannot run with."""
    if cfg.steps < 0:
        raise ConfigError(f"train.steps must be >= 0, got {cfg.steps}")
    if cfg.batch_size < 1:
        raise ConfigError(f"train.batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.batch_size % world_size:
        raise ConfigError(f"train.batch_size {cfg.batch_size} is not divisible by the {world_size} DDP processes")
    if cfg.threads < 0:
        raise ConfigError(f"train.threads must be >= 0, got {cfg.threads}")
    if cfg.log_every < 1 or cfg.ckpt_every < 1 or cfg.eval_every < 0 or cfg.keep_checkpoints < 0:
        raise ConfigError("train.log_every and ckpt_every must be >= 1, eval_every and keep_checkpoints >= 0")
    if cfg.best_mode not in ("min", "max"):
        raise ConfigError(f"train.best_mode must be 'min' or 'max', got {cfg.best_mode!r}")
    check_optim(cfg.optim)


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global stream, for task code that uses it
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch RNG states as plain containers and tensors (loadable with ``weights_only``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - saved for exact resume
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block (evaluation, pictures) without disturbing the training RNG streams."""
    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors inside ``batch`` (nested dicts, lists, tuples, dataclasses) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(
            batch, **{f.name: to_device(getattr(batch, f.name), device) for f in dataclasses.fields(batch) if f.init}
        )
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class _Logger:
    """``metrics.jsonl`` and TensorBoard of the main process."""

    def __init__(self, out_dir: Path, *, start_step: int, tensorboard: bool) -> None:
        self.path = out_dir / "metrics.jsonl"
        self._truncate(start_step)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                log.warning("tensorboard is not installed (%s); skipping TensorBoard logs", exc)
            else:
                self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=start_step if start_step else None)

    def _truncate(self, start_step: int) -> None:
        """Drop lines written after ``start_step`` (by a run that crashed after its last checkpoint)."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= start_step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue
        write_text_atomic(self.path, "".join(f"{k}\n" for k in kept))

    def scalars(self, step: int, values: Mapping[str, float], *, prefix: str = "") -> None:
        record = {"step": step, "time": round(time.time(), 3), **{f"{prefix}{k}": v for k, v in values.items()}}
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}{k}", v, step)

    def images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        if self.writer is None:
            return
        for k, img in images.items():
            img = np.asarray(img)
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"task image {k!r} must be HxWx3 uint8, got {img.shape} {img.dtype}")
            self.writer.add_image(f"images/{k}", img, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def _as_float(v: Any) -> float:
    return float(v.detach().item()) if isinstance(v, torch.Tensor) else float(v)


def train(task: Task, cfg: TrainConfig, out_dir: str | Path, *, resume: bool = True,
          run_config: Mapping[str, Any] | None = None) -> TrainSummary:
    """Train ``task``'s model for ``cfg.steps`` optimiser steps, writing the run folder ``out_dir``.

    Under ``torchrun`` (``WORLD_SIZE > 1``) each process calls this function; they join a process group, split the
    global batch and only rank 0 writes files.

    Args:
        task: supplies the model, data and loss (see :class:`Task`).
        cfg: the engine settings.
        out_dir: the run folder (created if needed).
        resume: continue from the folder's last complete checkpoint if there is one; False starts from step 0
            and deletes the folder's old checkpoints.
        run_config: the resolved run config to save in ``config.json`` and in every checkpoint (default: ``cfg``).

    Returns:
        A :class:`TrainSummary`.
    """
    ctx = dist_utils.setup(cfg.device)
    try:
        return _train(task, cfg, Path(out_dir), resume=resume, run_config=run_config, ctx=ctx)
    finally:
        dist_utils.teardown(ctx)


def _train(task: Task, cfg: TrainConfig, out_dir: Path, *, resume: bool, run_config: Mapping[str, Any] | None,
           ctx: dist_utils.DistContext) -> TrainSummary:
    check_train_config(cfg, world_size=ctx.world_size)
    local_batch = cfg.batch_size // ctx.world_size
    use_amp = cfg.amp and ctx.device.type == "cuda"
    run_cfg = dict(run_config) if run_config is not None else {"train": to_dict(cfg)}
    meta = {"task": task.name, "model_config": task.model_config(), "run_config": run_cfg}
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    core = task.build_model().to(ctx.device)  # before the run folder is touched: a model that cannot be built

    with contextlib.ExitStack() as stack:  # (or does not fit the data) leaves no folder behind
        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(run_folder_lock(out_dir))
        return _train_locked(task, cfg, out_dir, core, resume=resume, run_cfg=run_cfg, meta=meta, ctx=ctx,
                             local_batch=local_batch, use_amp=use_amp)


def _train_locked(task: Task, cfg: TrainConfig, out_dir: Path, core: torch.nn.Module, *, resume: bool,
                  run_cfg: dict[str, Any], meta: dict[str, Any], ctx: dist_utils.DistContext, local_batch: int,
                  use_amp: bool) -> TrainSummary:
    if ctx.is_main:
        if not resume:
            old = ckpt.list_checkpoints(out_dir / ckpt.CKPT_DIR)
            if old:
                log.warning("not resuming: deleting %d old checkpoint(s) in %s", len(old), out_dir / ckpt.CKPT_DIR)
                for _, weights in old:
                    weights.unlink()
                    ckpt.state_path(weights).unlink(missing_ok=True)
                (out_dir / ckpt.CKPT_DIR / ckpt.LAST).unlink(missing_ok=True)
        write_json_atomic(out_dir / "config.json", run_cfg)
    dist_utils.barrier(ctx)

    optimizer = build_optimizer(core.parameters(), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_step = 0
    found = ckpt.last_checkpoint(out_dir) if resume else None
    if found is not None:
        ckpt.load_weights_into(core, found)
        state = ckpt.load_state(found)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        if len(rngs) != ctx.world_size:
            log.warning("checkpoint was written by %d process(es), resuming with %d: RNG streams restart from "
                        "rank 0's state", len(rngs), ctx.world_size)
        set_rng_state(rngs[ctx.rank] if ctx.rank < len(rngs) else rngs[0])
        start_step = int(state["step"])
        log.info("resuming from %s (step %d)", found, start_step)

    model: torch.nn.Module = core
    if ctx.distributed:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=ids, find_unused_parameters=cfg.find_unused_parameters
        )

    best_value: float | None = None  # the best eval value so far (resumed from checkpoints/best.safetensors)
    if ctx.is_main and cfg.best_metric:
        found_best = ckpt.best_checkpoint(out_dir)
        if found_best is not None and found_best[1]["metric"] == cfg.best_metric:
            best_value = float(found_best[1]["value"])

    logger = _Logger(out_dir, start_step=start_step, tensorboard=cfg.tensorboard) if ctx.is_main else None
    losses: list[float] = []
    last_log: dict[str, float] = {}
    eval_metrics: dict[str, float] = {}
    last_ckpt = found
    window: dict[str, list[float]] = defaultdict(list)
    show_bar = ctx.is_main and sys.stderr.isatty()
    bar = tqdm(total=cfg.steps, initial=start_step, disable=not show_bar, desc=f"train {task.name}", unit="step")
    t0 = time.perf_counter()
    batch: Any = None

    def make_batch(step: int) -> Any:
        return task.batch(step, rank=ctx.rank, world_size=ctx.world_size, batch_size=local_batch)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hmore-prefetch") if cfg.prefetch else None
    pending: Future | None = None
    try:
        if start_step >= cfg.steps:
            log.info("run in %s already at step %d >= %d: nothing to do", out_dir, start_step, cfg.steps)
        for step in range(start_step, cfg.steps):
            if pool is None:
                host_batch = make_batch(step)
            else:
                host_batch = (pending or pool.submit(make_batch, step)).result()
                pending = pool.submit(make_batch, step + 1) if step + 1 < cfg.steps else None
            batch = to_device(host_batch, ctx.device)
            model.train()
            with torch.autocast(device_type=ctx.device.type, dtype=torch.float16, enabled=use_amp):
                loss, logs = task.loss(model, batch)
            finite = bool(torch.isfinite(loss.detach()).all())
            if not dist_utils.all_true(finite, ctx):  # every rank stops together instead of hanging in backward
                raise FloatingPointError(f"non-finite loss at step {step} of task {task.name} (rank {ctx.rank}: "
                                         f"{loss.item()})")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            values = {"loss": _as_float(loss), **{k: _as_float(v) for k, v in logs.items()}}
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(optimizer)
                values["grad_norm"] = _as_float(torch.nn.utils.clip_grad_norm_(core.parameters(), cfg.optim.grad_clip))
            values["lr"] = optimizer.param_groups[0]["lr"]
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            done = step + 1

            values = dist_utils.mean_over_ranks(values, ctx)
            losses.append(values["loss"])
            for k, v in values.items():
                window[k].append(v)
            bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.steps:
                last_log = {k: float(np.mean(v)) for k, v in window.items()}
                window.clear()
                if logger is not None:
                    logger.scalars(done, last_log, prefix="train/")
                bar.set_postfix(loss=f"{last_log['loss']:.4g}")
                log.info("step %d: %s", done, ", ".join(f"{k}={v:.4g}" for k, v in last_log.items()))

            if (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps:
                if ctx.is_main:
                    eval_metrics = _evaluate(task, core, batch, done, logger)
                    if cfg.best_metric:
                        best_value = _keep_best(cfg, out_dir, core, meta, eval_metrics, done, best_value)
                dist_utils.barrier(ctx)

            if done % cfg.ckpt_every == 0 or done == cfg.steps:
                rngs = dist_utils.gather_objects(rng_state(), ctx)
                if ctx.is_main:
                    state = {
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                        "rng": rngs,
                        "world_size": ctx.world_size,
                    }
                    last_ckpt = ckpt.save_checkpoint(out_dir, done, core, state=state, metadata=meta,
                                                     keep=cfg.keep_checkpoints)
                dist_utils.barrier(ctx)
                last_ckpt = ckpt.last_checkpoint(out_dir) if not ctx.is_main else last_ckpt
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        if logger is not None:
            logger.close()
    seconds = time.perf_counter() - t0
    return TrainSummary(
        out_dir=out_dir,
        start_step=start_step,
        step=max(start_step, cfg.steps),
        losses=tuple(losses),
        last_log=last_log,
        eval_metrics=eval_metrics,
        checkpoint=last_ckpt,
        seconds=seconds,
    )


def _keep_best(cfg: TrainConfig, out_dir: Path, core: torch.nn.Module, meta: Mapping[str, Any],
               metrics: Mapping[str, float], step: int, best: float | None) -> float | None:
    """Save the weights as the run's best when ``metrics[cfg.best_metric]`` beats ``best``; the new best value."""
    if cfg.best_metric not in metrics:
        raise ConfigError(f"train.best_metric {cfg.best_metric!r} is not among the task's eval metrics "
                          f"{sorted(metrics)}")
    value = float(metrics[cfg.best_metric])
    if not np.isfinite(value):
        return best
    better = best is None or (value < best if cfg.best_mode == "min" else value > best)
    if better:
        ckpt.save_best(out_dir, core, metadata=meta, metric=cfg.best_metric, value=value, step=step)
        return value
    return best


def _evaluate(task: Task, core: torch.nn.Module, batch: Any, step: int, logger: _Logger | None) -> dict[str, float]:
    """Run the task's evaluation and pictures on the plain model, leaving the training RNG streams untouched."""
    was_training = core.training
    core.eval()
    try:
        with preserved_rng(), torch.no_grad():
            metrics = {k: _as_float(v) for k, v in (task.evaluate(core) or {}).items()}
            pictures = task.images(core, batch) or {}
    finally:
        core.train(was_training)
    if logger is not None:
        if metrics:
            logger.scalars(step, metrics, prefix="eval/")
        logger.images(step, pictures)
    if metrics:
        log.info("eval at step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return metrics
