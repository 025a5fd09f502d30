"""Gait recognition: OpenGait silhouette crop, CASIA-B protocol, losses, GaitBase, the gait task, the generated set,
OpenGait pickles, the benchmark's bookkeeping and CLI errors."""

from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hmore.cli import main
from hmore.errors import InputError, UsageError
from hmore.flowfeed import FLOW_STEP, channels_of, dequantise_flow, quantise_flow
from hmore.gait.data import GaitArrays, GaitSequence, GaitSetConfig, sequences
from hmore.gait.silhouette import SIL_HEIGHT, SIL_WIDTH, crop_box, crop_silhouette
from hmore.losses.gait import batch_all_triplet_loss, part_cross_entropy
from hmore.metrics.gait import casia_rank1, part_distance
from hmore.registry import create_model

# ---- silhouettes ---------------------------------------------------------------------------------------------------


def test_crop_of_a_rectangle_is_height_normalised_and_centred():
    mask = np.zeros((100, 120), np.uint8)
    mask[20:84, 50:66] = 1  # 64 rows x 16 columns: no resize
    box = crop_box(mask)
    assert (box.top, box.bottom, box.width) == (20, 83, 120)
    sil = crop_silhouette(mask)
    assert sil.shape == (SIL_HEIGHT, SIL_WIDTH) and sil.dtype == np.uint8
    assert (sil[:, :] == 255).all(axis=0).sum() == 16  # every row of the person kept
    cols = np.flatnonzero(sil.max(axis=0))
    # OpenGait: the first column where the cumulative mass exceeds half (source column 58, the 9th of 16) sits at
    # column 22 of the 44-wide crop (32 of the 64-wide one)
    assert (cols[0], cols[-1]) == (22 - 8, 22 + 7)


def test_crop_of_an_empty_mask_is_none_and_zeros():
    assert crop_box(np.zeros((10, 10))) is None
    assert not crop_silhouette(np.zeros((10, 10))).any()


def test_flow_crop_scales_vectors_with_the_resize():
    mask = np.zeros((200, 100), np.uint8)
    mask[0:128, 40:60] = 1  # 128 rows -> 64: factor 0.5
    box = crop_box(mask)
    assert box.sy == pytest.approx(0.5) and box.sx == pytest.approx(0.5)
    flow = np.zeros((200, 100, 2), np.float32)
    flow[..., 0], flow[..., 1] = 4.0, -2.0
    out = box.apply(flow, flow=True)
    assert out.shape == (SIL_HEIGHT, SIL_WIDTH, 2)
    inside = crop_silhouette(mask, box) > 0
    np.testing.assert_allclose(out[inside], np.tile([2.0, -1.0], (inside.sum(), 1)), atol=1e-5)


def test_flow_quantisation_round_trip_and_clipping():
    f = np.array([0.0, 0.06, -1.0, 3.3, 100.0], np.float32)
    q = quantise_flow(f)
    assert q.dtype == np.int8
    np.testing.assert_allclose(dequantise_flow(q), [0.0, 0.0, -1.0, 3.25, 127 * FLOW_STEP])
    np.testing.assert_allclose(dequantise_flow(quantise_flow(f, 0.5), 0.5), [0.0, 0.0, -1.0, 3.5, 63.5])


def test_channel_specs():
    assert channels_of("sil+world+local") == ("world", "local")
    assert channels_of("rgb") == ()
    with pytest.raises(UsageError, match="unknown input channel"):
        channels_of("sil+raft")


# ---- CASIA-B protocol, losses --------------------------------------------------------------------------------------


def _toy_protocol():
    """2 subjects x 2 views: gallery nm-01; probes nm-05 (right everywhere), cl-01 (right only in its own view)."""
    subjects, types, views, emb = [], [], [], []
    for s in (1, 2):
        for v in (0.0, 90.0):
            for t in ("nm-01", "nm-05", "cl-01"):
                e = np.array([10.0 * s, v / 90.0])  # subject along x, view along y
                if t == "cl-01":  # the coat moves it to the other subject's place, except in its own view
                    e = np.array([10.0 * (3 - s), v / 90.0])
                subjects.append(s)
                types.append(t)
                views.append(v)
                emb.append(e)
    return np.array(emb)[:, None, :], subjects, types, views  # (N, 1 part, 2)


