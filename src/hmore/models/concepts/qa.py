"""A small motion question answerer over concept tokens and the question's words, trained from scratch.

Input: the clip's concept ids, one per segment in time order (B, Lc; -1 pads), and the question's word ids (B, Lq;
0 pads). The two sequences get their own embeddings, positions and a type embedding, go through one transformer
encoder with a [CLS] token, and [CLS] is classified over the answer vocabulary (answers are single words or short
phrases, as in BABEL-QA). With ``use_concepts=False`` the concept tokens are left out: the question-only baseline
that measures how much the answer leaks from the question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hmore.models.concepts.model import transformer
from hmore.registry import register_model

PAD_WORD, UNK_WORD = "<pad>", "<unk>"


@dataclass(frozen=True)
class ConceptQAConfig:
    """Attributes:
        num_concepts: concept codebook size.
        vocab: question words (index 0 must be ``<pad>``, 1 ``<unk>``).
        answers: answer vocabulary.
        dim, depth, heads: the transformer.
        max_concepts: longest concept sequence (longer inputs keep their first ``max_concepts``).
        max_words: longest question.
        use_concepts: False for the question-only baseline.
        dropout: transformer dropout.
    """

    num_concepts: int = 64
    vocab: tuple[str, ...] = (PAD_WORD, UNK_WORD)
    answers: tuple[str, ...] = ("",)
    dim: int = 64
    depth: int = 2
    heads: int = 4
    max_concepts: int = 64
    max_words: int = 24
    use_concepts: bool = True
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if tuple(self.vocab[:2]) != (PAD_WORD, UNK_WORD):
            raise ValueError(f"vocab must start with {PAD_WORD!r}, {UNK_WORD!r}, got {list(self.vocab[:2])}")
        if not self.answers:
            raise ValueError("answers must not be empty")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")


class ConceptQA(nn.Module):
    """See the module docstring.

    Args:
        config: :class:`ConceptQAConfig`.
    """

    def __init__(self, *, config: ConceptQAConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.concept = nn.Embedding(c.num_concepts + 1, c.dim)  # the last row: padding
        self.word = nn.Embedding(len(c.vocab), c.dim, padding_idx=0)
        self.concept_pos = nn.Parameter(torch.zeros(1, c.max_concepts, c.dim))
        self.word_pos = nn.Parameter(torch.zeros(1, c.max_words, c.dim))
        self.kind = nn.Embedding(3, c.dim)  # 0 [CLS], 1 concept, 2 word
        self.cls = nn.Parameter(torch.zeros(1, 1, c.dim))
        for p in (self.concept_pos, self.word_pos, self.cls):
            nn.init.trunc_normal_(p, std=0.02)
        self.blocks = transformer(c.dim, c.depth, c.heads, 2.0, c.dropout)
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, len(c.answers))

    def forward(self, concepts: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """(B, Lc) concept ids (-1 pads) and (B, Lq) word ids (0 pads) -> (B, answers) logits."""
        c = self.config
        if concepts.ndim != 2 or words.ndim != 2 or concepts.shape[0] != words.shape[0]:
            raise ValueError(f"expected (B, Lc) concepts and (B, Lq) words, got {tuple(concepts.shape)}, "
                             f"{tuple(words.shape)}")
        b = words.shape[0]
        words = words[:, : c.max_words]
        parts = [self.cls.expand(b, -1, -1) + self.kind.weight[0]]
        pads = [torch.zeros(b, 1, dtype=torch.bool, device=words.device)]
        if c.use_concepts:
            concepts = concepts[:, : c.max_concepts]
            pad_c = concepts < 0
            ids = torch.where(pad_c, torch.full_like(concepts, c.num_concepts), concepts)
            parts.append(self.concept(ids) + self.concept_pos[:, : ids.shape[1]] + self.kind.weight[1])
            pads.append(pad_c)
        parts.append(self.word(words) + self.word_pos[:, : words.shape[1]] + self.kind.weight[2])
        pads.append(words == 0)
        h = self.blocks(torch.cat(parts, dim=1), src_key_padding_mask=torch.cat(pads, dim=1))
        return self.head(self.norm(h[:, 0]))


def _build(defaults: dict, overrides: dict[str, Any]) -> ConceptQA:
    kw = {**defaults, **overrides}
    for key in ("vocab", "answers"):
        if key in kw:
            kw[key] = tuple(kw[key])
    return ConceptQA(config=ConceptQAConfig(**kw))


@register_model
def concept_qa_cpu(**overrides: Any) -> ConceptQA:
    """The shipped answerer size: dim 64, 2 layers (pass ``vocab``, ``answers`` and ``num_concepts``)."""
    return _build(dict(dim=64, depth=2, heads=4), overrides)


@register_model
def concept_qa_test(**overrides: Any) -> ConceptQA:
    """A tiny answerer for tests."""
    return _build(dict(dim=16, depth=1, heads=2, num_concepts=8, vocab=(PAD_WORD, UNK_WORD, "what", "do"),
                       answers=("walk", "run"), max_concepts=16, max_words=8), overrides)


__all__ = ["ConceptQA", "ConceptQAConfig", "PAD_WORD", "UNK_WORD", "concept_qa_cpu", "concept_qa_test"]
