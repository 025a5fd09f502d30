"""DDP: two CPU processes under torchrun (gloo) take the same steps as one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hmore.config import to_dict
from hmore.train.checkpoint import last_checkpoint, read_metadata
from hmore.train.engine import train
from hmore.train.tasks import build_task, load_task_config

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")

STEPS = 5
OVERRIDES = [f"train.steps={STEPS}", "train.batch_size=8", "train.log_every=1", "train.tensorboard=false",
             "train.device=cpu", "train.optim.lr=0.01", "train.ckpt_every=100"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(run) -> list[float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in lines if "train/loss" in r]


def test_two_processes_match_one(tmp_path):
    cfg = load_task_config("toy", None, OVERRIDES)
    single = train(build_task("toy", cfg), cfg.train, tmp_path / "one", run_config=to_dict(cfg))

    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "hmore", "train", "toy", "--out", str(tmp_path / "two")]
    for o in OVERRIDES:
        cmd += ["--set", o]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("steps 0->5") == 1  # only rank 0 prints

    w_two = load_file(str(last_checkpoint(tmp_path / "two")))
    w_one = load_file(str(last_checkpoint(tmp_path / "one")))
    np.testing.assert_allclose(_losses(tmp_path / "two"), single.losses, rtol=1e-5, atol=1e-6)
    for k in w_one:
        torch.testing.assert_close(w_two[k], w_one[k], rtol=1e-5, atol=1e-6)
    assert read_metadata(last_checkpoint(tmp_path / "two"))["step"] == STEPS