def test_casia_rank1_on_a_hand_made_set():
    emb, subjects, types, views = _toy_protocol()
    r = casia_rank1(emb, subjects, types, views, gallery=("nm-01",), probes={"NM": ("nm-05",), "CL": ("cl-01",)})
    assert r.views == (0.0, 90.0)
    assert r.mean["NM"] == 1.0 and r.mean["CL"] == 0.0
    np.testing.assert_array_equal(r.matrix["CL"], np.zeros((2, 2)))
    assert r.as_dict()["per_view"]["NM"] == [1.0, 1.0]


def test_casia_rank1_excludes_the_identical_view():
    # probes right only against their own view's gallery
    emb = np.array([[0.0], [5.0], [0.1], [5.1], [5.0], [0.0], [5.1], [0.1]])[:, None, :]
    subjects = [1, 1, 1, 1, 2, 2, 2, 2]
    types = ["nm-01", "nm-01", "nm-05", "nm-05"] * 2
    views = [0.0, 90.0, 0.0, 90.0] * 2
    r = casia_rank1(emb, subjects, types, views, gallery=("nm-01",), probes={"NM": ("nm-05",)})
    np.testing.assert_array_equal(r.matrix["NM"], [[1.0, 0.0], [0.0, 1.0]])
    assert r.mean["NM"] == 0.0 and r.mean_with_identical["NM"] == 0.5
    with pytest.raises(ValueError, match="2 views"):
        casia_rank1(emb[::2], subjects[::2], types[::2], views[::2])


def test_part_distance_averages_strips():
    a = np.zeros((1, 2, 3))
    b = np.zeros((1, 2, 3))
    b[0, 0, 0], b[0, 1, 0] = 3.0, 1.0
    assert part_distance(a, b)[0, 0] == pytest.approx(2.0)


def test_triplet_loss_by_hand():
    emb = torch.tensor([[0.0], [0.1], [1.0], [1.05]])[:, None, :]  # (4, 1 part, 1)
    labels = torch.tensor([0, 0, 1, 1])
    # with margin 2, every triplet violates: loss = mean over triplets of d(a,p) - d(a,n) + 2
    d = torch.cdist(emb[:, 0], emb[:, 0])
    vals = [d[a, p] - d[a, n] + 2.0 for a in range(4) for p in range(4) for n in range(4)
            if a != p and labels[a] == labels[p] and labels[a] != labels[n]]
    assert batch_all_triplet_loss(emb, labels, margin=2.0).item() == pytest.approx(float(np.mean(vals)), rel=1e-5)
    assert batch_all_triplet_loss(emb, labels, margin=0.2).item() == 0.0  # all easy
    assert batch_all_triplet_loss(emb, torch.tensor([0, 1, 2, 3])).item() == 0.0  # no positives
    with pytest.raises(ValueError, match="embeddings"):
        batch_all_triplet_loss(emb[:, 0], labels)


def test_part_cross_entropy_is_the_mean_over_strips():
    logits = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 4, 2])
    want = (F.cross_entropy(logits[:, 0], y) + F.cross_entropy(logits[:, 1], y)) / 2
    assert part_cross_entropy(logits, y).item() == pytest.approx(want.item(), rel=1e-6)


# ---- GaitBase ------------------------------------------------------------------------------------------------------


def test_gaitbase_shapes_and_frame_order_does_not_matter():
    model = create_model("gaitbase_test", in_channels=3, num_classes=5).eval()
    x = torch.randn(2, 4, 3, 64, 44, generator=torch.Generator().manual_seed(1))
    out = model(x)
    assert out.embeddings.shape == (2, 4, 8) and out.logits.shape == (2, 4, 5)
    assert torch.isfinite(out.logits).all()
    # temporal max pooling: a set, not a sequence
    torch.testing.assert_close(model(x[:, [3, 1, 0, 2]]).embeddings, out.embeddings)
    assert out.logits.abs().max() <= 16.0 + 1e-4  # cosine logits times the scale
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(2, 4, 1, 64, 44))
    with pytest.raises(ValueError, match="parts"):
        model(torch.randn(1, 2, 3, 36, 44))


