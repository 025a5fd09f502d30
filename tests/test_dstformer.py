"""DSTformer, its heads and the baseline lifters: sizes against the paper, shapes, fusion start, guards."""

from __future__ import annotations

import pytest
import torch

from hmore.models.motion.dstformer import DSTformer, DSTformerConfig, DualStreamLayer
from hmore.registry import create_model, list_models


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "paper"), [("dstformer", 42.5e6), ("dstformer_lite", 16.0e6)])
def test_parameter_count_matches_paper(name: str, paper: float) -> None:
    with torch.device("meta"):
        model = create_model(name)
    n = _count(model)
    print(f"{name}: {n / 1e6:.2f} M parameters (paper {paper / 1e6:.1f} M)")
    assert abs(n - paper) / paper < 0.02


def test_full_size_representation_width() -> None:
    with torch.device("meta"):
        model = create_model("dstformer")
    out = model.forward_features(torch.zeros(1, 4, 17, 3, device="meta"))
    assert tuple(out.shape) == (1, 4, 17, 512)


@pytest.mark.parametrize("name", ["dstformer_test", "dstformer_cpu", "mlp_lifter_test", "tcn_lifter_test",
                                  "mlp_lifter", "tcn_lifter"])
def test_lifters_forward_shape_and_finite(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(2, 9, 17, 3)
    y = model(x)
    assert y.shape == (2, 9, 17, 3)
    assert torch.isfinite(y).all()


def test_registered_variants() -> None:
    names = set(list_models("dstformer*"))
    assert {"dstformer", "dstformer_lite", "dstformer_cpu", "dstformer_test"} <= names


def test_features_and_head_split() -> None:
    torch.manual_seed(0)
    model = create_model("dstformer_test").eval()
    x = torch.randn(3, 7, 17, 3)
    rep = model.forward_features(x)
    assert rep.shape == (3, 7, 17, model.config.rep_dim)
    assert rep.abs().max() < 1.0  # tanh representation
    torch.testing.assert_close(model.forward_head(rep), model(x))


def test_fusion_starts_as_even_average() -> None:
    torch.manual_seed(0)
    model = create_model("dstformer_test")
    layer = model.layers[0]
    assert isinstance(layer, DualStreamLayer)
    a, b = torch.randn(2, 5, 17, 16), torch.randn(2, 5, 17, 16)
    alpha = layer.fusion_weights(a, b)
    torch.testing.assert_close(alpha, torch.full_like(alpha, 0.5))
    # so the layer's output is the plain mean of the two streams
    x = torch.randn(2, 5, 17, 16)
    torch.testing.assert_close(layer(x), 0.5 * (layer.st(x) + layer.ts(x)))


def test_streams_attend_along_their_axis() -> None:
    """Changing one joint of one frame: a spatial block changes only that frame, a temporal only that joint."""
    torch.manual_seed(0)
    model = create_model("dstformer_test").eval()
    spatial, temporal = model.layers[0].st[0], model.layers[0].st[1]
    assert spatial.axis == "spatial" and temporal.axis == "temporal"
    x = torch.randn(1, 6, 17, 16)
    x2 = x.clone()
    x2[0, 2, 5] += 1.0
    ds = (spatial(x2) - spatial(x)).abs().amax(dim=-1)[0]  # (F, J)
    dt = (temporal(x2) - temporal(x)).abs().amax(dim=-1)[0]
    changed_frames = torch.nonzero(ds.amax(dim=1) > 1e-6).flatten().tolist()
    changed_joints = torch.nonzero(dt.amax(dim=0) > 1e-6).flatten().tolist()
    assert changed_frames == [2]
    assert changed_joints == [5]


def test_too_long_or_malformed_input_raises() -> None:
    model = create_model("dstformer_test")
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, model.config.max_len + 1, 17, 3))
    with pytest.raises(ValueError, match="expects"):
        model(torch.zeros(1, 5, 16, 3))
    with pytest.raises(ValueError, match="divisible"):
        DSTformer(config=DSTformerConfig(dim=30, num_heads=8))


