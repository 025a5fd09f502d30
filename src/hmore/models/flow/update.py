"""The recurrent update operator (RAFT-small style): motion encoder, ConvGRU, flow head, optional upsampling mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MotionEncoder(nn.Module):
    """Correlation features and the current flow -> motion features (B, out_dim + 2, h, w) (flow appended)."""

    # RAFT-small: 96 correlation channels, 64 and 32 flow channels for 80 outputs; other widths scale alike.

    def __init__(self, *, corr_dim: int, out_dim: int) -> None:
        super().__init__()
        c_mid = max(out_dim * 6 // 5, 8)
        f1, f2 = max(out_dim * 4 // 5, 8), max(out_dim * 2 // 5, 4)
        self.conv_corr = nn.Conv2d(corr_dim, c_mid, 1)
        self.conv_flow1 = nn.Conv2d(2, f1, 7, padding=3)
        self.conv_flow2 = nn.Conv2d(f1, f2, 3, padding=1)
        self.conv = nn.Conv2d(c_mid + f2, out_dim, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        c = F.relu(self.conv_corr(corr))
        f = F.relu(self.conv_flow2(F.relu(self.conv_flow1(flow))))
        m = F.relu(self.conv(torch.cat([c, f], dim=1)))
        return torch.cat([m, flow], dim=1)  # (B, out_dim + 2, h, w)


class ConvGRU(nn.Module):
    """Convolutional GRU cell with 3x3 gates: h' = (1 - z) h + z tanh(W_q [r h, x])."""

    def __init__(self, *, hidden_dim: int, input_dim: int) -> None:
        super().__init__()
        self.convz = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convr = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convq = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz(hx))
        r = torch.sigmoid(self.convr(hx))
        q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


class FlowHead(nn.Module):
    """Hidden state -> flow update (B, 2, h, w) in 1/8-grid pixels."""

    def __init__(self, *, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class UpdateBlock(nn.Module):
    """One refinement step: (hidden, context, correlation, flow) -> (hidden', delta flow, upsampling mask or None).

    Args:
        corr_dim: channels of the correlation lookup.
        hidden_dim: GRU hidden channels.
        context_dim: context feature channels.
        motion_dim: motion encoder output channels (the 2 flow channels come on top).
        convex: predict a (B, 9*64, h, w) convex-upsampling mask as well (RAFT); None otherwise.
    """

    def __init__(self, *, corr_dim: int, hidden_dim: int, context_dim: int, motion_dim: int,
                 convex: bool = False) -> None:
        super().__init__()
        self.encoder = MotionEncoder(corr_dim=corr_dim, out_dim=motion_dim)
        self.gru = ConvGRU(hidden_dim=hidden_dim, input_dim=motion_dim + 2 + context_dim)
        self.head = FlowHead(in_dim=hidden_dim, hidden=hidden_dim * 4 // 3)
        self.mask = (
            nn.Sequential(nn.Conv2d(hidden_dim, 2 * hidden_dim, 3, padding=1), nn.ReLU(inplace=True),
                          nn.Conv2d(2 * hidden_dim, 64 * 9, 1))
            if convex else None
        )

    def forward(self, net: torch.Tensor, inp: torch.Tensor, corr: torch.Tensor, flow: torch.Tensor, *,
                want_mask: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``want_mask=False`` skips the upsampling mask (None) for iterations whose flow is not upsampled."""
        motion = self.encoder(flow, corr)
        net = self.gru(net, torch.cat([inp, motion], dim=1))
        delta = self.head(net)
        # RAFT scales the mask logits by 0.25
        mask = None if self.mask is None or not want_mask else 0.25 * self.mask(net)
        return net, delta, mask


def upsample_bilinear8(flow: torch.Tensor) -> torch.Tensor:
    """(B, 2, h, w) flow in 1/8-grid pixels -> (B, 2, 8h, 8w) in full-resolution pixels."""
    return 8.0 * F.interpolate(flow, scale_factor=8, mode="bilinear", align_corners=True)


def upsample_convex8(flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each full-resolution pixel is a softmax-weighted convex combination of its 3x3 coarse neighbours (RAFT)."""
    b, _, h, w = flow.shape
    weights = torch.softmax(mask.reshape(b, 1, 9, 8, 8, h, w), dim=2)  # (B, 1, 9, 8, 8, h, w)
    neighbours = F.unfold(8.0 * flow, kernel_size=3, padding=1).reshape(b, 2, 9, 1, 1, h, w)
    up = (weights * neighbours).sum(dim=2)  # (B, 2, 8, 8, h, w): sub-pixel rows/cols, coarse rows/cols
    return up.permute(0, 1, 4, 2, 5, 3).reshape(b, 2, 8 * h, 8 * w)
