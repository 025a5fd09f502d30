"""H-MoRe flow model: RAFT-small with self-attention on the 1/8 features (Phi) and the subject network (Psi).

World flow M_w comes from Phi; Psi gives one velocity v_s per subject; local flow M_l = M_w - v_s inside subject s's
mask and 0 outside every mask (H-MoRe, CVPR 2025, arXiv 2504.10676; defaults that the paper leaves open are hmore's,
see docs/hmore.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hmore.config import from_dict, to_dict
from hmore.models.flow.attention import FeatureSelfAttention
from hmore.models.flow.config import FlowConfig
from hmore.models.flow.corr import CorrPyramid
from hmore.models.flow.encoders import ResidualEncoder
from hmore.models.flow.init import dis_flow
from hmore.models.flow.subject import SubjectNet, subject_one_hot
from hmore.models.flow.update import UpdateBlock, upsample_bilinear8, upsample_convex8
from hmore.registry import register_model


@dataclass(frozen=True)
class FlowOutput:
    """What :class:`HMoReFlow` returns, whatever the flags.

    Attributes:
        world: (B, 2, H, W) world flow (dx, dy) in pixels, the last iteration.
        local: (B, 2, H, W) local flow: world - v_s inside subject s's mask, 0 outside every mask; equal to
            ``world`` when no masks were given.
        subject_velocity: (B, P, 2) v_s in pixels (P = 0 without masks; 0 for a subject absent from an image).
        iterations: (N, B, 2, H, W) the world flow after each of the N refinement iterations.
        features2: (B, feature_dim, H/8, W/8) image2's matching features (after the self-attention); a video
            stream passes them back as the next pair's ``features1`` when that pair's image1 is this image2.
    """

    world: torch.Tensor
    local: torch.Tensor
    subject_velocity: torch.Tensor
    iterations: torch.Tensor
    features2: torch.Tensor | None = None


def coords_grid(b: int, h: int, w: int, *, device: torch.device) -> torch.Tensor:
    """(B, 2, h, w) pixel coordinates (x, y) of every cell."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    return torch.stack([xs, ys])[None].expand(b, 2, h, w)