def test_gaitbase_cpu_builds_at_the_documented_size():
    m = create_model("gaitbase_cpu", in_channels=5, num_classes=26)
    assert m.fc.shape == (16, 64, 64)
    assert m.stem[0].in_channels == 5


# ---- the gait task on synthetic arrays -----------------------------------------------------------------------------


def _arrays(subjects=(1, 2, 3), views=(0.0, 90.0), frames=5, channels=("dis",)) -> GaitArrays:
    rng = np.random.default_rng(0)
    cfg = GaitSetConfig(identities=max(subjects), test_identities=1, views=views, nm=5, bg=1, cl=1)
    seqs = sequences(cfg, subjects)
    sil = [(rng.random((frames, 64, 44)) * 255 * (s.subject / 3)).astype(np.uint8) for s in seqs]
    valid = [np.ones(frames, bool) for _ in seqs]
    flows = {c: [rng.integers(-20, 20, (frames - 1, 2, 64, 44)).astype(np.int8) for _ in seqs] for c in channels}
    return GaitArrays(sequences=seqs, sil=sil, valid=valid, flows=flows)


def _task(channels="sil+dis", batch=4, **data):
    from hmore.gait.task import GaitDataConfig, GaitModelConfig, GaitRunConfig, GaitTask
    from hmore.train.engine import TrainConfig

    cfg = GaitRunConfig(model=GaitModelConfig(name="gaitbase_test"),
                        data=GaitDataConfig(channels=channels, frames=3, val_identities=0, **data),
                        train=TrainConfig(steps=2, batch_size=batch, tensorboard=False, device="cpu", threads=1))
    return GaitTask(config=cfg, arrays=_arrays(), test_arrays=_arrays(subjects=(4, 5), views=(0.0, 90.0)))


def test_gait_batches_group_identities_and_split_over_ranks():
    task = _task()
    b = task.batch(3, rank=0, world_size=1, batch_size=4)
    assert b["x"].shape == (4, 3, 3, 64, 44) and b["x"].dtype == torch.float32
    y = b["y"].tolist()
    assert y[0] == y[1] and y[2] == y[3]  # K = 2 sequences of each identity
    r0 = task.batch(3, rank=0, world_size=2, batch_size=2)
    r1 = task.batch(3, rank=1, world_size=2, batch_size=2)
    torch.testing.assert_close(torch.cat([r0["x"], r1["x"]]), b["x"])
    # channel 0 is the silhouette in [0, 1], the others flow / flow_scale
    assert 0.0 <= b["x"][:, :, 0].min() and b["x"][:, :, 0].max() <= 1.0
    assert b["x"][:, :, 1:].abs().max() <= 20 * FLOW_STEP / 2.0 + 1e-6


def test_gait_task_config_errors():
    from hmore.errors import ConfigError

    with pytest.raises(ConfigError, match="sil"):
        _task(channels="dis")
    with pytest.raises(ConfigError, match="multiple"):
        _task(batch=3)
    with pytest.raises(ConfigError, match="seqs_per_id"):
        _task(seqs_per_id=1)


def test_flow_channel_mask_smooth_and_scale_by_hand():
    from hmore.flowfeed import flow_channel

    # 4 pairs of a 1 x 2 "crop": x-flow 8, 16, 24, 32 units (1, 2, 3, 4 px) in the left pixel, 0 elsewhere
    flow = np.zeros((4, 2, 1, 2), np.int8)
    flow[:, 0, 0, 0] = [8, 16, 24, 32]
    sil = np.zeros((5, 1, 2), np.uint8)
    sil[:, 0, 0] = [255, 0, 51, 255, 255]  # frame 1 off the body, frame 2 a fifth on it
    frames = np.array([0, 1, 2, 3])
    plain = flow_channel(flow, sil, frames, flow_scale=2.0)
    np.testing.assert_allclose(plain[:, 0, 0, 0], [0.5, 1.0, 1.5, 2.0])
    masked = flow_channel(flow, sil, frames, flow_scale=1.0, mask=True)
    np.testing.assert_allclose(masked[:, 0, 0, 0], [1.0, 0.0, 0.6, 4.0], rtol=1e-6)
    # window 3, clipped at the ends: (1+2)/2, (1+2+3)/3, (2+3+4)/3, (3+4)/2
    smooth = flow_channel(flow, sil, frames, flow_scale=1.0, smooth=3)
    np.testing.assert_allclose(smooth[:, 0, 0, 0], [1.5, 2.0, 3.0, 3.5], rtol=1e-6)
    assert smooth.shape == (4, 2, 1, 2) and not smooth[:, 1].any() and not smooth[:, :, :, 1].any()
    # smoothing happens before the mask of the frame itself
    both = flow_channel(flow, sil, np.array([1, 2]), flow_scale=1.0, mask=True, smooth=3)
    np.testing.assert_allclose(both[:, 0, 0, 0], [0.0, 0.6], rtol=1e-6)


