"""Every recipe in configs/ still loads under its task's strict config (a renamed or removed key breaks it here, not
in somebody's training run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hmore.config import ConfigError
from hmore.train.tasks import load_task_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# file-name prefix -> task (first match wins; README and each file's header give the commands)
TASKS = (("lift_h36m_", "lift_h36m"), ("lift_gen_", "lift_h36m"), ("lift_", "lift"), ("flow_", "flow"),
         ("action_flow", "action_flow"), ("action_", "action"), ("concepts_", "concepts"),
         ("concept_qa_", "concept_qa"), ("gait_", "gait"), ("mesh_", "mesh"))


def _task_of(name: str) -> str:
    return next(task for prefix, task in TASKS if name.startswith(prefix))


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_recipe_loads_under_its_task(path: Path) -> None:
    cfg = load_task_config(_task_of(path.name), path)
    assert cfg.train.steps > 0


def test_a_recipe_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "lift_h36m_bad.yaml"
    bad.write_text(f"base: {CONFIGS / 'lift_h36m_pose1_c.yaml'}\ntrain:\n  stepz: 3\n")
    with pytest.raises(ConfigError, match="stepz"):
        load_task_config(_task_of(bad.name), bad)
