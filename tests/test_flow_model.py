"""The H-MoRe flow model: every registered variant runs, shapes and invariants hold, bad inputs fail clearly."""

from __future__ import annotations

import pytest
import torch

from hmore.errors import UsageError
from hmore.models.flow import FlowOutput, HMoReFlow, local_from_world
from hmore.models.flow.corr import CorrPyramid
from hmore.models.flow.subject import subject_one_hot
from hmore.models.flow.update import upsample_bilinear8, upsample_convex8
from hmore.registry import create_model, list_models


def _pair(b: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img1 = torch.rand(b, 3, h, w, generator=g) * 255
    img2 = torch.roll(img1, shifts=(1, 2), dims=(2, 3))
    return img1, img2


def _masks(b: int, h: int, w: int) -> torch.Tensor:
    m = torch.zeros(b, h, w, dtype=torch.long)
    m[:, h // 6: h // 2, w // 5: w // 2] = 1
    m[:, h // 2 + 2: h - 3, w // 2 + 3: w - 2] = 2
    return m


@pytest.fixture(scope="module")
def tiny() -> HMoReFlow:
    torch.manual_seed(0)
    return create_model("hmore_flow_test").eval()


def test_flow_variants_are_registered() -> None:
    assert {"hmore_flow", "hmore_flow_cpu", "hmore_flow_test"} <= set(list_models("hmore_flow*"))


@pytest.mark.parametrize("name", list_models("hmore_flow*"))
def test_every_registered_flow_model_runs_on_cpu(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    img1, img2 = _pair(1, 48, 64)
    with torch.no_grad():
        out = model(img1, img2, masks=_masks(1, 48, 64), iters=2)
    assert isinstance(out, FlowOutput)
    assert out.world.shape == (1, 2, 48, 64)
    assert out.local.shape == (1, 2, 48, 64)
    assert out.subject_velocity.shape == (1, 2, 2)
    assert out.iterations.shape == (2, 1, 2, 48, 64)
    for t in (out.world, out.local, out.subject_velocity, out.iterations):
        assert torch.isfinite(t).all()


def test_paper_size_parameter_count_is_near_the_papers() -> None:
    n = sum(p.numel() for p in create_model("hmore_flow").parameters())
    assert 5.0e6 < n < 6.5e6  # paper: 5.57 M
    n_cpu = sum(p.numel() for p in create_model("hmore_flow_cpu").parameters())
    assert n_cpu < n / 4


@pytest.mark.parametrize("size", [(70, 90), (61, 127)])
def test_sizes_not_multiple_of_8(tiny: HMoReFlow, size: tuple[int, int]) -> None:
    h, w = size
    img1, img2 = _pair(2, h, w)
    with torch.no_grad():
        out = tiny(img1, img2, masks=_masks(2, h, w))
    assert out.world.shape == out.local.shape == (2, 2, h, w)
    assert out.iterations.shape == (tiny.config.iters, 2, 2, h, w)
    assert torch.isfinite(out.world).all()


def test_world_equals_local_plus_subject_velocity_inside_masks(tiny: HMoReFlow) -> None:
    h, w = 61, 75
    img1, img2 = _pair(2, h, w, seed=1)
    masks = _masks(2, h, w)
    masks[1] = 0  # an image without people: subjects absent there
    with torch.no_grad():
        out = tiny(img1, img2, masks=masks)
    v = out.subject_velocity
    for s in (1, 2):
        inside = masks == s  # (B, H, W)
        recon = out.local + v[:, s - 1, :, None, None]
        assert torch.allclose(recon.permute(0, 2, 3, 1)[inside], out.world.permute(0, 2, 3, 1)[inside], atol=1e-5)
    outside = masks == 0
    assert (out.local.permute(0, 2, 3, 1)[outside] == 0).all()
    assert (v[1] == 0).all()  # absent subjects have zero velocity


def test_fresh_subject_net_predicts_the_mean_flow_in_its_mask(tiny: HMoReFlow) -> None:
    # The head starts at zero (ours): v_s = mean world flow inside the mask. 64x64 needs no padding.
    img1, img2 = _pair(1, 64, 64, seed=2)
    masks = _masks(1, 64, 64)
    with torch.no_grad():
        out = tiny(img1, img2, masks=masks)
    for s in (1, 2):
        inside = masks[0] == s
        mean = out.world[0][:, inside].mean(dim=1)
        assert torch.allclose(out.subject_velocity[0, s - 1], mean, atol=1e-4)


def test_zero_motion_pair_output_type_with_and_without_masks(tiny: HMoReFlow) -> None:
    img = _pair(1, 40, 56)[0]
    with torch.no_grad():
        plain = tiny(img, img.clone())
        masked = tiny(img, img.clone(), masks=_masks(1, 40, 56))
    assert type(plain) is type(masked) is FlowOutput
    assert plain.subject_velocity.shape == (1, 0, 2)
    assert masked.subject_velocity.shape == (1, 2, 2)
    assert torch.equal(plain.local, plain.world)
    assert torch.allclose(plain.world, masked.world)  # masks do not change the world flow
    assert torch.isfinite(plain.world).all()


def test_uint8_and_float_inputs_agree(tiny: HMoReFlow) -> None:
    img1, img2 = _pair(1, 32, 40)
    u1, u2 = img1.round().to(torch.uint8), img2.round().to(torch.uint8)
    with torch.no_grad():
        a = tiny(u1, u2)
        b = tiny(u1.float(), u2.float())
    assert torch.allclose(a.world, b.world)


def test_iterations_count_and_last_is_world(tiny: HMoReFlow) -> None:
    img1, img2 = _pair(1, 32, 32)
    with torch.no_grad():
        out = tiny(img1, img2, iters=5)
    assert out.iterations.shape[0] == 5
    assert torch.equal(out.iterations[-1], out.world)


def test_num_subjects_beyond_labels_gives_zero_velocity(tiny: HMoReFlow) -> None:
    img1, img2 = _pair(1, 32, 32)
    masks = torch.zeros(1, 32, 32, dtype=torch.long)
    masks[0, 4:20, 4:20] = 1
    with torch.no_grad():
        out = tiny(img1, img2, masks=masks, num_subjects=3)
    assert out.subject_velocity.shape == (1, 3, 2)
    assert (out.subject_velocity[0, 1:] == 0).all()
    assert torch.isfinite(out.subject_velocity).all()


def test_overrides_pass_through_and_unknown_keys_fail() -> None:
    model = create_model("hmore_flow_test", corr_levels=2, upsample="convex")
    assert model.config.corr_levels == 2 and model.config.upsample == "convex"
    img1, img2 = _pair(1, 24, 40)
    with torch.no_grad():
        out = model(img1, img2, iters=1)
    assert out.world.shape == (1, 2, 24, 40) and torch.isfinite(out.world).all()
    with pytest.raises(UsageError, match="corr_lvls"):
        create_model("hmore_flow_test", corr_lvls=2)
    with pytest.raises(ValueError, match="attn_heads"):
        create_model("hmore_flow_test", attn_dim=18, attn_heads=4)


def test_flow_init_is_used(tiny: HMoReFlow) -> None:
    img1, img2 = _pair(1, 32, 32)
    init = torch.zeros(1, 2, 32, 32)
    init[:, 0] = 16.0
    with torch.no_grad():
        a = tiny(img1, img2, iters=1)
        b = tiny(img1, img2, iters=1, flow_init=init)
    assert not torch.allclose(a.world, b.world)


def _smooth_texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(1, 3, h, w) blurred noise in [0, 255]: texture DIS can match (white noise is too aliased for it)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return torch.from_numpy(img).permute(2, 0, 1)[None]


def test_dis_init_recovers_a_known_translation() -> None:
    from hmore.models.flow.init import dis_flow

    big = _smooth_texture(80, 96)
    img1, img2 = big[..., 8:72, 8:88], big[..., 6:70, 5:85]  # content moves by (+3, +2) px
    flow = dis_flow(img1, img2)
    assert flow.shape == (1, 2, 64, 80) and flow.dtype == torch.float32
    inner = flow[0, :, 12:-12, 12:-12]
    assert torch.allclose(inner[0].median(), torch.tensor(3.0), atol=0.25)
    assert torch.allclose(inner[1].median(), torch.tensor(2.0), atol=0.25)
    assert dis_flow(img1[..., :6, :6], img2[..., :6, :6]).abs().max() == 0  # too small for DIS: zero flow
    with pytest.raises(ValueError, match="unknown DIS preset"):
        dis_flow(img1, img2, preset="slowest")


def test_dis_init_model_starts_from_dis_flow() -> None:
    from hmore.models.flow.init import dis_flow

    torch.manual_seed(0)
    model = create_model("hmore_flow_test", init="dis").eval()
    big = _smooth_texture(48, 56, seed=1)
    img1, img2 = big[..., 4:44, 4:52], big[..., 2:42, 1:49]
    with torch.no_grad():
        auto = model(img1, img2, iters=2)
        given = model(img1, img2, iters=2, flow_init=dis_flow(img1, img2))
        zero = model(img1, img2, iters=2, flow_init=torch.zeros(1, 2, 40, 48))
    assert torch.equal(auto.world, given.world)
    assert not torch.allclose(auto.world, zero.world)
    with pytest.raises(ValueError, match="init"):
        create_model("hmore_flow_test", init="farneback")


def test_init_context_feeds_the_full_resolution_initial_flow() -> None:
    torch.manual_seed(0)
    model = create_model("hmore_flow_test", init_context=True).eval()
    assert model.context_encoder.stem[0].in_channels == 5  # RGB + the 2 flow channels
    img1, img2 = _pair(1, 40, 44)
    fine = torch.zeros(1, 2, 40, 44)
    fine[:, 0, ::2] = 4.0  # alternate rows move: same 1/8 average as a uniform 2 px, different detail
    coarse = torch.full((1, 2, 40, 44), 2.0)
    coarse[:, 1] = 0.0
    with torch.no_grad():
        a = model(img1, img2, iters=1, flow_init=fine)
        b = model(img1, img2, iters=1, flow_init=coarse)
        zero = model(img1, img2, iters=1)  # no init: zero flow channels, still runs
    assert not torch.allclose(a.world, b.world)  # only the context differs: the detail reaches the update
    assert zero.world.shape == (1, 2, 40, 44)
    plain = create_model("hmore_flow_test").eval()
    assert plain.context_encoder.stem[0].in_channels == 3
    with pytest.raises(ValueError, match="init_scale"):
        create_model("hmore_flow_test", init_scale=0.0)


@pytest.mark.parametrize("upsample", ["bilinear", "convex"])
def test_init_residual_returns_the_initial_flow_until_the_refinement_moves(upsample: str) -> None:
    torch.manual_seed(0)
    model = create_model("hmore_flow_test", upsample=upsample, init_residual=True).eval()
    img1, img2 = _pair(1, 27, 45)  # not a multiple of 8: the padding is cropped again
    init = torch.zeros(1, 2, 27, 45)
    init[:, 0, ::2] = 5.0  # detail that 1/8 resolution cannot hold
    init[:, 1] = torch.linspace(-3, 3, 45)
    with torch.no_grad():
        moving = model(img1, img2, iters=2, flow_init=init)
        model.update_block.head.conv2.weight.zero_()  # the refinement's step is now exactly zero
        model.update_block.head.conv2.bias.zero_()
        still = model(img1, img2, iters=2, flow_init=init)
        no_init = model(img1, img2, iters=2)  # no initial flow: plain refinement from zero
    assert not torch.allclose(moving.world, init, atol=1e-3)
    assert torch.allclose(still.world, init, atol=1e-4)  # detail kept, to float precision
    assert torch.allclose(still.iterations, init.expand(2, 1, 2, 27, 45), atol=1e-4)
    assert no_init.world.abs().max() < 1e-5


@pytest.mark.parametrize("upsample", ["bilinear", "convex"])
def test_last_iteration_only_matches_the_full_run(upsample: str) -> None:
    torch.manual_seed(0)
    model = create_model("hmore_flow_test", upsample=upsample).eval()
    img1, img2 = _pair(2, 27, 45)
    masks = _masks(2, 27, 45)
    with torch.no_grad():
        full = model(img1, img2, masks=masks, iters=3)
        last = model(img1, img2, masks=masks, iters=3, all_iterations=False)
    assert full.iterations.shape[0] == 3 and last.iterations.shape[0] == 1
    assert torch.allclose(full.world, last.world, atol=1e-6)
    assert torch.allclose(full.local, last.local, atol=1e-6)
    assert torch.allclose(full.subject_velocity, last.subject_velocity, atol=1e-6)


def test_gradients_reach_phi_and_psi_separately() -> None:
    torch.manual_seed(0)
    model = create_model("hmore_flow_test")
    img1, img2 = _pair(1, 32, 32)
    out = model(img1, img2, masks=_masks(1, 32, 32), iters=2)
    out.subject_velocity.sum().backward()
    assert model.subject_net.head.weight.grad is not None and model.subject_net.head.weight.grad.abs().sum() > 0
    # Psi reads a detached world flow by default: its loss leaves Phi untouched.
    assert all(p.grad is None for p in model.update_block.parameters())
    model.zero_grad(set_to_none=True)
    out = model(img1, img2, iters=2)
    out.world.square().mean().backward()
    assert model.feature_encoder.stem[0].weight.grad.abs().sum() > 0


def test_a_few_steps_fit_one_translated_pair() -> None:
    # Smooth texture moved by (+3, -2) px: the supervised sequence loss must fall as Phi trains on it.
    from hmore.losses.flow_sequence import sequence_loss

    torch.manual_seed(0)
    model = create_model("hmore_flow_test")
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 48, 48, generator=g) * 255, 5, stride=1, padding=2)
    img1 = base[:, :, 8:40, 8:40]
    img2 = base[:, :, 10:42, 5:37]  # img2(x + 3, y - 2) = img1(x, y)
    target = torch.tensor([3.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, 32, 32)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss = sequence_loss(model(img1, img2, iters=3).iterations, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_autocast_bfloat16_runs(tiny: HMoReFlow) -> None:
    img1, img2 = _pair(1, 32, 40)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = tiny(img1, img2, masks=_masks(1, 32, 40))
    assert isinstance(out, FlowOutput)
    assert torch.isfinite(out.world).all() and torch.isfinite(out.subject_velocity).all()


def test_correlation_volume_stays_float32_under_autocast() -> None:
    f1, f2 = torch.randn(2, 1, 8, 4, 4).unbind(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pyramid = CorrPyramid(levels=2, radius=1).build(f1, f2)
    assert all(level.dtype == torch.float32 for level in pyramid)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image1": torch.zeros(3, 32, 32), "image2": torch.zeros(3, 32, 32)}, r"\(B, 3, H, W\), got \(3, 32, 32\)"),
        ({"image1": torch.zeros(1, 3, 32, 32), "image2": torch.zeros(1, 3, 32, 40)}, r"\(1, 3, 32, 40\)"),
        ({"masks": torch.zeros(1, 30, 32, dtype=torch.long)}, r"\(1, 32, 32\), got \(1, 30, 32\)"),
        ({"masks": torch.zeros(1, 32, 32)}, "integer labels"),
        ({"flow_init": torch.zeros(1, 2, 16, 16)}, r"\(1, 2, 32, 32\), got \(1, 2, 16, 16\)"),
        ({"iters": 0}, "iters"),
    ],
)
def test_bad_inputs_raise_value_error_with_shapes(tiny: HMoReFlow, kwargs: dict, match: str) -> None:
    args = {"image1": torch.zeros(1, 3, 32, 32), "image2": torch.zeros(1, 3, 32, 32)}
    args.update(kwargs)
    image1, image2 = args.pop("image1"), args.pop("image2")
    with pytest.raises(ValueError, match=match):
        tiny(image1, image2, **args)


def test_too_many_subjects_is_an_error(tiny: HMoReFlow) -> None:
    img1, img2 = _pair(1, 32, 32)
    masks = torch.zeros(1, 32, 32, dtype=torch.long)
    masks[0, 0, : tiny.config.max_subjects + 1] = torch.arange(1, tiny.config.max_subjects + 2)
    with pytest.raises(ValueError, match="max_subjects"):
        tiny(img1, img2, masks=masks)


def test_correlation_lookup_matches_direct_dot_products() -> None:
    torch.manual_seed(0)
    f1, f2 = torch.randn(2, 1, 6, 5, 7).unbind(0)  # (B=1, C=6, h=5, w=7)
    corr = CorrPyramid(levels=2, radius=1)
    pyr = corr.build(f1, f2)
    ys, xs = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    coords = torch.stack([xs, ys])[None]
    out = corr.lookup(pyr, coords)  # (1, 2*9, 5, 7)
    assert out.shape == (1, 18, 5, 7)
    # window index 4 (dy=0, dx=0) at level 0 is <f1(p), f2(p)> / sqrt(C); index 5 is the right neighbour (dx=+1)
    direct = (f1 * f2).sum(1) / 6**0.5
    assert torch.allclose(out[0, 4], direct[0], atol=1e-5)
    right = (f1[0, :, 2, 3] * f2[0, :, 2, 4]).sum() / 6**0.5
    assert torch.allclose(out[0, 5, 2, 3], right, atol=1e-5)
    # outside the image the lookup is zero (left of column 0)
    assert torch.all(out[0, 3, :, 0] == 0)
    # half-pixel coordinates interpolate bilinearly
    out_half = corr.lookup(pyr, coords + torch.tensor([0.5, 0.0]).view(1, 2, 1, 1))
    mid = 0.5 * ((f1[0, :, 1, 1] * f2[0, :, 1, 1]).sum() + (f1[0, :, 1, 1] * f2[0, :, 1, 2]).sum()) / 6**0.5
    assert torch.allclose(out_half[0, 4, 1, 1], mid, atol=1e-5)


def test_upsampling_keeps_constant_flow_and_scales_by_8() -> None:
    flow = torch.tensor([1.5, -0.5]).view(1, 2, 1, 1).expand(1, 2, 4, 5).contiguous()
    up = upsample_bilinear8(flow)
    assert up.shape == (1, 2, 32, 40)
    assert torch.allclose(up, 8 * flow[:, :, :1, :1].expand_as(up))
    convex = upsample_convex8(flow, torch.zeros(1, 9 * 64, 4, 5))  # uniform weights over the 3x3 neighbours
    assert torch.allclose(convex[:, :, 8:24, 8:32], torch.tensor([12.0, -4.0]).view(1, 2, 1, 1).expand(1, 2, 16, 24))


def test_local_from_world_hand_case() -> None:
    world = torch.ones(1, 2, 2, 3)
    one_hot = subject_one_hot(torch.tensor([[[0, 1, 1], [2, 2, 0]]]), 2)
    v = torch.tensor([[[1.0, 0.0], [0.5, 2.0]]])
    local = local_from_world(world, v, one_hot)
    expected = torch.tensor([[[0, 0, 0], [0.5, 0.5, 0]], [[0, 1, 1], [-1, -1, 0]]], dtype=torch.float32)
    assert torch.equal(local[0], expected)


def test_features1_from_the_previous_pair_give_the_same_flow(tiny: HMoReFlow) -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.rand(1, 3, 27, 45, generator=g) * 255
    b, c = torch.roll(a, shifts=(1, 2), dims=(2, 3)), torch.roll(a, shifts=(2, 3), dims=(2, 3))
    masks = _masks(1, 27, 45)
    with torch.no_grad():
        first = tiny(a, b, masks=masks, all_iterations=False)
        fresh = tiny(b, c, masks=masks, all_iterations=False)
        reused = tiny(b, c, masks=masks, all_iterations=False, features1=first.features2)
    assert first.features2 is not None and first.features2.shape == (1, 16, 4, 6)  # padded 32x48 / 8
    assert torch.allclose(reused.features2, fresh.features2, atol=1e-5)
    assert torch.allclose(reused.world, fresh.world, atol=1e-4)
    assert torch.allclose(reused.subject_velocity, fresh.subject_velocity, atol=1e-4)


def test_features1_of_the_wrong_shape_is_an_error(tiny: HMoReFlow) -> None:
    img1, img2 = _pair(1, 27, 45)
    with pytest.raises(ValueError, match=r"features1 must be \(B, C, H/8, W/8\) = \(1, 16, 4, 6\)"):
        tiny(img1, img2, features1=torch.zeros(1, 16, 3, 6))


def test_camera_homography_on_the_coarse_grid_hand_case() -> None:
    from hmore.models.flow.model import _apply_homography, _coarse_homography

    shift = torch.tensor([[[1.0, 0, 8], [0, 1, 16], [0, 0, 1]]])  # 8 px right, 16 px down = 1 and 2 grid cells
    zoom = torch.tensor([[[2.0, 0, 0], [0, 2, 0], [0, 0, 1]]])  # pixel (x, y) -> (2x, 2y)
    cells = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)  # cell (1, 0): pixel centre (11.5, 3.5)
    assert torch.allclose(_apply_homography(_coarse_homography(shift, 1), cells).flatten(), torch.tensor([2.0, 2.0]))
    # (2 * 11.5 - 3.5) / 8 = 2.4375, (2 * 3.5 - 3.5) / 8 = 0.4375
    assert torch.allclose(_apply_homography(_coarse_homography(zoom, 1), cells).flatten(),
                          torch.tensor([2.4375, 0.4375]))
    with pytest.raises(ValueError, match=r"camera must be \(B, 3, 3\) = \(2, 3, 3\)"):
        _coarse_homography(shift, 2)


def test_camera_moves_the_correlation_lookup_not_the_flow(tiny: HMoReFlow, monkeypatch: pytest.MonkeyPatch) -> None:
    img1, img2 = _pair(1, 32, 48)
    seen: list[torch.Tensor] = []
    lookup = tiny.corr_block.lookup

    def spy(pyramid: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
        seen.append(coords.clone())
        return lookup(pyramid, coords)

    monkeypatch.setattr(tiny.corr_block, "lookup", spy)
    with torch.no_grad():
        plain = tiny(img1, img2, all_iterations=False, iters=1)
        same = tiny(img1, img2, all_iterations=False, iters=1, camera=torch.eye(3)[None])
        moved = tiny(img1, img2, all_iterations=False, iters=1,
                     camera=torch.tensor([[[1.0, 0, 8], [0, 1, 0], [0, 0, 1]]]))
    assert torch.allclose(same.world, plain.world, atol=1e-5)  # the identity camera changes nothing
    assert torch.allclose(seen[1], seen[0], atol=1e-6)
    assert torch.allclose(seen[2], seen[0] + torch.tensor([1.0, 0.0]).view(1, 2, 1, 1), atol=1e-5)  # one cell right
    assert not torch.allclose(moved.world, plain.world)


def test_camera_with_dis_init_starts_from_the_stabilised_dis_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmore.models.flow.model as model_module

    torch.manual_seed(0)
    net = create_model("hmore_flow_test", init="dis", init_residual=True).eval()
    dis = torch.zeros(1, 2, 32, 48)
    dis[:, 0] = 8.0  # DIS says: everything moved 8 px right, which is exactly the camera
    monkeypatch.setattr(model_module, "dis_flow", lambda a, b: dis.clone())
    img1, img2 = _pair(1, 32, 48)
    camera = torch.tensor([[[1.0, 0, 8], [0, 1, 0], [0, 0, 1]]])
    with torch.no_grad():
        auto = net(img1, img2, all_iterations=False, camera=camera)
        zero_start = net(img1, img2, all_iterations=False, camera=camera, flow_init=torch.zeros(1, 2, 32, 48))
    assert torch.allclose(auto.world, zero_start.world, atol=1e-4)  # relative to the stabilised view: no motion


def test_features_encoded_apart_give_the_same_flow() -> None:
    torch.manual_seed(0)
    net = create_model("hmore_flow_test").eval()
    g = torch.Generator().manual_seed(1)
    img1 = torch.randint(0, 256, (1, 3, 44, 60), generator=g, dtype=torch.uint8)  # not a multiple of 8: padded
    img2 = torch.roll(img1, shifts=(1, 2), dims=(2, 3))
    with torch.no_grad():
        whole = net(img1, img2, all_iterations=False)
        f1, f2 = net.encode_features(img1), net.encode_features(img2)
        assert f1.shape == (1, net.config.feature_dim, 6, 8)
        apart = net(img1, img2, all_iterations=False, features1=f1, features2=f2)
        only2 = net(img1, img2, all_iterations=False, features2=f2)
        assert torch.allclose(apart.world, whole.world, atol=1e-4)
        assert torch.allclose(only2.world, whole.world, atol=1e-4)
        assert apart.features2 is f2  # handed on for the next pair as it was given
        with pytest.raises(ValueError, match="features2 must be"):
            net(img1, img2, features2=f2[..., :4])
        with pytest.raises(ValueError, match="image must be"):
            net.encode_features(img1[0])