def test_action_head_shapes_and_person_mean() -> None:
    torch.manual_seed(0)
    model = create_model("dstformer_action_test").eval()
    x = torch.randn(2, 3, 8, 17, 3)  # (N, M persons, T, J, 3)
    logits = model(x)
    assert logits.shape == (2, 4)
    # the head averages over persons: swapping persons leaves the logits unchanged
    torch.testing.assert_close(model(x[:, [2, 0, 1]]), logits, atol=1e-5, rtol=1e-5)
    baseline = create_model("pose_stats_action", num_classes=5).eval()
    assert baseline(x).shape == (2, 5)


def test_embedding_head_unit_norm() -> None:
    from hmore.models.motion.heads import EmbeddingHead

    head = EmbeddingHead(rep_dim=16, embed_dim=8)
    e = head(torch.randn(3, 2, 5, 17, 16))
    assert e.shape == (3, 8)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(3))


def test_baselines_mlp_is_per_frame_tcn_is_not() -> None:
    torch.manual_seed(0)
    mlp, tcn = create_model("mlp_lifter_test").eval(), create_model("tcn_lifter_test").eval()
    x = torch.randn(1, 12, 17, 3)
    x2 = x.clone()
    x2[0, 6] += 1.0
    d_mlp = (mlp(x2) - mlp(x)).abs().amax(dim=(0, 2, 3))
    d_tcn = (tcn(x2) - tcn(x)).abs().amax(dim=(0, 2, 3))
    assert torch.nonzero(d_mlp > 1e-6).flatten().tolist() == [6]
    assert (d_tcn > 1e-6).sum() > 1


def test_root_scale_input_norm_removes_position_and_size() -> None:
    from hmore.models.motion.input_norm import normalize_input

    torch.manual_seed(0)
    x = torch.rand(2, 5, 17, 3) + 0.1  # all joints visible
    moved = x.clone()
    moved[..., :2] = 3.0 * x[..., :2] + torch.tensor([0.4, -0.2])
    torch.testing.assert_close(normalize_input(moved, "root_scale"), normalize_input(x, "root_scale"))
    n = normalize_input(x, "root_scale")
    torch.testing.assert_close(n[..., 0, :2], torch.zeros(2, 5, 2))  # root at the origin
    torch.testing.assert_close((n[..., :2] ** 2).sum(dim=(-1, -2)) / 17, torch.ones(2, 5))  # unit RMS per frame
    mirrored = x.clone()
    mirrored[..., 0] *= -1
    expect = n.clone()
    expect[..., 0] *= -1
    torch.testing.assert_close(normalize_input(mirrored, "root_scale"), expect)  # flips commute
    masked = x.clone()
    masked[:, :, 3] = 0.0
    assert normalize_input(masked, "root_scale")[:, :, 3].abs().max() == 0  # masked joints stay zero
    assert torch.equal(normalize_input(x, "none"), x)
    model = create_model("dstformer_test", input_norm="root_scale").eval()
    torch.testing.assert_close(model(moved), model(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="input_norm"):
        create_model("dstformer_test", input_norm="pixels")


def test_pose_embed_starts_as_the_plain_model_and_sees_the_whole_frame() -> None:
    torch.manual_seed(0)
    plain = create_model("dstformer_test").eval()
    torch.manual_seed(0)
    posed = create_model("dstformer_test", pose_embed=32, pose_embed_blocks=2).eval()
    # every weight the plain model has is drawn identically; the stem's output Linear starts at zero
    missing = posed.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("pose_embed_mlp.") for k in missing)
    x = torch.randn(2, 5, 17, 3)
    x[..., 2] = 1.0
    with torch.no_grad():
        assert torch.allclose(posed(x), plain(x), atol=1e-6)
        torch.nn.init.normal_(posed.pose_embed_mlp.out.weight, std=0.1)
        stem = posed.pose_embed_mlp(x)  # (B, F, J, dim)
        assert stem.shape == (2, 5, 17, 16)
        # whole pose: moving joint 0 changes every joint's embedding; per frame: other frames stay the same
        moved = x.clone()
        moved[:, 2, 0, :2] += 1.0
        diff = (posed.pose_embed_mlp(moved) - stem).abs().amax(dim=-1)  # (B, F, J)
        assert bool((diff[:, 2] > 0).all())
        assert float(diff[:, [0, 1, 3, 4]].max()) == 0.0
    with pytest.raises(ValueError, match="pose_embed"):
        DSTformerConfig(pose_embed=-1)
