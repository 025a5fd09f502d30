"""Score-level ensembles of action classifiers: the multi-stream practice of 2s-AGCN (Shi et al., CVPR 2019) and
CTR-GCN (Chen et al., ICCV 2021), where separately trained models (joints, bones, joint motion, ...) each give softmax
scores and the weighted sum of the scores is the prediction.

:class:`ActionEnsemble` is itself a classifier: its ``forward`` returns ``log(sum_i w_i softmax(z_i) / sum_i w_i)``,
the log of the fused probabilities, so ``softmax`` of its output is the fused score and ``argmax`` the fused class,
and everything that takes an action model (``hmore classify``, ``hmore bench action``) takes an ensemble. A member
may read fewer joints than the ensemble's input through a fixed joint-mixing matrix (``adapters``; e.g. Kinect v1's
20 joints -> H36M-17, :func:`hmore.data.nw_ucla.h36m17_matrix`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def fuse_scores(logits: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Per-member (N, classes) logits -> (N, classes) fused probabilities ``sum_i w_i softmax(z_i) / sum_i w_i``."""
    if not logits or len(logits) != len(weights):
        raise ValueError(f"need one weight per member: {len(logits)} logits, {len(weights)} weights")
    w = torch.as_tensor(list(weights), dtype=torch.float32)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"ensemble weights must be >= 0 with a positive sum, got {list(weights)}")
    prob = torch.stack([z.float().softmax(dim=-1) for z in logits])  # (members, N, classes)
    return torch.einsum("m,mnk->nk", w / w.sum(), prob)


class ActionEnsemble(nn.Module):
    """Weighted sum of the members' softmax scores.

    Args:
        members: action classifiers, each (N, M, T, J_i, C) -> (N, classes), the same classes.
        weights: one non-negative fusion weight per member.
        adapters: per member, ``None`` (it reads the input's joints) or a (J_i, J) joint-mixing matrix applied to the
            input's joint axis first.
    """

    def __init__(self, *, members: Sequence[nn.Module], weights: Sequence[float],
                 adapters: Sequence[torch.Tensor | None] | None = None) -> None:
        super().__init__()
        adapters = list(adapters) if adapters is not None else [None] * len(members)
        if not members or len(weights) != len(members) or len(adapters) != len(members):
            raise ValueError(f"{len(members)} members need as many weights ({len(weights)}) and adapters "
                             f"({len(adapters)})")
        fuse_scores([torch.zeros(1, 1)] * len(members), weights)  # checks the weights
        self.members = nn.ModuleList(members)
        self.weights = tuple(float(w) for w in weights)
        self._adapted = tuple(a is not None for a in adapters)
        for i, a in enumerate(adapters):
            if a is not None:
                self.register_buffer(f"adapter{i}", torch.as_tensor(a, dtype=torch.float32), persistent=False)

    def member_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, M, T, J, C) -> each member's (N, classes) logits."""
        out = []
        for i, m in enumerate(self.members):
            xi = torch.einsum("dj,nmtjc->nmtdc", getattr(self, f"adapter{i}"), x) if self._adapted[i] else x
            out.append(m(xi))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, M, T, J, C) -> (N, classes) log fused probabilities (softmax of it = the fused scores)."""
        return fuse_scores(self.member_logits(x), self.weights).clamp_min(1e-12).log()


__all__ = ["ActionEnsemble", "fuse_scores"]
