"""Score ensembles of action models and the 20-joint Kinect layout: fusion against hand-computed numbers, the
KINECT20 graph, view normalisation of both layouts, strict configs, and classify / bench with tiny ``test_*``
models (the bench part reads the shared NW-UCLA data and is skipped without it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_file
from hmore.errors import ConfigError, InputError
from hmore.models.motion.ensemble import ActionEnsemble, fuse_scores
from hmore.models.motion.stgcn import STGCNConfig, partition_adjacency
from hmore.registry import create_model
from hmore.skeleton import KINECT20, flip
from hmore.train.tasks.action import (
    ActionDataConfig,
    ActionModelConfig,
    ActionRunConfig,
    ActionTask,
    view_normalize,
)


def test_fuse_scores_hand_computed() -> None:
    z1 = torch.tensor([[0.0, math.log(3.0)]])  # softmax (0.25, 0.75)
    z2 = torch.tensor([[5.0, 5.0]])  # softmax (0.5, 0.5)
    np.testing.assert_allclose(fuse_scores([z1, z2], [1.0, 3.0]).numpy(), [[(0.25 + 1.5) / 4, (0.75 + 1.5) / 4]],
                               rtol=1e-6)
    np.testing.assert_allclose(fuse_scores([z1, z2], [1.0, 0.0]).numpy(), [[0.25, 0.75]], rtol=1e-6)
    with pytest.raises(ValueError, match="one weight per member"):
        fuse_scores([z1], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive sum"):
        fuse_scores([z1, z2], [0.0, 0.0])


class _Fixed(torch.nn.Module):
    """Logits = the given row for every clip; records the joint count it was given."""

    def __init__(self, row: list[float]) -> None:
        super().__init__()
        self.row = torch.nn.Parameter(torch.tensor(row), requires_grad=False)
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.shape[3])
        return self.row.expand(x.shape[0], -1)


def test_action_ensemble_softmax_is_the_fused_score_and_adapters_map_joints() -> None:
    from hmore.data.nw_ucla import h36m17_matrix

    a, b = _Fixed([0.0, math.log(3.0)]), _Fixed([math.log(4.0), 0.0])  # (0.25, 0.75) and (0.8, 0.2)
    ens = ActionEnsemble(members=[a, b], weights=[2.0, 1.0],
                         adapters=[None, torch.from_numpy(h36m17_matrix()).float()])
    x = torch.randn(3, 1, 8, 20, 3)  # (N, M, T, J, C), Kinect's 20 joints
    prob = ens(x).softmax(dim=-1)
    np.testing.assert_allclose(prob.numpy(), np.tile([(0.5 + 0.8) / 3, (1.5 + 0.2) / 3], (3, 1)), rtol=1e-5)
    assert a.seen == [20] and b.seen == [17]  # the second member read the H36M-17 mapping of the input
    with pytest.raises(ValueError, match="need as many weights"):
        ActionEnsemble(members=[a, b], weights=[1.0])


def test_kinect20_layout_and_graph() -> None:
    from hmore.data.nw_ucla import JOINT_NAMES, PARENTS

    assert KINECT20.joints == JOINT_NAMES and KINECT20.parents == PARENTS
    assert PARENTS[KINECT20.index("HandLeft")] == KINECT20.index("WristLeft")
    assert PARENTS[KINECT20.index("FootRight")] == KINECT20.index("AnkleRight")
    for i, j in enumerate(KINECT20.flip_index):  # left <-> right by name; centre joints stay
        assert KINECT20.joints[j] == KINECT20.joints[i].replace("Left", "@").replace("Right", "Left").replace(
            "@", "Right")
    # symmetric joints have mirrored parents
    assert all(KINECT20.flip_index[PARENTS[i]] == PARENTS[KINECT20.flip_index[i]] for i in range(1, 20))
    a = partition_adjacency(KINECT20)
    assert a.shape == (3, 20, 20)
    hand, wrist = KINECT20.index("HandRight"), KINECT20.index("WristRight")
    assert a[1, wrist, hand] == 1.0 and a[2, hand, wrist] == 1.0  # the hand: the wrist's farther neighbour
    np.testing.assert_allclose(a[2, [1, 12, 16], 0], 1 / 3)  # HipCenter's children: Spine, both hips
    np.testing.assert_allclose(a.sum(axis=1)[a.sum(axis=1) > 0], 1.0)
    m = create_model("stgcn_action_test", layout="kinect20").eval()
    assert m(torch.randn(2, 1, 8, 20, 3)).shape == (2, 4)
    with pytest.raises(ValueError, match="kinect20 graph has 20 joints"):
        STGCNConfig(layout="kinect20", num_joints=17)
    with pytest.raises(ValueError, match="layout must be one of"):
        STGCNConfig(layout="ntu25")


def test_view_normalize_kinect20_maps_to_the_h36m17_result() -> None:
    from hmore.data.nw_ucla import to_h36m17

    rng = np.random.default_rng(3)
    k = (rng.normal(0, 0.3, (12, 20, 3)) + [0.2, 0.1, 3.0]).astype(np.float64)
    for track in (False, True):
        a = view_normalize(k, layout="kinect20", track=track)
        np.testing.assert_allclose(to_h36m17(a), view_normalize(to_h36m17(k), track=track), atol=1e-5)
    # mirrored input: flipping in the body's axes is the same as flipping first
    np.testing.assert_allclose(flip(view_normalize(k, layout="kinect20"), KINECT20),
                               view_normalize(flip(k, KINECT20), layout="kinect20"), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(T, 20, 3\) kinect20"):
        view_normalize(k[:, :17], layout="kinect20")
    with pytest.raises(ValueError, match="knows the layouts"):
        view_normalize(k, layout="coco17")


def test_layout_config_is_strict() -> None:
    from hmore.config import load_config

    ucla = {"dataset": "nw_ucla", "input": "3d"}
    with pytest.raises(ConfigError, match="data.layout must be one of"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(**ucla, layout="ntu25")))
    with pytest.raises(ConfigError, match="'kinect20' needs data.dataset nw_ucla"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(layout="kinect20")))
    with pytest.raises(ConfigError, match="unknown config key.*data.joints"):
        load_config(ActionRunConfig, {"data": {**ucla, "joints": "kinect20"}})
    cfg = load_config(ActionRunConfig, Path(__file__).parents[1] / "configs" / "action_ucla_stgcn_k20.yaml")
    assert cfg.data.layout == "kinect20" and cfg.model.kwargs["layout"] == "kinect20"
    assert cfg.model.kwargs["streams"] == ["joint", "bone", "velocity"]  # the rest comes from the base config


def _kinect_task(layout: str, normalize: str = "view") -> ActionTask:
    kw = {"layout": "kinect20"} if layout == "kinect20" else {}
    return ActionTask(config=ActionRunConfig(
        model=ActionModelConfig(name="stgcn_action_test", kwargs=kw),
        data=ActionDataConfig(dataset="nw_ucla", input="3d", sampling="whole", clip_len=8, normalize=normalize,
                              layout=layout)))


def _checkpoint(path: Path, layout: str, seed: int) -> Path:
    from hmore.train.checkpoint import save_weights

    task = _kinect_task(layout)
    torch.manual_seed(seed)
    return save_weights(path, task.build_model(), metadata={"model_config": task.model_config()})


def test_kinect20_task_batches_mirror_hands() -> None:
    task = _kinect_task("kinect20")
    rng = np.random.default_rng(0)
    x = (rng.normal(0, 0.3, (1, 20, 20, 3))).astype(np.float32)
    x -= x[:, :, :1]
    from hmore.train.tasks.action import ActionInput

    task._inputs = {"train": [ActionInput(name="s", label=1, x=x)]}
    b = task.batch(0, rank=0, world_size=1, batch_size=4)
    assert b["x"].shape == (4, 1, 8, 20, 3) and task.model_config()["layout"] == "nw_ucla_kinect20"


def test_ensemble_classify_mixed_layouts(tmp_path: Path, capsys) -> None:
    from hmore.cli import main
    from hmore.lift.classify import load_action_model, parse_ensemble_spec

    k20 = _checkpoint(tmp_path / "k20.safetensors", "kinect20", 0)
    h36 = _checkpoint(tmp_path / "h36.safetensors", "h36m17", 1)
    spec = f"{k20}*2+{h36}"
    assert parse_ensemble_spec("a*0.5+b") == [("a", 0.5), ("b", 1.0)]
    with pytest.raises(InputError, match="not a number"):
        parse_ensemble_spec("a*x+b")
    am = load_action_model(ensemble=spec)
    assert am.layout == "nw_ucla_kinect20" and am.members == (f"{k20}*2", f"{h36}*1")
    joints = (np.random.default_rng(0).normal(0, 0.3, (25, 20, 3)) + [0, 0, 3]).astype(np.float32)
    np.save(tmp_path / "seq.npy", joints)
    from hmore.lift.classify import classify_inputs, prepare_inputs

    one = [load_action_model(checkpoint=p) for p in (k20, h36)]
    probs = [classify_inputs(m, prepare_inputs(m, tmp_path / "seq.npy")) for m in one]
    fused = classify_inputs(am, prepare_inputs(am, tmp_path / "seq.npy"))
    np.testing.assert_allclose(fused, (2 * probs[0] + probs[1]) / 3, atol=1e-5)  # the members' own inputs
    assert main(["classify", str(tmp_path / "seq.npy"), "--ensemble", spec, "--top", "2"]) == 0
    assert capsys.readouterr().out.startswith("seq: ")
    kp = np.ones((10, 1, 17, 3), np.float32)
    np.save(tmp_path / "kp.npy", kp)
    assert main(["classify", str(tmp_path / "kp.npy"), "--checkpoint", str(k20), "--size", "64x64"]) == 1
    assert "use an H36M-17 model" in capsys.readouterr().err
    with pytest.raises(InputError, match="neither shipped weights nor a run folder"):
        load_action_model(ensemble=f"{k20}+no_such_model")


def test_shipped_ensemble_file(tmp_path: Path, monkeypatch) -> None:
    import hmore.weights as w

    monkeypatch.setattr(w, "default_weights_dir", lambda: tmp_path)
    members = [{"weights": "a", "weight": 2}, {"weights": "b"}]
    (tmp_path / "e.ensemble.json").write_text(json.dumps({"members": members}))
    (tmp_path / "bad.ensemble.json").write_text(json.dumps({"members": [{"name": "a"}]}))
    assert w.list_ensembles() == ["bad", "e"]
    assert [m["weights"] for m in w.read_ensemble_metadata("e")["members"]] == ["a", "b"]
    with pytest.raises(InputError, match="needs 'members'"):
        w.read_ensemble_metadata("bad")


def test_action_bench_scores_an_ensemble_on_shared_data(shared_data: Path, tmp_path: Path) -> None:
    from hmore.bench.action_bench import format_table, run

    require_file(shared_data, "nw_ucla", "nw_ucla_skeletons.npz")
    k20 = _checkpoint(tmp_path / "k20.safetensors", "kinect20", 0)
    h36 = _checkpoint(tmp_path / "h36.safetensors", "h36m17", 1)
    s = run(models=[f"ens={k20}+{h36}"], out_dir=tmp_path / "bench", root=str(shared_data / "nw_ucla"))
    assert set(s["models"]) == {"ens"} and s["models"]["ens"]["layout"] == "nw_ucla_kinect20"
    assert s["models"]["ens"]["origin"].startswith("ensemble ")
    assert sum(map(sum, s["models"]["ens"]["confusion"])) == 464 and "| ens |" in format_table(s)
    v2 = run(models=[f"k20={k20}"], out_dir=tmp_path / "v2", root=str(shared_data / "nw_ucla"), on="view2")
    assert v2["test_sequences"] == 504 and v2["anchors"] == [] and "view 2" in v2["benchmark"]


def test_shipped_nw_ucla_models_and_ensemble(tmp_path: Path) -> None:
    from hmore.lift.classify import classify_inputs, load_action_model, prepare_inputs

    k20 = load_action_model(weights="action_ucla_stgcn_k20")
    assert k20.layout == "nw_ucla_kinect20" and k20.normalize == "view" and k20.input == "3d"
    ens = load_action_model(weights="action_ucla_ens")
    assert ens.layout == "nw_ucla_kinect20" and ens.members == ("action_ucla_stgcn*2", "action_ucla_stgcn_k20*1")
    joints = (np.random.default_rng(0).normal(0, 0.3, (25, 20, 3)) + [0, 0, 3]).astype(np.float32)
    np.save(tmp_path / "seq.npy", joints)
    h36 = load_action_model(weights="action_ucla_stgcn")
    p = [classify_inputs(m, prepare_inputs(m, tmp_path / "seq.npy")) for m in (h36, k20, ens)]
    np.testing.assert_allclose(p[2], (2 * p[0] + p[1]) / 3, atol=1e-5)
