"""Shipped weights: export from a checkpoint, offline loading with hash, name and shape checks, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

import hmore
from hmore import registry
from hmore.config import to_dict
from hmore.errors import InputError, UsageError
from hmore.train.engine import train
from hmore.train.tasks import build_task, load_task_config
from hmore.weights import build_model_from_config, export_weights, list_weights, load_model, sha256_file


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    train_cfg = {"steps": 3, "tensorboard": False, "device": "cpu", "log_every": 1}
    cfg = load_task_config("toy", {"model": {"hidden": 64}, "train": train_cfg})
    run = tmp_path_factory.mktemp("run")
    train(build_task("toy", cfg), cfg.train, run, run_config=to_dict(cfg))
    return run


def _reference(run):
    from hmore.train.checkpoint import last_checkpoint, load_weights_into, read_metadata

    path = last_checkpoint(run)
    model = build_model_from_config(read_metadata(path)["model_config"])
    load_weights_into(model, path)
    return model.eval()


def test_export_and_load_roundtrip_float32(toy_run, tmp_path):
    st, js = export_weights(toy_run, "toy_mlp", metadata={"training_data": "toy", "metrics": {"mse": 1.0}},
                            out_dir=tmp_path, dtype="float32")
    meta = json.loads(js.read_text())
    assert meta["sha256"] == sha256_file(st) and meta["step"] == 3 and meta["task"] == "toy"
    assert meta["training_data"] == "toy" and meta["recipe"]["train"]["steps"] == 3 and "licence" in meta
    assert list_weights(tmp_path) == ["toy_mlp"]
    model = load_model("toy_mlp", weights_dir=tmp_path)
    assert not model.training
    x = torch.randn(5, 4)
    torch.testing.assert_close(model(x), _reference(toy_run)(x), rtol=0, atol=0)
    via_package = hmore.load_model("toy_mlp", weights_dir=tmp_path)
    torch.testing.assert_close(via_package(x), model(x), rtol=0, atol=0)


def test_float16_storage_is_half_size_and_close(toy_run, tmp_path):
    st32, _ = export_weights(toy_run, "w32", metadata={}, out_dir=tmp_path, dtype="float32")
    st16, _ = export_weights(toy_run, "w16", metadata={}, out_dir=tmp_path, dtype="float16")
    assert st16.stat().st_size < 0.75 * st32.stat().st_size
    model = load_model("w16", weights_dir=tmp_path)
    assert next(model.parameters()).dtype == torch.float32  # stored half, computed in float
    x = torch.randn(5, 4)
    torch.testing.assert_close(model(x), _reference(toy_run)(x), rtol=1e-2, atol=1e-2)


def test_export_is_deterministic(toy_run, tmp_path):
    a, _ = export_weights(toy_run, "a", metadata={}, out_dir=tmp_path / "1")
    b, _ = export_weights(toy_run, "a", metadata={}, out_dir=tmp_path / "2")
    assert a.read_bytes() == b.read_bytes()


def test_corrupt_file_is_named(toy_run, tmp_path):
    st, _ = export_weights(toy_run, "bad", metadata={}, out_dir=tmp_path)
    data = bytearray(st.read_bytes())
    data[-1] ^= 0xFF
    st.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"corrupt weights file .*bad\.safetensors.*sha256"):
        load_model("bad", weights_dir=tmp_path)


def test_missing_files_are_named(toy_run, tmp_path):
    with pytest.raises(InputError, match=r"nothing\.json"):
        load_model("nothing", weights_dir=tmp_path)
    st, js = export_weights(toy_run, "gone", metadata={}, out_dir=tmp_path)
    st.unlink()
    with pytest.raises(InputError, match=r"weights file not found: .*gone\.safetensors"):
        load_model("gone", weights_dir=tmp_path)
    js.write_text("{not json")
    with pytest.raises(InputError, match=r"corrupt weights metadata file .*gone\.json"):
        load_model("gone", weights_dir=tmp_path)


def test_shape_mismatch_is_reported(toy_run, tmp_path):
    _, js = export_weights(toy_run, "shapes", metadata={}, out_dir=tmp_path)
    meta = json.loads(js.read_text())
    meta["model"]["kwargs"]["hidden"] = 8  # the file holds hidden=16 tensors
    js.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"shape mismatch.*\(64, 4\) vs model \(8, 4\)"):
        load_model("shapes", weights_dir=tmp_path)


def test_builders_outside_hmore_are_refused():
    with pytest.raises(InputError, match="must be a 'hmore.module:function'"):
        build_model_from_config({"builder": "os:system", "kwargs": {"command": "true"}})
    with pytest.raises(InputError, match="names neither"):
        build_model_from_config({"kwargs": {}})


def test_registry_names_build_models(monkeypatch):
    def tiny(*, width: int = 3) -> torch.nn.Module:
        return torch.nn.Linear(width, 1)

    registry._load_builtin_models()
    monkeypatch.setitem(registry._REGISTRY, "weights_test_tiny", tiny)
    model = build_model_from_config({"name": "weights_test_tiny", "kwargs": {"width": 5}})
    assert model.weight.shape == (1, 5)
    with pytest.raises(InputError, match="unknown model"):
        build_model_from_config({"name": "no_such_model_xyz"})


def test_reserved_metadata_keys_and_bad_dtype(toy_run, tmp_path):
    with pytest.raises(UsageError, match="sha256"):
        export_weights(toy_run, "x", metadata={"sha256": "abc"}, out_dir=tmp_path)
    with pytest.raises(UsageError, match="dtype"):
        export_weights(toy_run, "x", metadata={}, out_dir=tmp_path, dtype="int8")
    with pytest.raises(InputError, match="no complete checkpoint"):
        export_weights(tmp_path, "x", metadata={}, out_dir=tmp_path)


def test_cli_train_then_export(tmp_path, capsys):
    from hmore.cli import main

    out, wdir = tmp_path / "run", tmp_path / "weights"
    args = ["train", "toy", "--out", str(out), "--set", "train.steps=2", "--set", "train.tensorboard=false",
            "--set", "train.device=cpu", "--export", "toy_cli", "--export-dir", str(wdir)]
    assert main(args) == 0
    assert "exported" in capsys.readouterr().out
    meta = json.loads((wdir / "toy_cli.json").read_text())
    assert meta["metrics"]["mse"] > 0 and meta["seeds"] == {"train": 0, "data": 0}
    assert meta["recipe_command"].startswith("hmore train toy --set train.steps=2")
    assert load_model("toy_cli", weights_dir=wdir)(torch.zeros(1, 4)).shape == (1, 2)
    assert main(args) == 0  # the run is done: exporting again reads the metrics from metrics.jsonl
    assert json.loads((wdir / "toy_cli.json").read_text())["metrics"]["step"] == 2


def test_cli_export_ships_the_best_evaluation(tmp_path, capsys):
    from hmore.cli import main
    from hmore.train.checkpoint import best_checkpoint

    out, wdir = tmp_path / "run", tmp_path / "weights"
    args = ["train", "toy", "--out", str(out), "--set", "train.steps=6", "--set", "train.tensorboard=false",
            "--set", "train.device=cpu", "--set", "train.eval_every=1", "--set", "train.best_metric=mse",
            "--set", "train.best_mode=max",  # the worst evaluation, so that it is not the last step's
            "--export", "toy_best", "--export-dir", str(wdir)]
    assert main(args) == 0
    best_path, record = best_checkpoint(out)
    assert f"step {record['step']}" in capsys.readouterr().out
    meta = json.loads((wdir / "toy_best.json").read_text())
    assert meta["step"] == record["step"] and meta["metrics"]["step"] == record["step"]
    assert meta["metrics"]["mse"] == pytest.approx(record["value"])
    shipped = load_model("toy_best", weights_dir=wdir)
    best = build_model_from_config(meta["model"])
    from hmore.train.checkpoint import load_weights_into

    load_weights_into(best, best_path)
    x = torch.linspace(-1, 1, 8).reshape(2, 4)
    torch.testing.assert_close(shipped.eval()(x), best.eval()(x).to(shipped(x).dtype), atol=1e-2, rtol=1e-2)


def test_export_records_where_fine_tuning_started(toy_run, tmp_path):
    from hmore.commands.train import _initialised_from

    origin = _initialised_from(str(toy_run))  # a run folder: its last checkpoint
    assert origin["step"] == 3 and origin["recipe"]["model"]["hidden"] == 64
    assert origin["checkpoint"] == str(toy_run)
    assert _initialised_from("") is None
    gone = _initialised_from(str(tmp_path / "moved.safetensors"))
    assert gone["checkpoint"].endswith("moved.safetensors") and "not found" in gone["note"]


def test_export_started_from_exported_weights_records_their_lineage(toy_run, tmp_path):
    from hmore.commands.train import _initialised_from

    first, first_json = export_weights(toy_run, "leg_a", out_dir=tmp_path, metadata={
        "recipe_command": "hmore train toy --set train.steps=3", "seeds": {"train": 0, "data": 0},
        "initialised_from": {"checkpoint": "runs/older", "step": 7}})
    origin = _initialised_from(str(first))
    info = json.loads(first_json.read_text())
    assert origin["checkpoint"] == str(first) and origin["name"] == "leg_a"
    assert origin["sha256"] == info["sha256"] and origin["step"] == 3
    assert origin["recipe"]["model"]["hidden"] == 64 and origin["recipe_command"].endswith("steps=3")
    assert origin["initialised_from"] == {"checkpoint": "runs/older", "step": 7}  # the lineage nests
    info["sha256"] = "0" * 64  # a JSON that no longer describes the file is not trusted
    first_json.write_text(json.dumps(info))
    fallback = _initialised_from(str(first))
    assert "name" not in fallback and "sha256" not in fallback and fallback["checkpoint"] == str(first)


def test_export_started_from_shipped_weights_by_name_records_them(toy_run, tmp_path, monkeypatch):
    import hmore.weights as hw
    from hmore.commands.train import _initialised_from

    wdir = tmp_path / "shipped"
    _, js = export_weights(toy_run, "toy_base", out_dir=wdir, metadata={"recipe_command": "hmore train toy"})
    monkeypatch.setattr(hw, "default_weights_dir", lambda: wdir)
    monkeypatch.chdir(tmp_path)  # no file of that name here: the name means the shipped weights
    origin = _initialised_from("toy_base")
    assert origin["checkpoint"] == "toy_base" and origin["name"] == "toy_base"
    assert origin["sha256"] == json.loads(js.read_text())["sha256"] and origin["step"] == 3
    assert origin["recipe_command"] == "hmore train toy" and "note" not in origin
    unknown = _initialised_from("toy_other")  # neither a file nor shipped: noted, the export still goes on
    assert unknown["checkpoint"] == "toy_other" and "not found" in unknown["note"]


def test_weights_file_takes_a_file_or_the_name_of_shipped_weights(toy_run, tmp_path, monkeypatch):
    from hmore.weights import weights_file

    wdir = tmp_path / "shipped"
    st, js = export_weights(toy_run, "toy_alt", metadata={}, out_dir=wdir)
    assert weights_file(st) == st  # a file, as given
    assert weights_file("toy_alt", weights_dir=wdir) == wdir / "toy_alt.safetensors"
    with pytest.raises(InputError, match=r"weights file not found: toy_other .*shipped: toy_alt"):
        weights_file("toy_other", weights_dir=wdir)
    with pytest.raises(InputError, match="weights file not found: missing/toy_alt.safetensors"):
        weights_file("missing/toy_alt.safetensors", weights_dir=wdir)  # a path is never taken as a name
    monkeypatch.chdir(tmp_path)
    info = json.loads(js.read_text())
    js.write_text(json.dumps(dict(info, sha256="f" * 64)))
    with pytest.raises(InputError, match="corrupt weights file .*toy_alt.safetensors: sha256"):
        weights_file("toy_alt", weights_dir=wdir)


def test_cli_export_records_a_tasks_own_metadata(tmp_path, monkeypatch):
    from hmore.cli import main
    from hmore.train.tasks.toy import ToyTask

    monkeypatch.setattr(ToyTask, "export_metadata", {"flow_weights": {"name": "x", "sha256": "ab"}}, raising=False)
    wdir = tmp_path / "weights"
    assert main(["train", "toy", "--out", str(tmp_path / "run"), "--set", "train.steps=1", "--set",
                 "train.tensorboard=false", "--set", "train.device=cpu", "--export", "toy_meta", "--export-dir",
                 str(wdir)]) == 0
    assert json.loads((wdir / "toy_meta.json").read_text())["flow_weights"] == {"name": "x", "sha256": "ab"}


def test_cli_weights_lists_shows_and_checks(toy_run, tmp_path, monkeypatch, capsys):
    import hmore.weights as hw
    from hmore.cli import main

    wdir = tmp_path / "shipped"
    leg, _ = export_weights(toy_run, "toy_leg", out_dir=wdir, metadata={"recipe_command": "hmore train toy"})
    from hmore.commands.train import _initialised_from

    export_weights(toy_run, "toy_final", out_dir=wdir, metadata={
        "recipe_command": "hmore train toy --set init_from=toy_leg", "seeds": {"train": 1, "data": 2},
        "metrics": {"mse": 0.25}, "initialised_from": _initialised_from(str(leg))})
    monkeypatch.setattr(hw, "default_weights_dir", lambda: wdir)
    assert main(["weights"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"toy_leg", "toy_final"}
    assert rows["toy_leg"].split()[1:3] == ["build_toy_mlp", "toy"] and rows["toy_leg"].endswith("scratch")
    assert rows["toy_final"].endswith("toy_leg (step 3)")  # the lineage read from the leg's JSON
    assert main(["weights", "toy_final"]) == 0
    shown = capsys.readouterr().out
    sha = json.loads((wdir / "toy_final.json").read_text())["sha256"]
    assert f"sha256        {sha}" in shown and "mse 0.25" in shown and '{"train": 1, "data": 2}' in shown
    assert main(["weights", "toy_*", "--check"]) == 0
    assert "2 weights files match" in capsys.readouterr().out
    assert main(["weights", "toy_leg", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "toy_leg"
    (wdir / "toy_leg.safetensors").write_bytes(b"x" + (wdir / "toy_leg.safetensors").read_bytes()[1:])
    assert main(["weights", "--check"]) == 1
    err = capsys.readouterr().err
    assert "corrupt weights file" in err and "toy_leg.safetensors" in err  # names the file that differs
    assert main(["weights", "nope*"]) == 1
    assert "no shipped weights match 'nope*'" in capsys.readouterr().err
    (wdir / "toy_ens.ensemble.json").write_text(json.dumps(
        {"name": "toy_ens", "members": [{"weights": "toy_leg", "weight": 2}, {"weights": "toy_final", "weight": 0.5}]}))
    assert main(["weights", "toy_e*"]) == 0
    assert capsys.readouterr().out.split() == ["toy_ens", "ensemble", "of", "2*toy_leg", "+", "0.5*toy_final"]