def test_gait_flow_dropout_and_representation_keys():
    from hmore.errors import ConfigError

    base = _task()
    kept = base.batch(5, rank=0, world_size=1, batch_size=4)["x"]
    drop = _task(flow_dropout=0.9, flow_mask=True)
    xs = [drop.batch(step, rank=0, world_size=1, batch_size=4)["x"] for step in range(6)]
    zeroed = sum(int(not x[i, :, 1:].any()) for x in xs for i in range(4))
    assert 14 <= zeroed < 24  # ~90 % of 24 sequences lose all their flow channels
    assert all(torch.equal(x[:, :, 0], x[:, :, 0].clamp(0, 1)) for x in xs)  # the silhouettes stay
    assert kept[:, :, 1:].any()
    # the mask: flow only where the silhouette is
    x = _task(flow_mask=True).batch(5, rank=0, world_size=1, batch_size=4)["x"]
    assert not x[:, :, 1:][(x[:, :, :1] == 0).expand(-1, -1, 2, -1, -1)].any()
    assert _task(flow_mask=True, flow_smooth=3).model_config()["flow_smooth"] == 3
    with pytest.raises(ConfigError, match="flow_smooth"):
        _task(flow_smooth=2)
    with pytest.raises(ConfigError, match="flow_dropout"):
        _task(flow_dropout=1.0)


def test_gaitbase_extra_init_scale_zero_starts_as_a_silhouette_model():
    torch.manual_seed(0)
    m = create_model("gaitbase_test", in_channels=3, num_classes=5, extra_init_scale=0.0).eval()
    w = m.stem[0].weight
    assert not w[:, 1:].any() and w[:, :1].abs().sum() > 0
    x = torch.randn(1, 2, 3, 64, 44)
    flowless = x.clone()
    flowless[:, :, 1:] = 0
    torch.testing.assert_close(m(x).embeddings, m(flowless).embeddings)


def test_gait_task_trains_through_the_engine_and_scores(tmp_path):
    from hmore.bench.downstream import run_rows

    task = _task()
    res = run_rows(tmp_path, rows=["sil+dis"], seeds=[0], flow_key=None, make=lambda r, s, k: (task, task.config),
                   score=lambda t, m: {"rank1": t.test(m).as_dict()})
    got = res["sil+dis"][0]
    assert got["step"] == 2 and set(got["rank1"]["mean"]) == {"NM", "BG", "CL"}
    assert (tmp_path / "runs" / "sil_dis-s0" / "test.json").is_file()
    # scores are cached per checkpoint: the second call neither trains nor scores again
    again = run_rows(tmp_path, rows=["sil+dis"], seeds=[0], flow_key=None, make=lambda r, s, k: (task, task.config),
                     score=lambda t, m: pytest.fail("scored twice"))
    assert again["sil+dis"][0]["rank1"] == got["rank1"]

    class Unloadable:  # a finished, scored run does not even build its model (nor load the set)
        def build_model(self):
            pytest.fail("built the model of a finished run")

    third = run_rows(tmp_path, rows=["sil+dis"], seeds=[0], flow_key=None,
                     make=lambda r, s, k: (Unloadable(), task.config), score=lambda t, m: pytest.fail("scored"))
    assert third["sil+dis"][0]["rank1"] == got["rank1"] and third["sil+dis"][0]["step"] == 2