def _normalised(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 255] -> float32 in [-1, 1], padded (replicate) to multiples of 8 at the bottom/right."""
    pad_h, pad_w = (-image.shape[-2]) % 8, (-image.shape[-1]) % 8
    x = image.to(torch.float32) * (2.0 / 255.0) - 1.0
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x


def _check_inputs(image1: torch.Tensor, image2: torch.Tensor, masks: torch.Tensor | None,
                  flow_init: torch.Tensor | None, iters: int, num_subjects: int | None) -> None:
    if image1.ndim != 4 or image1.shape[1] != 3:
        raise ValueError(f"image1 must be (B, 3, H, W), got {tuple(image1.shape)}")
    if image2.shape != image1.shape:
        raise ValueError(f"image2 must have image1's shape {tuple(image1.shape)}, got {tuple(image2.shape)}")
    b, _, h, w = image1.shape
    if h < 1 or w < 1 or b < 1:
        raise ValueError(f"images must be non-empty, got {tuple(image1.shape)}")
    if masks is not None:
        if masks.shape != (b, h, w):
            raise ValueError(f"masks must be (B, H, W) = {(b, h, w)}, got {tuple(masks.shape)}")
        if masks.dtype.is_floating_point or masks.dtype.is_complex:
            raise ValueError(f"masks must hold integer labels 0 (background) or 1..P, got dtype {masks.dtype}")
    if flow_init is not None and flow_init.shape != (b, 2, h, w):
        raise ValueError(f"flow_init must be (B, 2, H, W) = {(b, 2, h, w)}, got {tuple(flow_init.shape)}")
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    if num_subjects is not None and num_subjects < 0:
        raise ValueError(f"num_subjects must be >= 0, got {num_subjects}")


class HMoReFlow(nn.Module):
    """World and local flow of people from two frames, composed from injectable parts.

    Images are (B, 3, H, W) RGB with values in [0, 255] (float or uint8; converted to float32 and normalised to
    [-1, 1] inside). Any H and W: the inputs are padded (replicate) to multiples of 8 and the outputs cropped back.

    Args:
        config: the resolved configuration (kept for checkpoints; parts are built from it by the builders).
        feature_encoder: image -> matching features (B, feature_dim, H/8, W/8), run on both frames at once.
        context_encoder: image -> (B, hidden_dim + context_dim, H/8, W/8) for the GRU state and context.
        feature_attention: self-attention on the 1/8 matching features of each frame, before the correlation.
        corr_block: the correlation pyramid and its lookup.
        update_block: the recurrent update (motion encoder, ConvGRU, flow head, optional convex mask).
        subject_net: Psi, subject velocities from the world flow, frame features and masks.
    """

    def __init__(self, *, config: FlowConfig, feature_encoder: nn.Module, context_encoder: nn.Module,
                 feature_attention: nn.Module, corr_block: CorrPyramid, update_block: UpdateBlock,
                 subject_net: SubjectNet) -> None:
        super().__init__()
        self.config = config
        self.feature_encoder = feature_encoder
        self.context_encoder = context_encoder
        self.feature_attention = feature_attention
        self.corr_block = corr_block
        self.update_block = update_block
        self.subject_net = subject_net

    def encode_features(self, image: torch.Tensor) -> torch.Tensor:
        """Matching features of frames alone: (B, 3, H, W) RGB in [0, 255] -> (B, feature_dim, H/8, W/8) (H, W
        padded to multiples of 8), what :meth:`forward` takes as ``features1`` / ``features2``. A stream can encode
        a frame while the network still works on the previous pair (:func:`hmore.flow.inference.iter_flow`)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        return self.feature_attention(self.feature_encoder(_normalised(image)))

    def forward_features(self, image1: torch.Tensor, image2: torch.Tensor, init: torch.Tensor | None = None,
                         fmap1: torch.Tensor | None = None, fmap2: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised padded images -> (fmap1, fmap2, hidden state, context), all at 1/8 resolution.

        ``init`` (B, 2, H, W), the padded initial flow, goes to the context encoder when ``config.init_context``.
        ``fmap1``, ``fmap2``: an image's matching features when already known (the encoder and the attention work
        on each image alone: instance norm and attention within the image), so that image is not encoded again.
        """
        b = image1.shape[0]
        if fmap1 is None and fmap2 is None:
            fmaps = self.feature_attention(self.feature_encoder(torch.cat([image1, image2], dim=0)))  # (2B, C, h, w)
            fmap1, fmap2 = fmaps[:b], fmaps[b:]
        else:
            fmap1 = self.feature_attention(self.feature_encoder(image1)) if fmap1 is None else fmap1  # (B, C, h, w)
            fmap2 = self.feature_attention(self.feature_encoder(image2)) if fmap2 is None else fmap2
        if self.config.init_context:
            flow_in = image1.new_zeros(b, 2, *image1.shape[-2:]) if init is None else init / self.config.init_scale
            ctx = self.context_encoder(torch.cat([image1, flow_in], dim=1))  # (B, hidden + context, h, w)
        else:
            ctx = self.context_encoder(image1)  # (B, hidden + context, h, w)
        net, inp = torch.split(ctx, [self.config.hidden_dim, self.config.context_dim], dim=1)
        return fmap1, fmap2, torch.tanh(net), torch.relu(inp)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, *, masks: torch.Tensor | None = None,
                num_subjects: int | None = None, iters: int | None = None,
                flow_init: torch.Tensor | None = None, all_iterations: bool = True,
                features1: torch.Tensor | None = None, camera: torch.Tensor | None = None,
                features2: torch.Tensor | None = None) -> FlowOutput:
        """World flow, local flow and subject velocities from frame 1 to frame 2.

        Args:
            image1: (B, 3, H, W) frame t, values in [0, 255].
            image2: (B, 3, H, W) frame t+1, values in [0, 255].
            masks: (B, H, W) integer subject labels of frame t: 0 background, k = 1..P subject k. None: no subjects.
            num_subjects: P; default the largest label in ``masks`` (labels above P are treated as background).
            iters: refinement iterations (default ``config.iters``).
            flow_init: (B, 2, H, W) initial world flow in pixels (e.g. the previous pair's), or None for the
                config's ``init`` (zero, or DIS flow computed here).
            all_iterations: upsample every iteration's flow (training); False upsamples only the last one, so
                ``iterations`` holds one flow (inference: saves the upsampling of the others).
            features1: image1's matching features, the previous pair's ``features2`` when image1 is that pair's
                image2 (a video stream): image1 is then not encoded again (the same flow, ~20% less compute).
            camera: (B, 3, 3) homographies, pixel (x, y, 1) of image1 to image2, when image2 is the unstabilised
                frame t+1: the flow is then to image2 seen from image1's view (image2 warped by the homography)
                without warping it; the correlation is looked up at ``camera(p + flow)``. ``flow_init`` is then
                also relative to the stabilised view. A stream's image2 features serve the next pair as they are.
            features2: image2's matching features when already known (:meth:`encode_features`), so that it is
                not encoded here.

        Returns:
            A :class:`FlowOutput`; ``iterations`` holds ``iters`` flows (1 with ``all_iterations=False``).

        Raises:
            ValueError: on inputs of the wrong shape or type (the shapes are in the message).
        """
        iters = self.config.iters if iters is None else int(iters)
        _check_inputs(image1, image2, masks, flow_init, iters, num_subjects)
        b, _, h, w = image1.shape
        pad_h, pad_w = (-h) % 8, (-w) % 8
        want = (b, self.config.feature_dim, (h + pad_h) // 8, (w + pad_w) // 8)
        for name, given in (("features1", features1), ("features2", features2)):
            if given is not None and tuple(given.shape) != want:
                raise ValueError(f"{name} must be (B, C, H/8, W/8) = {want}, got {tuple(given.shape)}")
        to_image2 = None if camera is None else _coarse_homography(camera, b)  # (B, 3, 3) on the 1/8 grid

        x1, x2 = _normalised(image1), _normalised(image2)
        if flow_init is None and self.config.init == "dis":
            flow_init = dis_flow(image1, image2)
            if camera is not None:  # DIS gives the flow to image2 as it is: relative to the stabilised view instead
                flow_init = _apply_homography(torch.linalg.inv(camera.to(torch.float64)), coords_grid(
                    b, h, w, device=image1.device) + flow_init) - coords_grid(b, h, w, device=image1.device)
        init = None
        if flow_init is not None:
            init = flow_init.to(torch.float32)
            init = F.pad(init, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else init
        fmap1, fmap2, net, inp = self.forward_features(x1, x2, init, fmap1=features1, fmap2=features2)
        pyramid = self.corr_block.build(fmap1, fmap2)

        hc, wc = fmap1.shape[-2:]
        coords0 = coords_grid(b, hc, wc, device=x1.device)
        coords1 = coords0
        coarse_init = None  # (B, 2, H/8, W/8) the initial flow at 1/8 resolution, in 1/8 pixels
        if init is not None:
            coarse_init = F.avg_pool2d(init, 8) / 8.0
            coords1 = coords0 + coarse_init
        residual = self.config.init_residual and init is not None

        predictions = []
        flow_up = x1.new_zeros(b, 2, h + pad_h, w + pad_w)
        convex = self.config.upsample == "convex"
        for i in range(iters):
            coords1 = coords1.detach()
            corr = self.corr_block.lookup(pyramid, coords1 if to_image2 is None else _apply_homography(to_image2,
                                                                                                     coords1))
            flow = coords1 - coords0
            wanted = all_iterations or i == iters - 1
            net, delta, up_mask = self.update_block(net, inp, corr, flow, want_mask=wanted)
            coords1 = coords1 + delta.float()
            if not wanted:
                continue
            flow = coords1 - coords0
            if residual:  # full-resolution init + the upsampled change to it (both linear in the flow)
                flow = flow - coarse_init
            flow_up = upsample_convex8(flow, up_mask.float()) if convex else upsample_bilinear8(flow)
            if residual:
                flow_up = flow_up + init
            predictions.append(flow_up[:, :, :h, :w])
        iterations = torch.stack(predictions)  # (N, B, 2, H, W)
        world = iterations[-1]

        if masks is None:
            return FlowOutput(world=world, local=world, subject_velocity=world.new_zeros(b, 0, 2),
                              iterations=iterations, features2=fmap2)
        if num_subjects is None:
            num_subjects = int(masks.max()) if masks.numel() else 0
            num_subjects = max(num_subjects, 0)
        masks_pad = F.pad(masks, (0, pad_w, 0, pad_h)) if pad_h or pad_w else masks  # padding is background
        one_hot = subject_one_hot(masks_pad, num_subjects, flow_up.dtype)  # (B, P, Hp, Wp)
        psi_flow = flow_up.detach() if self.config.subject_detach_flow else flow_up
        velocity = self.subject_net(psi_flow, fmap1, one_hot)  # (B, P, 2)
        local = local_from_world(world, velocity, one_hot[:, :, :h, :w])
        return FlowOutput(world=world, local=local, subject_velocity=velocity, iterations=iterations,
                          features2=fmap2)


def _coarse_homography(camera: torch.Tensor, batch: int) -> torch.Tensor:
    """Pixel homographies (B, 3, 3) as maps of the 1/8 grid (cell c covers pixels 8c .. 8c+7, centre 8c + 3.5)."""
    if camera.shape != (batch, 3, 3):
        raise ValueError(f"camera must be (B, 3, 3) = ({batch}, 3, 3), got {tuple(camera.shape)}")
    hom = camera.to(torch.float64)
    to_pixels = hom.new_tensor([[8.0, 0.0, 3.5], [0.0, 8.0, 3.5], [0.0, 0.0, 1.0]])
    return torch.linalg.inv(to_pixels) @ hom @ to_pixels


def _apply_homography(hom: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Points (B, 2, h, w) (x, y) mapped by homographies (B, 3, 3)."""
    xy1 = torch.cat([coords.to(hom.dtype), torch.ones_like(coords[:, :1], dtype=hom.dtype)], dim=1)  # (B, 3, h, w)
    out = torch.einsum("bij,bjhw->bihw", hom, xy1)
    return (out[:, :2] / out[:, 2:]).to(coords.dtype)


def local_from_world(world: torch.Tensor, velocity: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    """Local flow (B, 2, H, W): ``world - v_s`` inside subject s's mask (one-hot (B, P, H, W)), 0 outside all masks."""
    one_hot = one_hot.to(world.dtype)
    v_map = torch.einsum("bphw,bpc->bchw", one_hot, velocity.to(world.dtype))  # (B, 2, H, W)
    inside = one_hot.sum(dim=1, keepdim=True).clamp(max=1.0)  # (B, 1, H, W)
    return (world - v_map) * inside


def build_hmore_flow_model(config: FlowConfig) -> HMoReFlow:
    """Assemble :class:`HMoReFlow` from its parts as ``config`` sizes them."""
    c = config
    corr = CorrPyramid(levels=c.corr_levels, radius=c.corr_radius)
    return HMoReFlow(
        config=c,
        feature_encoder=ResidualEncoder(dims=c.encoder_dims, out_dim=c.feature_dim, norm="instance"),
        context_encoder=ResidualEncoder(dims=c.encoder_dims, out_dim=c.hidden_dim + c.context_dim, norm="none",
                                        in_dim=5 if c.init_context else 3),
        feature_attention=FeatureSelfAttention(channels=c.feature_dim, dim=c.attn_dim, heads=c.attn_heads,
                                               blocks=c.attn_blocks, mlp_ratio=c.mlp_ratio),
        corr_block=corr,
        update_block=UpdateBlock(corr_dim=corr.out_channels, hidden_dim=c.hidden_dim, context_dim=c.context_dim,
                                 motion_dim=c.motion_dim, convex=c.upsample == "convex"),
        subject_net=SubjectNet(feature_dim=c.feature_dim, dim=c.subject_dim, heads=c.subject_heads,
                               layers=c.subject_layers, max_subjects=c.max_subjects, mlp_ratio=c.mlp_ratio),
    )


def _config(base: FlowConfig, overrides: dict[str, Any]) -> FlowConfig:
    """``base`` with ``overrides`` (strict: unknown keys and wrong types raise ConfigError)."""
    return from_dict(FlowConfig, {**to_dict(base), **overrides})


# Paper size: RAFT-small widths, two self-attention blocks of width 256 and Psi of width 256 (docs/hmore.md).
HMORE_FLOW = FlowConfig()
# Narrower and fewer iterations for 2 CPU cores (goal: >= 8 pairs/s at 192x256, docs/offline.md). Trained with 6
# iterations, run with 3: on 64 validation clips (trainer's held-out seeds, 4-30 fps) the shipped weights give in-mask
# EPE 0.9935 with 3 iterations and 0.9944 with 4 (leakage 0.155 vs 0.149), ~20% faster. It refines OpenCV
# DIS flow (warm start, DIS-guided context, full-resolution residual) with convex upsampling: the variant of the
# shipped weights (configs/flow_synth_cpu_d.yaml), which from-scratch CPU training budgets could not reach.
HMORE_FLOW_CPU = FlowConfig(
    encoder_dims=(24, 48, 64), feature_dim=64, hidden_dim=64, context_dim=32, corr_levels=4, corr_radius=3,
    motion_dim=64, attn_dim=64, attn_heads=4, attn_blocks=2, subject_dim=64, subject_heads=4, subject_layers=4,
    max_subjects=16, iters=3, upsample="convex", init="dis", init_context=True, init_residual=True,
)
# Tiny, for tests.
HMORE_FLOW_TEST = FlowConfig(
    encoder_dims=(8, 12, 16), feature_dim=16, hidden_dim=16, context_dim=16, corr_levels=3, corr_radius=2,
    motion_dim=16, attn_dim=16, attn_heads=2, attn_blocks=2, mlp_ratio=2.0, subject_dim=16, subject_heads=2,
    subject_layers=4, max_subjects=4, iters=3,
)


@register_model
def hmore_flow(**overrides: Any) -> HMoReFlow:
    """H-MoRe at the paper's size (5.57 M parameters in the paper)."""
    return build_hmore_flow_model(_config(HMORE_FLOW, overrides))


@register_model
def hmore_flow_cpu(**overrides: Any) -> HMoReFlow:
    """H-MoRe narrowed for CPUs: fewer channels, 6 iterations."""
    return build_hmore_flow_model(_config(HMORE_FLOW_CPU, overrides))


@register_model
def hmore_flow_test(**overrides: Any) -> HMoReFlow:
    """A tiny H-MoRe for tests."""
    return build_hmore_flow_model(_config(HMORE_FLOW_TEST, overrides))
