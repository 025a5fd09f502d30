"""Baseline 2D-to-3D lifters with the DSTformer's interface ((B, F, J, 3) -> (B, F, J, 3)):

* :class:`MLPLifter`: each frame on its own (Martinez et al. 2017 style: residual Linear-BN-ReLU blocks).
* :class:`TCNLifter`: dilated temporal convolutions over the whole sequence (VideoPose3D, Pavllo et al. 2019), with
  replicate padding so that every input frame gets an output (sequence to sequence).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from hmore.models.motion.input_norm import check_input_norm, normalize_input
from hmore.registry import register_model


class _ResBlock(nn.Module):
    def __init__(self, *, channels: int, dropout: float, conv: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv, nn.BatchNorm1d(channels), nn.ReLU(), nn.Dropout(dropout),
            nn.Conv1d(channels, channels, 1), nn.BatchNorm1d(channels), nn.ReLU(), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MLPLifter(nn.Module):
    """Per-frame lifter: flatten the joints of a frame, residual MLP blocks, 3D joints out.

    Args:
        num_joints: J.
        width: hidden width.
        blocks: residual blocks.
        dropout: dropout inside the blocks.
        input_norm: see ``hmore.models.motion.input_norm``.
    """

    #: each output frame depends on its own input frame only (evaluation may run it on a subset of the frames).
    per_frame = True

    def __init__(self, *, num_joints: int = 17, width: int = 512, blocks: int = 2, dropout: float = 0.1,
                 input_norm: str = "root_scale") -> None:
        super().__init__()
        self.num_joints = num_joints
        self.input_norm = check_input_norm(input_norm)
        self.inp = nn.Conv1d(num_joints * 3, width, 1)  # a per-frame Linear, written as a 1x1 conv over time
        self.blocks = nn.Sequential(
            *[_ResBlock(channels=width, dropout=dropout, conv=nn.Conv1d(width, width, 1)) for _ in range(blocks)]
        )
        self.out = nn.Conv1d(width, num_joints * 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, J, 3) -> (B, F, J, 3)."""
        if x.ndim != 4 or x.shape[2] != self.num_joints or x.shape[3] != 3:
            raise ValueError(f"MLPLifter expects (B, F, {self.num_joints}, 3), got {tuple(x.shape)}")
        h = rearrange(normalize_input(x, self.input_norm), "b f j c -> b (j c) f")
        y = self.out(self.blocks(self.inp(h)))
        return rearrange(y, "b (j c) f -> b f j c", j=self.num_joints)


class TCNLifter(nn.Module):
    """VideoPose3D-style temporal convolutions: kernel 3 with dilations 1, 3, 9, ... (receptive field 3^(n+1)).

    Args:
        num_joints: J.
        width: channels.
        dilations: one residual block per dilation.
        dropout: dropout inside the blocks.
        input_norm: see ``hmore.models.motion.input_norm``.
    """

    def __init__(self, *, num_joints: int = 17, width: int = 256, dilations: tuple[int, ...] = (3, 9),
                 dropout: float = 0.1, input_norm: str = "root_scale") -> None:
        super().__init__()
        self.num_joints = num_joints
        self.input_norm = check_input_norm(input_norm)
        self.inp = nn.Sequential(
            nn.Conv1d(num_joints * 3, width, 3, padding=1, padding_mode="replicate"),
            nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
        )
        self.blocks = nn.Sequential(*[
            _ResBlock(channels=width, dropout=dropout,
                      conv=nn.Conv1d(width, width, 3, dilation=d, padding=d, padding_mode="replicate"))
            for d in dilations
        ])
        self.out = nn.Conv1d(width, num_joints * 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, J, 3) -> (B, F, J, 3)."""
        if x.ndim != 4 or x.shape[2] != self.num_joints or x.shape[3] != 3:
            raise ValueError(f"TCNLifter expects (B, F, {self.num_joints}, 3), got {tuple(x.shape)}")
        h = rearrange(normalize_input(x, self.input_norm), "b f j c -> b (j c) f")
        y = self.out(self.blocks(self.inp(h)))
        return rearrange(y, "b (j c) f -> b f j c", j=self.num_joints)


@register_model
def mlp_lifter(**overrides) -> MLPLifter:
    """Per-frame MLP lifter baseline (width 512, 2 residual blocks)."""
    return MLPLifter(**overrides)


@register_model
def tcn_lifter(**overrides) -> TCNLifter:
    """Temporal-convolution lifter baseline (width 256, receptive field 27 frames)."""
    return TCNLifter(**overrides)


@register_model
def mlp_lifter_test(**overrides) -> MLPLifter:
    """Tiny MLP lifter for tests."""
    return MLPLifter(**{"width": 16, "blocks": 1, **overrides})


@register_model
def tcn_lifter_test(**overrides) -> TCNLifter:
    """Tiny TCN lifter for tests."""
    return TCNLifter(**{"width": 16, "dilations": (3,), **overrides})
