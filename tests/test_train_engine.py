"""The training engine: schedule, checkpoints, exact resume, crash safety, logs, strict configs and ``hmore train``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hmore.cli import main
from hmore.config import to_dict
from hmore.errors import ConfigError, InputError, UsageError
from hmore.train import checkpoint as ckpt
from hmore.train import tasks as task_registry
from hmore.train.engine import OptimConfig, Task, TrainConfig, check_train_config, to_device, train
from hmore.train.schedule import build_optimizer, build_scheduler, lr_factor
from hmore.train.tasks import build_task, load_task_config
from hmore.train.tasks.toy import ToyTask


def _toy(steps: int = 6, **train_over) -> tuple[ToyTask, TrainConfig, dict]:
    over = {"model": {"dropout": 0.2}, "train": {"steps": steps, "batch_size": 8, "log_every": 1, "ckpt_every": 100,
                                                  "tensorboard": False, "device": "cpu",
                                                  "optim": {"lr": 1e-2, "decay_gamma": 0.9, "warmup_steps": 2}}}
    over["train"].update(train_over)
    cfg = load_task_config("toy", over)
    return build_task("toy", cfg), cfg.train, to_dict(cfg)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt.last_checkpoint(run)))


def test_lr_factor_hand_values():
    assert [lr_factor(s, decay_gamma=0.5, decay_every=2, warmup_steps=0) for s in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    assert [lr_factor(s, decay_gamma=1.0, decay_every=1, warmup_steps=4) for s in range(5)] == [0.25, 0.5, 0.75, 1, 1]
    # decay counts from the end of the warm-up
    assert lr_factor(5, decay_gamma=0.5, decay_every=1, warmup_steps=2) == 0.125


def test_scheduler_drives_adamw_lr():
    p = torch.nn.Parameter(torch.zeros(3))
    optim = OptimConfig(lr=0.1, decay_gamma=0.5, decay_every=1, warmup_steps=0)
    opt = build_optimizer([p], optim)
    sched = build_scheduler(opt, optim)
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.05, 0.025])
    assert isinstance(opt, torch.optim.AdamW)


def test_bad_train_configs_raise():
    with pytest.raises(ConfigError, match="divisible"):
        check_train_config(TrainConfig(batch_size=8), world_size=3)
    with pytest.raises(ConfigError, match="lr"):
        check_train_config(TrainConfig(optim=OptimConfig(lr=0.0)))
    with pytest.raises(ConfigError, match="decay_gamma"):
        check_train_config(TrainConfig(optim=OptimConfig(decay_gamma=1.5)))
    with pytest.raises(ConfigError, match="train.bogus"):
        load_task_config("toy", {"train": {"bogus": 1}})
    with pytest.raises(ConfigError, match="train.steps"):
        load_task_config("toy", {"train": {"steps": "many"}})
    # YAML 1.1 reads 1e-4 as a string; it is still a number here
    assert load_task_config("toy", None, ["train.optim.lr=1e-4"]).train.optim.lr == 1e-4
    with pytest.raises(ConfigError, match="train.optim.lr"):
        load_task_config("toy", None, ["train.optim.lr=fast"])


def test_toy_task_satisfies_protocol_and_rank_slices_global_batch():
    task, _, _ = _toy()
    assert isinstance(task, Task)
    full = task.batch(4, rank=0, world_size=1, batch_size=8)
    halves = [task.batch(4, rank=r, world_size=2, batch_size=4) for r in range(2)]
    torch.testing.assert_close(torch.cat([h["x"] for h in halves]), full["x"], rtol=0, atol=0)
    assert not torch.equal(task.batch(5, rank=0, world_size=1, batch_size=8)["x"], full["x"])


def test_run_folder_layout_and_checkpoint_metadata(tmp_path):
    task, cfg, run_cfg = _toy(steps=7, ckpt_every=2, keep_checkpoints=2)
    s = train(task, cfg, tmp_path, run_config=run_cfg)
    assert s.step == 7 and s.start_step == 0 and len(s.losses) == 7
    assert json.loads((tmp_path / "config.json").read_text()) == run_cfg
    steps = [step for step, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")]
    assert steps == [6, 7]  # 2, 4 pruned; the end of the run always checkpoints
    assert (tmp_path / "checkpoints" / "last").read_text().strip() == "step_0000007"
    meta = ckpt.read_metadata(s.checkpoint)
    assert meta["step"] == 7 and meta["task"] == "toy" and meta["run_config"] == run_cfg
    assert meta["model_config"]["kwargs"]["dropout"] == 0.2
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "train/loss" in r] == list(range(1, 8))
    assert [r["train/loss"] for r in lines if "train/loss" in r] == pytest.approx(list(s.losses))
    assert any("eval/mse" in r for r in lines)
    assert lines[0]["train/lr"] == pytest.approx(0.5e-2)  # warm-up step 1 of 2


def test_resume_is_exact(tmp_path):
    """6 steps in one go == 3 steps, stop, resume 3 (dropout makes the torch RNG state matter)."""
    task, cfg, run_cfg = _toy(steps=6)
    full = train(task, cfg, tmp_path / "full", run_config=run_cfg)
    task3, cfg3, run_cfg3 = _toy(steps=3)
    first = train(task3, cfg3, tmp_path / "split", run_config=run_cfg3)
    second = train(task, cfg, tmp_path / "split", run_config=run_cfg)
    assert second.start_step == 3 and second.step == 6
    np.testing.assert_allclose(first.losses + second.losses, full.losses, rtol=0, atol=1e-6)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    again = train(task, cfg, tmp_path / "split", run_config=run_cfg)  # already done: no steps
    assert again.losses == () and again.step == 6


class _Crash(RuntimeError):
    pass


class _CrashingToy(ToyTask):
    def __init__(self, *, config, crash_at: int) -> None:
        super().__init__(config=config)
        self.crash_at = crash_at

    def batch(self, step, *, rank, world_size, batch_size):
        if step == self.crash_at:
            raise _Crash(f"simulated crash at step {step}")
        return super().batch(step, rank=rank, world_size=world_size, batch_size=batch_size)


def test_crash_then_resume_matches_uninterrupted_run(tmp_path):
    task, cfg, run_cfg = _toy(steps=8, ckpt_every=3)
    full = train(task, cfg, tmp_path / "full", run_config=run_cfg)
    crashing = _CrashingToy(config=task.config, crash_at=5)
    with pytest.raises(_Crash):
        train(crashing, cfg, tmp_path / "crash", run_config=run_cfg)
    # steps 4 and 5 were logged after the step-3 checkpoint; resuming drops them and redoes them
    resumed = train(task, cfg, tmp_path / "crash", run_config=run_cfg)
    assert resumed.start_step == 3
    np.testing.assert_allclose(resumed.losses, full.losses[3:], rtol=0, atol=1e-6)
    logged = [json.loads(x) for x in (tmp_path / "crash" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "train/loss" in r] == list(range(1, 9))


def test_incomplete_checkpoints_are_ignored(tmp_path):
    task, cfg, run_cfg = _toy(steps=4, ckpt_every=2)
    train(task, cfg, tmp_path, run_config=run_cfg)
    cdir = tmp_path / "checkpoints"
    # a crash between the two renames: weights of step 9 without their state; and a stale temp file
    (cdir / "step_0000009.safetensors").write_bytes(b"half")
    (cdir / ".step_0000010.abc.tmp.safetensors").write_bytes(b"partial")
    (cdir / "last").write_text("step_0000009\n")
    assert ckpt.last_checkpoint(tmp_path) == cdir / "step_0000004.safetensors"
    assert [s for s, _ in ckpt.list_checkpoints(cdir)] == [2, 4]


def test_prefetch_gives_the_same_run(tmp_path):
    task, cfg, run_cfg = _toy(steps=5)
    plain = train(task, cfg, tmp_path / "plain", run_config=run_cfg)
    task_p, cfg_p, run_cfg_p = _toy(steps=5, prefetch=True)
    pre = train(task_p, cfg_p, tmp_path / "pre", run_config=run_cfg_p)
    np.testing.assert_allclose(pre.losses, plain.losses, rtol=0, atol=1e-7)


def test_no_resume_starts_over(tmp_path):
    task, cfg, run_cfg = _toy(steps=4)
    first = train(task, cfg, tmp_path, run_config=run_cfg)
    again = train(task, cfg, tmp_path, resume=False, run_config=run_cfg)
    assert again.start_step == 0
    np.testing.assert_allclose(again.losses, first.losses, rtol=0, atol=1e-6)


def test_loss_decreases_on_toy(tmp_path):
    task, cfg, run_cfg = _toy(steps=80, log_every=20, optim={"lr": 0.03})
    s = train(task, cfg, tmp_path, run_config=run_cfg)
    assert np.mean(s.losses[-10:]) < 0.3 * np.mean(s.losses[:10])


def test_non_finite_loss_raises(tmp_path):
    class NanToy(ToyTask):
        def loss(self, model, batch):
            loss, logs = super().loss(model, batch)
            return loss * float("nan"), logs

    task, cfg, run_cfg = _toy(steps=2)
    with pytest.raises(FloatingPointError, match="step 0"):
        train(NanToy(config=task.config), cfg, tmp_path, run_config=run_cfg)


def test_tensorboard_events_written(tmp_path):
    pytest.importorskip("tensorboard")
    task, cfg, run_cfg = _toy(steps=2, tensorboard=True)
    train(task, cfg, tmp_path, run_config=run_cfg)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_to_device_walks_nested_batches():
    b = {"a": torch.zeros(2), "b": [torch.ones(1), (torch.ones(1), 3)], "c": "text"}
    out = to_device(b, torch.device("cpu"))
    assert out["c"] == "text" and out["b"][1][1] == 3 and isinstance(out["b"][1], tuple)
    assert out["a"].device.type == "cpu"


def test_weights_loading_checks_names_and_shapes(tmp_path):
    task, cfg, run_cfg = _toy(steps=1)
    s = train(task, cfg, tmp_path, run_config=run_cfg)
    other = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Dropout(), torch.nn.Linear(8, 2))
    with pytest.raises(InputError, match="shape mismatch"):
        ckpt.load_weights_into(other, s.checkpoint)
    with pytest.raises(InputError, match="missing key"):
        ckpt.load_weights_into(torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Linear(1, 1)), s.checkpoint,
                               strict=True)


def test_cli_train_and_errors(tmp_path, capsys):
    cfg_file = tmp_path / "toy.yaml"
    cfg_file.write_text("train:\n  steps: 3\n  log_every: 1\n  tensorboard: false\n  device: cpu\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: toy.yaml\nmodel:\n  hidden: 8\n")
    out = tmp_path / "run"
    assert main(["train", "toy", "--config", str(child), "--out", str(out), "--set", "train.steps=2"]) == 0
    assert "steps 0->2" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["hidden"] == 8 and saved["train"]["steps"] == 2 and saved["train"]["log_every"] == 1
    assert main(["train", "toy", "--config", str(child), "--out", str(out)]) == 0
    assert "steps 2->3" in capsys.readouterr().out
    assert main(["train", "nope"]) == 2
    assert "unknown training task 'nope'" in capsys.readouterr().err
    assert main(["train", "toy", "--config", str(cfg_file), "--set", "train.nope=1"]) == 2
    assert "train.nope" in capsys.readouterr().err


def test_task_registry_fails_lazily_with_clear_message(monkeypatch):
    monkeypatch.setitem(task_registry.TASKS, "ghost", "hmore.train.tasks.does_not_exist:Ghost")
    with pytest.raises(UsageError, match="'ghost' is not available"):
        task_registry.task_class("ghost")
    monkeypatch.setitem(task_registry.TASKS, "ghost2", "hmore.train.tasks.toy:NoSuchClass")
    with pytest.raises(UsageError, match="has no NoSuchClass"):
        task_registry.task_class("ghost2")
    assert task_registry.task_class("toy") is ToyTask


def _evals(run: Path, key: str) -> dict[int, float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r[key] for r in lines if key in r}


def test_best_metric_keeps_the_weights_of_the_best_evaluation(tmp_path):
    task, cfg, run_cfg = _toy(steps=8, ckpt_every=2, keep_checkpoints=0, eval_every=2, best_metric="mse")
    train(task, cfg, tmp_path, run_config=run_cfg)
    evals = _evals(tmp_path, "eval/mse")
    assert sorted(evals) == [2, 4, 6, 8]
    path, record = ckpt.best_checkpoint(tmp_path)
    step = min(evals, key=evals.get)
    assert record == {"metric": "mse", "value": pytest.approx(evals[step]), "step": step}
    same_step = load_file(str(tmp_path / "checkpoints" / f"{ckpt.checkpoint_stem(step)}.safetensors"))
    best = load_file(str(path))
    assert best.keys() == same_step.keys() and all(torch.equal(best[k], same_step[k]) for k in best)
    assert ckpt.read_metadata(path)["model_config"]["builder"].endswith(":build_toy_mlp")
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [2, 4, 6, 8]  # best is not one

    # resuming keeps the recorded best unless a later evaluation beats it ("max" flips the direction)
    task2, cfg2, run_cfg2 = _toy(steps=12, ckpt_every=2, keep_checkpoints=0, eval_every=2, best_metric="mse")
    train(task2, cfg2, tmp_path, run_config=run_cfg2)
    evals = _evals(tmp_path, "eval/mse")
    _, record = ckpt.best_checkpoint(tmp_path)
    assert record["step"] == min(evals, key=evals.get) and record["value"] == pytest.approx(min(evals.values()))

    task3, cfg3, run_cfg3 = _toy(steps=4, eval_every=1, best_metric="mse", best_mode="max")
    train(task3, cfg3, tmp_path / "max", run_config=run_cfg3)
    evals = _evals(tmp_path / "max", "eval/mse")
    _, record = ckpt.best_checkpoint(tmp_path / "max")
    assert record["step"] == max(evals, key=evals.get)
    assert ckpt.best_checkpoint(tmp_path / "nothing") is None


def test_best_metric_errors(tmp_path):
    with pytest.raises(ConfigError, match="best_mode"):
        check_train_config(TrainConfig(best_mode="lowest"))
    task, cfg, run_cfg = _toy(steps=2, eval_every=1, best_metric="accuracy")
    with pytest.raises(ConfigError, match=r"best_metric 'accuracy' is not among .*\['mse'\]"):
        train(task, cfg, tmp_path, run_config=run_cfg)