# ---- the generated set ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_model(tmp_path_factory):
    """``hmore_flow_test`` with random weights saved to a file (its cache key is that file's sha256)."""
    from hmore.flowfeed import load_flow_model
    from hmore.train.checkpoint import save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("flow") / "flow_test.safetensors"
    save_weights(path, create_model("hmore_flow_test"), metadata={"model": {"name": "hmore_flow_test"}})
    return load_flow_model("hmore_flow_test", path)


def test_generated_set_builds_resumes_and_loads(tmp_path, flow_model):
    from hmore.gait.data import build_gait_set, load_gait_set, open_set

    cfg = GaitSetConfig(identities=2, test_identities=1, views=(90.0,), nm=1, bg=1, cl=1, frames=3, size=(48, 64))
    first = build_gait_set(tmp_path, cfg, flow_model=flow_model, subjects=[1])
    assert (first.rendered, first.base_written, first.flows_written) == (3, 3, 3)
    again = build_gait_set(tmp_path, cfg, flow_model=flow_model, subjects=[1])
    assert (again.rendered, again.kept) == (0, 3)
    assert flow_model.key.startswith("hmore_flow_test-") and len(flow_model.key) == len("hmore_flow_test-") + 12
    a = load_gait_set(tmp_path, channels=("exact_world", "world", "local"), flow_key=flow_model.key, subjects=[1])
    assert [s.key for s in a.sequences] == ["001-nm-01-090", "001-bg-01-090", "001-cl-01-090"]
    assert a.sil[0].shape == (3, 64, 44) and a.valid[0].all()
    assert a.flows["world"][0].shape == (2, 2, 64, 44) and a.flows["world"][0].dtype == np.int8
    # static camera, no distractors: the exact flow is zero off the person, and the person moves
    ex = dequantise_flow(a.flows["exact_world"][1])
    off = a.sil[1][:-1] == 0
    assert np.abs(ex.transpose(0, 2, 3, 1)[off]).max() == 0.0
    assert np.abs(ex.transpose(0, 2, 3, 1)[~off]).mean() > 0.1
    with pytest.raises(UsageError, match="another gait set"):
        open_set(tmp_path, GaitSetConfig(identities=3, test_identities=1))
    with pytest.raises(InputError, match="not built yet"):
        load_gait_set(tmp_path, subjects=[2])
    with pytest.raises(InputError, match="flow_key"):
        load_gait_set(tmp_path, channels=("world",), subjects=[1])


def test_sequence_identity_keeps_body_and_gait_but_not_clothes():
    from hmore.gait.data import sequence_identity

    cfg = GaitSetConfig()
    a, b = (sequence_identity(cfg, GaitSequence(subject=7, type="nm", index=i, view=0.0)) for i in (1, 2))
    assert (a.height, a.stride, a.cadence, a.arm_swing) == (b.height, b.stride, b.cadence, b.arm_swing)
    assert a.texture_seed != b.texture_seed


def test_full46_is_a_prefix_of_the_full_set_with_the_same_sequences():
    from hmore.gait.data import PRESETS, sequence_seed

    full, part = PRESETS["full"], PRESETS["full46"]
    assert part.train_subjects == tuple(range(1, 31)) and part.test_subjects == tuple(range(31, 47))
    assert dataclasses.replace(part, identities=full.identities, test_identities=full.test_identities) == full
    seqs = sequences(part)
    assert len(seqs) == 46 * 10 * 6 and {s.key for s in seqs} <= {s.key for s in sequences(full)}
    # a sequence's render seed does not depend on how many identities the set has: the files are shareable
    assert all(sequence_seed(part, s) == sequence_seed(full, s) for s in seqs[::97])
    assert sequence_seed(part, seqs[0]) != sequence_seed(part, seqs[1])


# ---- OpenGait pickles ----------------------------------------------------------------------------------------------


