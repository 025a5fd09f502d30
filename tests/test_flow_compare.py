"""benchmarks/flow_compare.py: clip-bootstrap differences, restricted to named clips and pooled over sets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "flow_compare.py"


@pytest.fixture(scope="module")
def flow_compare():
    spec = importlib.util.spec_from_file_location("flow_compare", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _results() -> dict:
    clips = [{"name": "a", "set": "static", "pairs": 2}, {"name": "b", "set": "static", "pairs": 6},
             {"name": "c", "set": "moving", "pairs": 4}]
    m1 = {"a": {"leakage": 1.0}, "b": {"leakage": 2.0}, "c": {"leakage": 4.0}}
    m2 = {"a": {"leakage": 0.5}, "b": {"leakage": 1.0}, "c": {"leakage": 1.0}}
    return {"clips": clips, "methods": {"m1": {"per_clip": m1}, "m2": {"per_clip": m2}}}


def test_per_set_means_weighted_by_pairs(flow_compare):
    out = flow_compare.compare(_results(), "m1", "m2", "leakage", resamples=50, seed=0)
    assert set(out) == {"static", "moving"}
    assert out["static"][0] == pytest.approx((0.5 * 2 + 1.0 * 6) / 8)  # 0.875
    assert out["static"][3] == 2
    assert out["static"][4:] == pytest.approx(((1.0 * 2 + 2.0 * 6) / 8, (0.5 * 2 + 1.0 * 6) / 8))  # A's, B's means
    assert out["moving"][:3] == pytest.approx((3.0, 3.0, 3.0))  # one clip: no spread


def test_named_clips_pooled_over_sets(flow_compare):
    out = flow_compare.compare(_results(), "m1", "m2", "leakage", resamples=200, seed=0, clips={"a", "c"}, pool=True)
    assert list(out) == ["pooled"]
    mean, lo, hi, n, _, _ = out["pooled"]
    assert n == 2
    assert mean == pytest.approx((0.5 * 2 + 3.0 * 4) / 6)
    assert 0.5 <= lo <= mean <= hi <= 3.0
    only_b = flow_compare.compare(_results(), "m1", "m2", "leakage", resamples=10, seed=0, clips={"b"})
    assert list(only_b) == ["static"] and only_b["static"][0] == pytest.approx(1.0)


def test_runs_of_other_seeds_are_averaged_per_clip(flow_compare):
    second = _results()
    second["methods"]["m2"]["per_clip"] = {"a": {"leakage": 1.5}, "b": {"leakage": 1.0}}  # no value for clip c
    second["methods"] = {"m1_s1": second["methods"]["m1"], "m2_s1": second["methods"]["m2"]}
    out = flow_compare.compare(_results(), "m1", "m2", "leakage", resamples=50, seed=0,
                               also=[(second, "m1_s1", "m2_s1")])
    assert set(out) == {"static"}  # clip c was not scored in the second run, so the moving set is empty
    # clip a: differences 0.5 and -0.5 -> 0; clip b: 1.0 and 1.0 -> 1.0; weighted by pairs 2 and 6
    assert out["static"][0] == pytest.approx((0.0 * 2 + 1.0 * 6) / 8)
    assert out["static"][4:] == pytest.approx(((1.0 * 2 + 2.0 * 6) / 8, (1.0 * 2 + 1.0 * 6) / 8))
    with pytest.raises(SystemExit, match="m2_s9"):
        flow_compare.compare(_results(), "m1", "m2", "leakage", resamples=5, seed=0, also=[(second, "m1_s1", "m2_s9")])
