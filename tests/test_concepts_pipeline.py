"""Paired clips, the training tasks, encoding, the report, the CLI and the benchmark of motion concepts, end to end
on tiny generated data (no shared data needed)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hmore.cli import main
from hmore.concepts import pairs as cp
from hmore.concepts.motion import SkeletonSequence, procedural_sequences, save_sequences
from hmore.config import load_config
from hmore.errors import InputError
from hmore.losses.concepts import clustering_loss, consistency_loss, discriminative_loss
from hmore.models.concepts.model import segment_valid
from hmore.train.tasks.concepts import ConceptQARunConfig, ConceptQATask, ConceptsRunConfig, ConceptsTask


# ---- crops -------------------------------------------------------------------------------------------------------
def test_person_boxes_follow_the_mask():
    masks = np.zeros((3, 40, 60), np.uint8)
    for t in range(3):
        masks[t, 10:30, 5 + 10 * t : 15 + 10 * t] = 1
    boxes = cp.person_boxes(masks, pad=0.0)
    assert (boxes[:, 2] == 20).all()  # the same side in every frame: the largest box side
    np.testing.assert_array_equal(boxes[:, 0], [0, 10, 20])  # centre x 10, 20, 30 minus half the side
    assert (boxes[:, 1] == 10).all()
    empty = cp.person_boxes(np.zeros((2, 40, 60), np.uint8))
    assert (empty == [10, 0, 40]).all()
    with pytest.raises(ValueError):
        cp.person_boxes(np.zeros((40, 60)))


def test_crop_flow_scales_values_and_pads():
    flow = np.ones((1, 2, 40, 60), np.float32)
    boxes = np.array([[-8, 0, 32]])  # partly outside the frame: zero padded
    out = cp.crop_flow(flow, boxes, size=16)
    assert out.shape == (1, 2, 16, 16)
    assert out[0, 0, 8, 12] == pytest.approx(0.5)  # 1 px in a 32 px box -> 0.5 px in a 16 px crop
    assert out[0, 0, 8, 0] == 0.0
    frames = cp.crop_frames(np.full((1, 40, 60, 3), 200, np.uint8), boxes, size=16)
    assert frames.shape == (1, 16, 16, 3) and frames[0, 8, 12, 0] == 200 and frames[0, 8, 0, 0] == 0


def test_video_channels():
    frames = np.full((4, 16, 16, 3), 255, np.uint8)
    world = np.full((4, 2, 16, 16), cp.FLOW_UNIT, np.float32)
    local = np.zeros_like(world)
    x = cp.video_channels(frames, world, local)
    assert x.shape == (4, 7, 16, 16)
    np.testing.assert_allclose(x[:, :3], 0.5)
    np.testing.assert_allclose(x[:, 3:5], 1.0)
    small = cp.video_channels(frames, world, local, size=8)
    assert small.shape == (4, 7, 8, 8)
    np.testing.assert_allclose(small[:, 3:5], 0.5)  # flows shrink with the crop
    with pytest.raises(ValueError):
        cp.video_channels(frames, world[:3], local)


@pytest.fixture(scope="module")
def tiny_pairs(tmp_path_factory) -> list[cp.PairedClip]:
    specs = [cp.PairSpec(name=f"procedural_{a}_id{i}", source="procedural", split=split, action=a, style="",
                         subject=f"id{i}", take="", identity=i, view=90.0, condition="normal", camera="static",
                         seed=i)
             for a, i, split in (("walk", 0, "train"), ("wave_one", 1, "train"), ("walk", 7, "test"),
                                 ("wave_one", 8, "test"))]
    out = tmp_path_factory.mktemp("pairs")
    files = cp.build_pair_cache(out, specs, flow="exact")
    files = cp.build_pair_cache(out, specs, flow="exact")  # resumes: nothing left to render
    return [cp.load_pair(f).resized(16) for f in files]


def test_rendered_pairs(tiny_pairs):
    p = tiny_pairs[0]
    assert p.frames.shape == (cp.PAIR_FRAMES, 16, 16, 3) and p.world.shape == (cp.PAIR_FRAMES - 1, 2, 16, 16)
    assert p.joints.shape == (cp.PAIR_FRAMES, 17, 3) and p.meta["flow"] == "exact" and p.meta["split"] == "train"
    assert p.joints[..., 1].min() > -0.05  # the paired motion is the world-frame motion, feet on the ground
    assert np.abs(p.world).max() > 0  # the person moves
    assert cp.spec_flow(replace(cp.PairSpec(**{k: p.meta[k] for k in cp.PairSpec.__dataclass_fields__}),
                                split="test"), "mixed") == "hmore"


def test_pairs_keep_the_flow_weights_the_shipped_concept_models_were_trained_on(tiny_pairs):
    from hmore.weights import list_weights, load_model, read_weights_metadata

    pinned = read_weights_metadata(cp.CONCEPT_FLOW_WEIGHTS)
    for name in ("concepts_cpu", "concepts_cpu_vqvae"):  # their video features came from the pinned weights
        if name in list_weights():
            assert read_weights_metadata(name)["flow_weights"]["sha256"] == pinned["sha256"], name
    net = cp.concept_flow_model()
    for (k, a), b in zip(load_model(cp.CONCEPT_FLOW_WEIGHTS).state_dict().items(), net.state_dict().values()):
        assert torch.equal(a, b), k
    task = ConceptsTask(config=_cfg(), sequences=_seqs(), pairs=tiny_pairs)  # an export records them too
    assert task.export_metadata["flow_weights"] == {"name": cp.CONCEPT_FLOW_WEIGHTS, "model": "hmore_flow_cpu",
                                                     "sha256": pinned["sha256"]}


def test_pair_roundtrip_and_errors(tmp_path, tiny_pairs):
    path = tiny_pairs[1].save(tmp_path / "p.npz")
    back = cp.load_pair(path)
    np.testing.assert_array_equal(back.frames, tiny_pairs[1].frames)
    assert back.meta == tiny_pairs[1].meta
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(InputError, match="bad.npz"):
        cp.load_pair(tmp_path / "bad.npz")


# ---- training ----------------------------------------------------------------------------------------------------
def _seqs() -> list[SkeletonSequence]:
    acts = ["walk", "wave_one", "squat"]
    tr = procedural_sequences(identities=[0, 1], split="train", num_frames=30, actions=acts)
    te = procedural_sequences(identities=[9], split="test", num_frames=30, actions=acts)
    return [replace(s, source="bandai", style="normal" if i % 2 else "tired") for i, s in enumerate(tr + te)]


def _cfg(**loss) -> ConceptsRunConfig:
    return load_config(ConceptsRunConfig, {
        "model": {"name": "concepts_test"},
        "data": {"sources": ["bandai"], "eval_sources": ["bandai"], "pair_batch": 2, "eval_pairs": 2},
        "loss": loss, "train": {"steps": 2, "batch_size": 4, "log_every": 1, "ckpt_every": 2, "tensorboard": False,
                                "device": "cpu", "amp": False}})


def test_task_batches_are_deterministic_and_losses_switch(tiny_pairs):
    task = ConceptsTask(config=_cfg(), sequences=_seqs(), pairs=tiny_pairs)
    a = task.batch(3, rank=0, world_size=1, batch_size=4)
    b = task.batch(3, rank=0, world_size=1, batch_size=4)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["states"].shape == (6, 8, 55) and a["video"].shape == (2, 8, 7, 16, 16)
    torch.manual_seed(0)
    model = task.build_model()
    loss, logs = task.loss(model, a)
    assert torch.isfinite(loss) and {"rec_motion", "dis", "act", "rec_video", "align"} <= set(logs)
    off = ConceptsTask(config=_cfg(dis=0.0, act=0.0, align=0.0), sequences=_seqs(), pairs=tiny_pairs)
    _, logs = off.loss(model, a)
    assert not {"dis", "act", "align"} & set(logs)
    vq = ConceptsTask(config=_cfg(dis=0.0, act=0.0, align=0.0, rec_video=0.0), sequences=_seqs(), pairs=tiny_pairs)
    c = vq.batch(3, rank=0, world_size=1, batch_size=4)  # the VQ-VAE ablation: same motion windows, no video
    assert "video" not in c and torch.equal(c["states"], a["states"])
    seg = ConceptsTask(config=_cfg(dis_positive="segment", dis_tokens=5), sequences=_seqs(), pairs=tiny_pairs)
    out = model.motion(a["states"], a["valid"])
    logits, positive, scored, _ = seg._dis_inputs(model, out, a["states"], a["valid"])
    assert logits.shape == positive.shape == (5, int(positive.sum())) and (positive.sum(dim=1) >= 1).all()
    assert (positive.sum(dim=0) == 1).all() and scored is None  # every frame is the positive of its own token
    logits, positive, _, _ = task._dis_inputs(model, out, a["states"], a["valid"])  # concept positives
    assert logits.shape[0] == len(torch.unique(out.ids[out.token_valid]))
    with pytest.raises(Exception, match="dis_positive"):
        _cfg(dis_positive="frame")


def test_weights_licence_names_the_real_data():
    from hmore.train.tasks.concepts import weights_licence

    assert weights_licence(("procedural",)) == "MIT (weights trained by hmore on generated data)"
    text = weights_licence(("bandai", "h36m", "procedural"))
    assert "CC BY-NC 4.0" in text and "Human3.6M" in text and "NW-UCLA" not in text and "non-commercial" in text
    task_licence = ConceptsTask(config=_cfg(), sequences=_seqs()).weights_licence  # the run trains on Bandai only
    assert "CC BY-NC 4.0" in task_licence and "Human3.6M" not in task_licence


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_pairs) -> Path:
    from hmore.train.engine import train

    out = tmp_path_factory.mktemp("run")
    cfg = _cfg()
    task = ConceptsTask(config=cfg, sequences=_seqs(), pairs=tiny_pairs)
    summary = train(task, cfg.train, out)
    assert summary.step == 2 and np.isfinite(summary.losses).all()
    assert {"bandai_nmi", "bandai_purity", "r1"} <= set(summary.eval_metrics)
    return out


def test_qa_task(tiny_run):
    from hmore.concepts.encode import load_concept_model
    from hmore.concepts.qa import generate_qa

    items = generate_qa(_seqs(), seed=0)
    cfg = load_config(ConceptQARunConfig, {"model": {"name": "concept_qa_test"},
                                           "train": {"batch_size": 8, "device": "cpu"}})
    task = ConceptQATask(config=cfg, items=items, concept_model=load_concept_model(checkpoint=tiny_run))
    model = task.build_model()
    assert model.config.vocab == task.vocab()[0] and model.config.num_concepts == 8
    batch = task.batch(0, rank=0, world_size=1, batch_size=8)
    loss, logs = task.loss(model, batch)
    assert torch.isfinite(loss) and 0 <= logs["acc"] <= 1
    metrics = task.evaluate(model.eval())
    assert "acc" in metrics and "acc_action" in metrics
    assert task.model_config()["kwargs"]["answers"] == list(task.vocab()[1])


# ---- encoding, report, CLI, benchmark ----------------------------------------------------------------------------
def test_encode_sequences_covers_every_frame(tiny_run):
    from hmore.concepts.encode import concept_segments, encode_sequences, load_concept_model

    model = load_concept_model(checkpoint=tiny_run)
    with pytest.raises(InputError, match="DSTformer, not a concept model"):
        load_concept_model(weights="dstformer_cpu")
    seqs = _seqs()
    short, long = seqs[0].joints[:5], np.concatenate([seqs[0].joints, seqs[1].joints])
    enc = encode_sequences(model, [short, long])
    assert enc[0].ids.shape == (5,) and enc[1].ids.shape == (60,)
    assert enc[1].latent.shape == (60, 16) and enc[1].embedding.shape == (60, 8)
    again = encode_sequences(model, [long])[0]
    np.testing.assert_array_equal(again.ids, enc[1].ids)  # batching does not change the result
    runs = concept_segments(enc[1].ids)
    assert sum(e - s for _, s, e in runs) == 60 and runs[0][1] == 0
    assert concept_segments(np.array([3, 3, 5])) == [(3, 0, 2), (5, 2, 3)]
    with pytest.raises(InputError):
        encode_sequences(model, [np.zeros((4, 16, 3))])


def test_read_motion_inputs(tmp_path):
    from hmore.concepts.encode import read_motion
    from hmore.synth.motion import embedded_bvh

    bvh = read_motion(embedded_bvh())
    assert bvh.kind == "bvh" and bvh.has_root and bvh.source_fps == pytest.approx(120.0, rel=1e-4)
    assert len(bvh.joints) == int((bvh.source_frames - 1) / 120 * 15) + 1
    assert bvh.source_to_model()[-1] == len(bvh.joints) - 1
    pose = np.zeros((1, 10, 17, 3), np.float32)
    pose[0, :, 10, 1] = -0.5  # the head above the root in the camera frame (y down)
    np.savez(tmp_path / "pose3d.npz", pose3d=pose, fps=np.array(30.0), interpolated=np.zeros((1, 10), bool))
    lifted = read_motion(tmp_path / "pose3d.npz")
    assert lifted.kind == "pose3d" and not lifted.has_root and lifted.joints[0, 10, 1] == pytest.approx(0.5)
    with pytest.raises(InputError):
        read_motion(tmp_path / "missing.bvh")


def test_cli_encode_and_show(tiny_run, tmp_path, capsys):
    from hmore.synth.motion import embedded_bvh

    out = tmp_path / "enc"
    assert main(["concepts", "encode", str(embedded_bvh()), "-o", str(out), "--checkpoint", str(tiny_run)]) == 0
    rec = json.loads((out / "concepts.json").read_text())
    assert rec["kind"] == "bvh" and len(rec["ids"]) == rec["source_frames"]
    with np.load(out / "concepts.npz") as z:
        assert z["ids"].shape == (rec["source_frames"],)
    assert main(["concepts", "encode", str(tmp_path / "nope.bvh"), "-o", str(out), "--checkpoint",
                 str(tiny_run)]) == 2
    assert "no such input" in capsys.readouterr().err
    assert main(["concepts"]) == 2


def test_show_report(tiny_run, tmp_path):
    from hmore.concepts.encode import encode_file, load_concept_model
    from hmore.concepts.show import show_concepts
    from hmore.synth.motion import embedded_bvh

    model = load_concept_model(checkpoint=tiny_run)
    motion, enc = encode_file(model, embedded_bvh())
    motion = replace(motion, joints=motion.joints[:40], source_frames=320)
    enc = replace(enc, ids=enc.ids[:40], latent=enc.latent[:40], embedding=enc.embedding[:40])
    page = show_concepts(motion, enc, tmp_path, model=model, reference=_seqs(), max_concepts=2, per_concept=2)
    html = page.read_text()
    assert "Concept timeline" in html and "Nearest segments" in html and "Concept by label" in html
    assert (tmp_path / "timeline.png").is_file() and (tmp_path / "preview.mp4").is_file()
    assert list(tmp_path.glob("concept_*.mp4"))


def test_bench_on_a_tiny_cache(tiny_run, tiny_pairs, tmp_path):
    from hmore.bench import concepts_bench

    cache = tmp_path / "data"
    seqs = _seqs()
    save_sequences(cache / "skeleton_bandai.npz", seqs)
    save_sequences(cache / "skeleton_nw_ucla.npz", [replace(s, source="nw_ucla", style="") for s in seqs])
    (cache / "pairs").mkdir()
    for p in tiny_pairs:
        p.save(cache / "pairs" / f"{p.meta['name']}.npz")
    summary = concepts_bench.run(out_dir=tmp_path / "bench", models=[f"tiny={tiny_run}"], qa_models=[], data=cache,
                                 seed=0)
    rows = summary["clustering"]["bandai"]
    assert {"tiny", "k-means (pose)", "k-means (pose + velocity)"} <= set(rows)
    assert 0 <= rows["tiny"]["nmi"] <= 1 and 0 < rows["k-means (pose)"]["purity"] <= 1
    assert summary["retrieval"]["tiny"]["n"] == 2 and summary["speed"]["model_fps"] > 0
    saved = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert saved["codebook_size"] == 8
    assert (tmp_path / "bench" / "report.html").is_file()
    assert "NMI" in concepts_bench.format_tables(summary)


# ---- validation split, alignment stop-gradient, pair manifests ---------------------------------------------------
def test_validation_split_by_hand():
    from hmore.concepts.motion import is_validation, pair_sequence_name

    # crc32(b"val|bandai:b") = 1602133576 = 0.3730 of 2**32; crc32(b"val|bandai:c") = 679063262 = 0.1581 of 2**32
    assert is_validation("bandai:b", 0.38) and not is_validation("bandai:b", 0.37)
    assert is_validation("bandai:c", 0.16) and not is_validation("bandai:c", 0.15)
    assert not is_validation("bandai:b", 0.0)
    assert pair_sequence_name({"source": "bandai", "take": "bvh/dataset-1_bow_active_001.bvh.gz"}) == \
        "bandai:dataset-1_bow_active_001"
    assert pair_sequence_name({"source": "procedural", "take": ""}) == ""


def test_val_fraction_holds_sequences_and_pairs_out_of_training(tiny_pairs):
    from hmore.concepts.motion import is_validation

    # of _seqs() at 0.5, the training "walk" sequences (ids 0 and 1) are validation ones; the test split stays test
    cfg = _cfg()
    cfg = replace(cfg, data=replace(cfg.data, val_fraction=0.5))
    task = ConceptsTask(config=cfg, sequences=_seqs(), pairs=tiny_pairs)
    splits = {s.name: s.split for s in task.sequences()}
    assert splits["procedural:walk/id0"] == splits["procedural:walk/id1"] == "val"
    assert splits["procedural:walk/id9"] == "test" and splits["procedural:squat/id0"] == "train"
    assert all(s.split == "train" and not is_validation(s.name, 0.5) for g in task._train_by_source() for s in g)
    bandai_pair = replace(tiny_pairs[0], meta={**tiny_pairs[0].meta, "source": "bandai", "take": "bvh/b.bvh.gz"})
    assert task._pair_split(bandai_pair) == ("val" if is_validation("bandai:b", 0.5) else "train") == "val"
    assert task._pair_split(tiny_pairs[0]) == "train"  # procedural pairs: no sequence of an evaluated source
    torch.manual_seed(0)
    metrics = task.evaluate(task.build_model())  # scores the 2 validation sequences, not the 3 test ones
    assert 0 <= metrics["bandai_nmi"] <= 1 and metrics["bandai_clusters"] >= 1
    assert 0 <= metrics["bandai_nmi_win"] <= 1 and 1 <= metrics["bandai_clusters_win"] <= metrics["bandai_clusters"]
    assert 0 <= metrics["bandai_completeness"] <= 1 and 0 <= metrics["bandai_homogeneity"] <= 1
    assert 0 <= metrics["bandai_nmi_style"] <= 1 and 0 <= metrics["bandai_nmi_action_style"] <= 1
    with pytest.raises(Exception, match="val_fraction"):
        load_config(ConceptsRunConfig, {"data": {"val_fraction": 1.0}})


def test_align_stop_motion_keeps_the_alignment_out_of_the_motion_branch(tiny_pairs):
    only_align = dict(rec_motion=0.0, rec_video=0.0, commit=0.0, dis=0.0, act=0.0, align=1.0)
    grads = {}
    for stop in (False, True):
        task = ConceptsTask(config=_cfg(**only_align, align_stop_motion=stop), sequences=_seqs(), pairs=tiny_pairs)
        batch = task.batch(0, rank=0, world_size=1, batch_size=4)
        torch.manual_seed(0)
        model = task.build_model()
        loss, logs = task.loss(model, batch)
        loss.backward()
        assert "align" in logs
        grads[stop] = {name: (p.grad is not None and bool(p.grad.abs().sum() > 0))
                       for name, p in model.named_parameters()}
    enc = [n for n in grads[False] if n.startswith("motion_encoder.")]
    assert any(grads[False][n] for n in enc) and not any(grads[True][n] for n in enc)
    # the video branch and both projections still learn
    assert grads[True]["motion_proj.weight"] and grads[True]["video_proj.weight"]
    assert any(grads[True][n] for n in grads[True] if n.startswith("video_encoder."))


def test_pair_manifest_roundtrip(tmp_path, tiny_pairs):
    rows = []
    for p in tiny_pairs:
        p.save(tmp_path / "cache" / "pairs" / f"{p.meta['name']}.npz")
        rows.append({k: p.meta[k] for k in cp.PairSpec.__dataclass_fields__} | {"flow": "exact"})
    manifest = cp.pair_manifest(tmp_path / "cache")
    assert manifest == sorted(rows, key=lambda r: r["name"])
    for name in ("m.json", "m.json.gz"):
        cp.write_pair_manifest(tmp_path / name, manifest)
        specs, flows = cp.read_pair_manifest(tmp_path / name)
        assert [s.name for s in specs] == [r["name"] for r in manifest] and set(flows.values()) == {"exact"}
        assert specs[0] == cp.PairSpec(**{k: manifest[0][k] for k in cp.PairSpec.__dataclass_fields__})
    # a manifest's flow method is used as given (here "exact" for a held-out pair, which "mixed" renders with hmore's)
    test_spec = next(s for s in specs if s.split == "test")
    files = cp.build_pair_cache(tmp_path / "re", [test_spec], flow={test_spec.name: "exact"})
    assert cp.load_pair(files[0]).meta["flow"] == "exact"
    (tmp_path / "bad.json").write_text(json.dumps([{**manifest[0], "flow": "magic"}]))
    with pytest.raises(InputError, match="row 0"):
        cp.read_pair_manifest(tmp_path / "bad.json")
    with pytest.raises(InputError, match="cannot read pair manifest"):
        cp.read_pair_manifest(tmp_path / "missing.json")


def test_consistency_term_reads_style_views_without_changing_the_windows(tiny_pairs):
    base = ConceptsTask(config=_cfg(), sequences=_seqs(), pairs=tiny_pairs).batch(5, rank=0, world_size=1,
                                                                                  batch_size=4)
    assert not {"view_states", "view_valid", "view_map"} & set(base)
    task = ConceptsTask(config=_cfg(consistency=1.0), sequences=_seqs(), pairs=tiny_pairs)
    a = task.batch(5, rank=0, world_size=1, batch_size=4)
    assert all(torch.equal(a[k], base[k]) for k in base)  # the original windows do not depend on the term
    assert a["view_states"].shape == a["states"].shape and a["view_map"].shape == (6, 2)
    assert ((a["view_map"] >= -1) & (a["view_map"] < 2)).all() and not torch.equal(a["view_states"], a["states"])
    torch.manual_seed(0)
    model = task.build_model()
    loss, logs = task.loss(model, a)
    loss.backward()
    assert torch.isfinite(loss) and logs["consistency"] > 0
    assert model.motion_encoder.embed.weight.grad.abs().sum() > 0
    # neutral views (no warp, no scaling, no noise) are the windows themselves: every token maps to itself, term 0
    cfg = _cfg(consistency=1.0)
    cfg = replace(cfg, data=replace(cfg.data, view_speed=(1.0, 1.0), view_amplitude=0.0, view_bone=0.0, noise=0.0))
    same = ConceptsTask(config=cfg, sequences=_seqs(), pairs=tiny_pairs)
    b = same.batch(5, rank=0, world_size=1, batch_size=4)
    assert torch.allclose(b["view_states"], b["states"], atol=1e-5)
    assert torch.equal(b["view_map"], torch.arange(2).expand(6, 2))
    _, logs = same.loss(model, b)
    assert logs["consistency"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(Exception, match="consistency"):
        _cfg(consistency=-1.0)


def test_codebook_diversity_key_reaches_the_motion_codebook_and_the_loss(tiny_pairs):
    # model.kwargs.codebook_diversity (issue 16): strict (a misspelt key fails), off by default, and when on the
    # task's loss carries it (logged as diversity_motion, added through the quantiser's loss)
    base = {"data": {"sources": ["bandai"], "eval_sources": ["bandai"], "pair_batch": 2, "eval_pairs": 2},
            "train": {"steps": 2, "batch_size": 4, "tensorboard": False, "device": "cpu", "amp": False}}
    logs, losses = {}, {}
    for weight in (0.0, 0.5):
        cfg = load_config(ConceptsRunConfig, {**base, "model": {"name": "concepts_test",
                                                                "kwargs": {"codebook_diversity": weight}}})
        task = ConceptsTask(config=cfg, sequences=_seqs(), pairs=tiny_pairs)
        batch = task.batch(3, rank=0, world_size=1, batch_size=4)
        torch.manual_seed(0)
        model = task.build_model()
        assert model.config.codebook_diversity == weight
        torch.manual_seed(1)
        losses[weight], logs[weight] = task.loss(model, batch)
    assert "diversity_motion" not in logs[0.0]
    div = float(logs[0.5]["diversity_motion"])
    assert -math.log(8) <= div < 0  # minus an entropy over the 8 codes
    assert float(logs[0.5]["commit_motion"] - logs[0.0]["commit_motion"]) == pytest.approx(0.5 * div, rel=1e-4)
    assert float((losses[0.5] - losses[0.0]).detach()) == pytest.approx(0.5 * div, rel=1e-3, abs=1e-5)
    with pytest.raises(TypeError):
        ConceptsTask(config=load_config(ConceptsRunConfig, {**base, "model": {
            "name": "concepts_test", "kwargs": {"codebook_diversity_weight": 0.5}}}), sequences=_seqs()).build_model()


def test_hyper_motion_key_feeds_the_discriminative_and_actionable_terms(tiny_pairs):
    # model.kwargs.hyper_motion (issue 16): strict, off by default; when on, the discriminative term scores the
    # hypernetwork's widened states and the task's loss still runs every term
    base = {"data": {"sources": ["bandai"], "eval_sources": ["bandai"], "pair_batch": 2, "eval_pairs": 2},
            "train": {"steps": 2, "batch_size": 4, "tensorboard": False, "device": "cpu", "amp": False}}
    cfg = load_config(ConceptsRunConfig, {**base, "model": {"name": "concepts_test", "kwargs": {"hyper_motion": True}}})
    task = ConceptsTask(config=cfg, sequences=_seqs(), pairs=tiny_pairs)
    b = task.batch(2, rank=0, world_size=1, batch_size=4)
    torch.manual_seed(0)
    model = task.build_model()
    assert model.config.hyper_motion and model.hypernet.embed.in_features == 55 + 51
    out = model.motion(b["states"], b["valid"])
    hs = model.hyper_states(b["states"], b["valid"])
    logits, positive, _, _ = task._dis_inputs(model, out, hs, b["valid"])
    assert logits.shape == positive.shape and (positive.sum(dim=0) == 1).all()
    loss, logs = task.loss(model, b)
    loss.backward()
    assert torch.isfinite(loss) and {"dis", "act", "align"} <= set(logs)
    assert model.hypernet.embed.weight.grad[:, 55:].abs().sum() > 0
    plain = ConceptsTask(config=_cfg(), sequences=_seqs(), pairs=tiny_pairs).build_model()
    assert not plain.config.hyper_motion and plain.hypernet.embed.in_features == 55


def test_dis_views_scores_style_view_frames_as_positives_of_their_matched_concept(tiny_pairs):
    cfg = _cfg(dis_views=True, dis_states=1000)
    neutral = replace(cfg, data=replace(cfg.data, view_speed=(1.0, 1.0), view_amplitude=0.0, view_bone=0.0))
    task = ConceptsTask(config=neutral, sequences=_seqs(), pairs=tiny_pairs)
    b = task.batch(2, rank=0, world_size=1, batch_size=4)
    assert "view_map" in b  # dis_views alone draws the views
    torch.manual_seed(0)
    model = task.build_model()
    out = model.motion(b["states"], b["valid"])
    logits, positive, _, _ = task._dis_inputs(model, out, b["states"], b["valid"], b)
    m = int(b["valid"].sum())
    # every valid frame twice: once as itself, once in its (neutral) view, with the same concept
    assert logits.shape == positive.shape == (len(torch.unique(out.ids[out.token_valid])), 2 * m)
    assert (positive.sum(dim=0) == 1).all() and torch.equal(positive[:, :m].sum(1), positive[:, m:].sum(1))
    loss, logs = task.loss(model, b)
    assert torch.isfinite(loss) and "dis" in logs and "consistency" not in logs
    with pytest.raises(Exception, match="dis_views"):
        _cfg(dis_views=True, dis_positive="segment")


def test_dis_negatives_source_scores_each_concept_within_each_dataset(tiny_pairs):
    # loss.dis_negatives: source (issue 16): the batch carries each window's dataset, every row of the term is one
    # (concept, dataset) pair scored on that dataset's frames only, and the task's loss uses exactly those inputs
    seqs = _seqs() + [replace(s, source="nw_ucla", name=s.name.replace("procedural", "nw_ucla"))
                      for s in procedural_sequences(identities=[3], split="train", num_frames=12,
                                                    actions=["walk", "squat"])]
    cfg = _cfg(dis_negatives="source", dis_states=1000)
    cfg = replace(cfg, data=replace(cfg.data, sources=("bandai", "nw_ucla")))
    task = ConceptsTask(config=cfg, sequences=seqs, pairs=tiny_pairs)
    b = task.batch(1, rank=0, world_size=1, batch_size=6)
    # 6 drawn windows (bandai 0 or nw_ucla 1) and 2 procedural pairs (their render's source, 3)
    assert b["source"].tolist()[6:] == [3, 3] and set(b["source"].tolist()[:6]) == {0, 1}
    plain = ConceptsTask(config=replace(cfg, loss=replace(cfg.loss, dis_negatives="batch")), sequences=seqs,
                         pairs=tiny_pairs)
    a = plain.batch(1, rank=0, world_size=1, batch_size=6)
    assert "source" not in a and all(torch.equal(a[k], b[k]) for k in a)  # the default batch is unchanged
    torch.manual_seed(0)
    model = task.build_model().eval()
    with torch.no_grad():
        out = model.motion(b["states"], b["valid"])
        logits, positive, scored, row_w = task._dis_inputs(model, out, b["states"], b["valid"],
                                                             source=b["source"])
    frame_src = b["source"][:, None].expand_as(b["valid"])[b["valid"]]  # every valid frame once (dis_states 1000)
    frame_ids = out.ids.repeat_interleave(model.config.segment, dim=1)[b["valid"]]
    tok_src = b["source"][:, None].expand_as(out.ids)[out.token_valid]
    pairs = {(int(i), int(s)) for i, s in zip(out.ids[out.token_valid], tok_src)}
    assert logits.shape == scored.shape == positive.shape == (len(pairs), len(frame_src))
    assert not (positive & ~scored).any()
    for r in range(len(pairs)):  # each row: the frames of one dataset, positive where that row's concept is
        src = frame_src[scored[r]].unique()
        assert len(src) == 1 and scored[r].sum() == (frame_src == src).sum()
        concept = frame_ids[positive[r]].unique()
        assert len(concept) == 1 and (int(concept), int(src)) in pairs
        assert positive[r].sum() == ((frame_ids == concept) & (frame_src == src)).sum()
    assert (positive.sum(0) == 1).all()  # every frame is the positive of exactly one row
    with torch.no_grad():
        _, logs = task.loss(model, b)
        _, logs_plain = plain.loss(model, b)
    assert float(logs["dis"]) == pytest.approx(float(discriminative_loss(logits, positive, scored)), rel=1e-5)
    assert float(logs["dis"]) != pytest.approx(float(logs_plain["dis"]), rel=1e-3)
    assert row_w is None
    # loss.dis_source_weights: NW-UCLA (code 1) out of the discriminative and clustering terms
    off = ConceptsTask(config=replace(cfg, loss=replace(cfg.loss, dis_source_weights={"nw_ucla": 0.0})),
                       sequences=seqs, pairs=tiny_pairs)
    with torch.no_grad():
        _, _, _, row_w = off._dis_inputs(model, out, b["states"], b["valid"], source=b["source"])
        _, logs_off = off.loss(model, b)
    row_src = torch.stack([frame_src[scored[r]][0] for r in range(len(scored))])
    assert torch.equal(row_w, (row_src != 1).float())
    keep = row_src != 1
    assert float(logs_off["dis"]) == pytest.approx(
        float(discriminative_loss(logits[keep], positive[keep], scored[keep])), rel=1e-5)
    tok_keep = out.token_valid & (b["source"] != 1)[:, None]
    assert float(logs_off["cluster"]) == pytest.approx(
        float(clustering_loss(out.latent, model.codebook("motion"), tok_keep)), rel=1e-5)
    assert float(logs_off["cluster"]) != pytest.approx(float(logs["cluster"]), rel=1e-4)
    with pytest.raises(Exception, match="dis_source_weights"):
        _cfg(dis_negatives="source", dis_source_weights={"ucla": 0.0})
    with pytest.raises(Exception, match="dis_source_weights"):
        _cfg(dis_source_weights={"nw_ucla": 0.0})  # needs dis_negatives: source
    with pytest.raises(Exception, match="dis_negatives"):
        _cfg(dis_negatives="dataset")
    with pytest.raises(Exception, match="dis_negatives"):
        _cfg(dis_negatives="source", dis_positive="segment")


def test_consistency_source_weights_weigh_each_datasets_token_pairs(tiny_pairs):
    # loss.consistency_source_weights (issue 16): the batch carries each window's dataset, and the consistency term
    # is the mean over token pairs weighted by their window's dataset (0: out of the term)
    seqs = _seqs() + [replace(s, source="nw_ucla", name=s.name.replace("procedural", "nw_ucla"))
                      for s in procedural_sequences(identities=[3], split="train", num_frames=12,
                                                    actions=["walk", "squat"])]
    cfg = _cfg(consistency=1.0)
    cfg = replace(cfg, data=replace(cfg.data, sources=("bandai", "nw_ucla")))
    plain = ConceptsTask(config=cfg, sequences=seqs, pairs=tiny_pairs)
    a = plain.batch(1, rank=0, world_size=1, batch_size=6)
    assert "source" not in a
    torch.manual_seed(0)
    model = plain.build_model().eval()
    logs = {}
    for name, weights in (("plain", {}), ("ones", {"nw_ucla": 1.0}), ("off", {"nw_ucla": 0.0}),
                          ("half", {"nw_ucla": 0.5})):
        task = ConceptsTask(config=replace(cfg, loss=replace(cfg.loss, consistency_source_weights=weights)),
                            sequences=seqs, pairs=tiny_pairs)
        b = task.batch(1, rank=0, world_size=1, batch_size=6)
        assert all(torch.equal(a[k], b[k]) for k in a)  # the same windows and views
        assert ("source" in b) == bool(weights)
        with torch.no_grad():
            torch.manual_seed(1)
            _, lg = task.loss(model, b)
        logs[name] = float(lg["consistency"])
    src = b["source"]
    assert set(src.tolist()[:6]) == {0, 1} and src.tolist()[6:] == [3, 3]
    with torch.no_grad():  # the term by hand: per-pair symmetric KL, then the weighted mean
        out = model.motion(b["states"], b["valid"])
        view = model.forward_features(b["view_states"], b["view_valid"])
        vmap = b["view_map"]
        ok = (vmap >= 0) & segment_valid(b["view_valid"], model.config.segment)
        matched = torch.gather(out.latent, 1, vmap.clamp_min(0)[..., None].expand_as(out.latent))
        per = [float(consistency_loss(matched[i : i + 1], view[i : i + 1], model.codebook("motion"), ok[i : i + 1],
                                      tau=cfg.loss.consistency_tau)) for i in range(len(src))]
    n = ok.sum(dim=1).tolist()
    w = [0.5 if s == 1 else 1.0 for s in src.tolist()]
    assert logs["ones"] == pytest.approx(logs["plain"], rel=1e-6)
    assert logs["plain"] == pytest.approx(sum(p * k for p, k in zip(per, n)) / sum(n), rel=1e-5)
    keep = [i for i in range(len(src)) if src[i] != 1]
    assert logs["off"] == pytest.approx(sum(per[i] * n[i] for i in keep) / sum(n[i] for i in keep), rel=1e-5)
    assert logs["half"] == pytest.approx(sum(p * k * c for p, k, c in zip(per, n, w))
                                         / sum(k * c for k, c in zip(n, w)), rel=1e-5)
    assert logs["off"] != pytest.approx(logs["plain"], rel=1e-3)
    with pytest.raises(Exception, match="consistency_source_weights"):
        _cfg(consistency=1.0, consistency_source_weights={"ucla": 0.0})
    with pytest.raises(Exception, match="consistency_source_weights"):
        _cfg(consistency=1.0, consistency_source_weights={"nw_ucla": -1.0})
    with pytest.raises(Exception, match="consistency_source_weights"):
        _cfg(consistency_source_weights={"nw_ucla": 0.0})  # needs loss.consistency > 0


@pytest.mark.parametrize("video_update", [True, False])
def test_shared_codebook_key_trains_both_branches_on_one_codebook(tiny_pairs, video_update):
    # model.kwargs.shared_codebook (issue 16): the task's loss runs both branches on the motion codebook; the video
    # encoder still gets gradients (straight-through), and with shared_codebook_video_update false the video pass
    # leaves the codebook as the motion pass left it
    cfg = load_config(ConceptsRunConfig, {
        "model": {"name": "concepts_test", "kwargs": {"shared_codebook": True,
                                                      "shared_codebook_video_update": video_update}},
        "data": {"sources": ["bandai"], "eval_sources": ["bandai"], "pair_batch": 2, "eval_pairs": 2},
        "train": {"steps": 2, "batch_size": 4, "tensorboard": False, "device": "cpu", "amp": False}})
    task = ConceptsTask(config=cfg, sequences=_seqs(), pairs=tiny_pairs)
    batch = task.batch(3, rank=0, world_size=1, batch_size=4)
    torch.manual_seed(0)
    model = task.build_model()
    assert model.video_vq is model.motion_vq
    model.train()
    with torch.no_grad():
        model.motion(batch["states"], batch["valid"])
    after_motion = model.codebook().clone()
    with torch.no_grad():
        rows = slice(batch["states"].shape[0] - batch["video"].shape[0], None)
        model.video(batch["video"], batch["valid"][rows])
    assert torch.equal(model.codebook(), after_motion) is (not video_update)
    loss, logs = task.loss(model, batch)
    loss.backward()
    assert "commit_video" in logs and math.isfinite(float(loss.detach()))
    assert model.video_encoder.embed.weight.grad.abs().sum() > 0


def test_velocity_horizon_key_sets_the_actionable_target(tiny_pairs):
    def cfg(h: int) -> ConceptsRunConfig:
        c = _cfg()
        return replace(c, data=replace(c.data, velocity_horizon=h, noise=0.0))

    one = ConceptsTask(config=cfg(1), sequences=_seqs(), pairs=tiny_pairs).batch(4, rank=0, world_size=1,
                                                                               batch_size=4)
    unit = 15.0 / 2.0  # MODEL_FPS / VELOCITY_UNIT
    p1 = one["states"][..., :51]
    np.testing.assert_allclose(one["velocity"][:, :7, :51].numpy(), ((p1[:, 1:] - p1[:, :-1]) * unit).numpy(),
                               atol=1e-4)  # h = 1: the next frame's pose change
    task = ConceptsTask(config=cfg(3), sequences=_seqs(), pairs=tiny_pairs)
    b = task.batch(4, rank=0, world_size=1, batch_size=4)
    assert b["velocity"].shape == one["velocity"].shape and b["velocity_valid"].all()  # 30-frame sequences: room
    # every target is the mean velocity over 3 frames: the pose part equals the states' pose change over 3 frames
    # where all four frames are in the window (the states hold the same canonical pose)
    pose = b["states"][..., :51]
    np.testing.assert_allclose(b["velocity"][:, :5, :51].numpy(), ((pose[:, 3:8] - pose[:, :5]) / 3 * unit).numpy(),
                               atol=1e-4)
    torch.manual_seed(0)
    loss, logs = task.loss(task.build_model(), b)
    assert torch.isfinite(loss) and "act" in logs
    with pytest.raises(Exception, match="velocity_horizon"):
        load_config(ConceptsRunConfig, {"model": {"name": "concepts_test"}, "data": {"velocity_horizon": 0}})