def test_opengait_round_trip_and_partition(tmp_path):
    from hmore.gait.opengait import read_opengait, read_partition, write_opengait

    arrays = _arrays(subjects=(1, 2), frames=4, channels=())
    assert write_opengait(tmp_path / "pkl", arrays) == len(arrays)
    with open(tmp_path / "pkl" / "001" / "nm-01" / "000" / "000.pkl", "rb") as fh:
        assert pickle.load(fh).shape == (4, 64, 64)  # OpenGait's own layout
    back, names = read_opengait(tmp_path / "pkl")
    assert names == ["001", "002"] and len(back) == len(arrays)
    keys = {s.key: k for k, s in enumerate(back.sequences)}
    for k, s in enumerate(arrays.sequences):
        np.testing.assert_array_equal(back.sil[keys[s.key]], arrays.sil[k])
    only, _ = read_opengait(tmp_path / "pkl", subjects=["002"])
    assert {s.subject for s in only.sequences} == {1}  # renumbered within the selection
    (tmp_path / "part.json").write_text('{"TRAIN_SET": ["001"], "TEST_SET": ["002"]}')
    assert read_partition(tmp_path / "part.json") == {"TRAIN_SET": ["001"], "TEST_SET": ["002"]}
    (tmp_path / "bad.json").write_text('{"TRAIN": []}')
    with pytest.raises(InputError, match="TRAIN_SET"):
        read_partition(tmp_path / "bad.json")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_opengait_reader_refuses_code_and_bad_shapes(tmp_path):
    from hmore.gait.opengait import read_opengait

    seq = tmp_path / "a" / "001" / "nm-01" / "000"
    seq.mkdir(parents=True)
    (seq / "000.pkl").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(InputError, match="OpenGait silhouette pickle"):
        read_opengait(tmp_path / "a")
    (seq / "000.pkl").write_bytes(pickle.dumps(np.zeros((3, 32, 32), np.uint8)))
    with pytest.raises(InputError, match=r"\(T, 64, 64\)"):
        read_opengait(tmp_path / "a")
    bad = tmp_path / "b" / "001" / "walk" / "000"
    bad.mkdir(parents=True)
    with pytest.raises(InputError, match="nm-01"):
        read_opengait(tmp_path / "b")
    with pytest.raises(InputError, match="not found"):
        read_opengait(tmp_path / "missing")


# ---- benchmark bookkeeping and CLI ---------------------------------------------------------------------------------


def test_gait_summary_tables_and_pattern_checks():
    from hmore.bench.gait_bench import RECIPES, format_tables, summarise

    def res(nm, bg, cl):
        mean = {"NM": nm, "BG": bg, "CL": cl}
        return {0: {"rank1": {"views": [0.0, 90.0], "mean": mean, "per_view": {k: [v, v] for k, v in mean.items()},
                              "matrix": {k: [[None, v], [v, None]] for k, v in mean.items()}},
                    "run": "r", "flow_key": None}}

    results = {"sil": res(0.9, 0.8, 0.5), "sil+dis": res(0.91, 0.82, 0.6), "sil+world+local": res(0.9, 0.8, 0.55),
               "sil+world": res(0.7, 0.6, 0.45)}
    s = summarise(results, config=GaitSetConfig(), recipe=RECIPES["full"], preset="full", seeds=[0], fm=None,
                  timing={}, command="x")
    assert s["rows"]["sil+dis"]["rank1"]["CL"] == pytest.approx(60.0)
    checks = {c["claim"]: c["holds"] for c in s["checks"]}
    assert checks["+ DIS flow: adding flow raises CL the most"] is True
    assert checks["CL: + hmore world+local > + DIS flow"] is False
    # every condition loses, CL least: flow did not raise CL
    assert checks["+ hmore world: adding flow raises CL the most"] is False
    text = format_tables(s)
    assert "| + DIS flow | 91.00 | 82.00 | 60.00 |" in text and "DOES NOT HOLD" in text
    assert s["rows"]["sil"]["std"]["CL"] is None  # one seed: no spread
    # two seeds: mean and sample std (ddof 1) per condition and of the per-seed NM/BG/CL means
    two = {"sil": {**res(0.9, 0.8, 0.5), 1: res(0.8, 0.6, 0.3)[0]}}
    s2 = summarise(two, config=GaitSetConfig(), recipe=RECIPES["full"], preset="full", seeds=[0, 1], fm=None,
                   timing={}, command="x")
    e = s2["rows"]["sil"]
    assert e["rank1"]["BG"] == pytest.approx(70.0) and e["std"]["BG"] == pytest.approx(np.sqrt(200.0))
    assert e["mean"] == pytest.approx(65.0) and e["mean_std"] == pytest.approx(50 / 3 / np.sqrt(2))
    assert "| silhouettes | 85.00 ± 7.07 | 70.00 ± 14.14 | 40.00 ± 14.14 | 65.00 ± 11.79 |" in format_tables(s2)


def test_gait_recipe_states_the_flow_representation_for_every_row(tmp_path):
    from dataclasses import replace

    from hmore.bench.gait_bench import RECIPES, row_config

    for row in ("sil+dis", "sil+exact_world+exact_local", "sil+world+local"):
        cfg = row_config(row, set_root=tmp_path, recipe=RECIPES["full"], seed=1, flow_key="k", threads=1)
        assert cfg.data.flow_mask is True and cfg.data.flow_smooth == 1 and cfg.data.flow_dropout == 0.0
        assert cfg.model.kwargs == {"extra_init_scale": 0.0}
    old = row_config("sil+dis", set_root=tmp_path, recipe=replace(RECIPES["full"], flow_mask=False, flow_init=1.0),
                     seed=1, flow_key=None, threads=1)
    assert old.data.flow_mask is False and old.model.kwargs == {}


def test_bench_and_demo_cli_errors(capsys, tmp_path):
    assert main(["bench", "gait", "-o", str(tmp_path), "--rows", "sil+raft", "--preset", "test"]) == 2
    assert "unknown input channel" in capsys.readouterr().err
    assert main(["bench", "action-flow", "-o", str(tmp_path), "--rows", "sil", "--preset", "test"]) == 2
    assert main(["bench", "gait", "-o", str(tmp_path), "--steps", "0"]) == 2
    assert main(["bench", "gait", "-o", str(tmp_path), "--preset", "test", "--recipe", "flow_maks=true"]) == 2
    assert "flow_maks" in capsys.readouterr().err
    assert main(["gait", str(tmp_path / "g.mp4"), str(tmp_path / "p.mp4"), "-o", str(tmp_path / "out")]) == 1
    assert "GALLERY" in capsys.readouterr().err  # inputs are checked before the weights
    (tmp_path / "g.mp4").touch()
    (tmp_path / "p.mp4").touch()
    assert main(["gait", str(tmp_path / "g.mp4"), str(tmp_path / "p.mp4"), "-o", str(tmp_path / "out"),
                 "--weights", str(tmp_path / "none.safetensors")]) == 1
    assert "gait weights not found" in capsys.readouterr().err


def test_demo_model_loading_and_track_embeddings(tmp_path):
    from hmore.gait.demo import Track, _card, embed_tracks, load_gait_model
    from hmore.train.checkpoint import save_weights

    task = _task()
    model = task.build_model()
    path = save_weights(tmp_path / "g.safetensors", model, metadata={"model_config": task.model_config()})
    gm = load_gait_model(path)
    assert gm.channels == ("dis",) and gm.flow_scale == 2.0
    rng = np.random.default_rng(0)
    tracks = [Track(track_id=k, frames=np.arange(5), sil=(rng.random((5, 64, 44)) * 255).astype(np.uint8),
                    flows={"dis": rng.integers(-9, 9, (5, 2, 64, 44)).astype(np.int8)},
                    thumbnail=np.zeros((30, 12, 3), np.uint8), height_px=80.0) for k in (1, 2)]
    emb = embed_tracks(gm, tracks)
    assert emb.shape == (2, 4, 8) and np.isfinite(emb).all()
    assert _card(tracks[0], "P1").ndim == 3
    exact = {**task.model_config(), "channels": "sil+exact_world"}
    save_weights(tmp_path / "x.safetensors", create_model("gaitbase_test", in_channels=3, num_classes=3),
                 metadata={"model_config": {**exact, "kwargs": {"in_channels": 3, "num_classes": 3}}})
    with pytest.raises(UsageError, match="exact"):
        load_gait_model(tmp_path / "x.safetensors")
