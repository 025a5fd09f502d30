"""HuMoCon's language path: a local Hugging Face causal language model, instruction-tuned with LoRA (``peft``),
reading the motion as concept vectors projected into its embedding space (docs/humocon.md: projection + LoRA
rank 8).

Optional: needs ``transformers`` and ``peft`` (``pip install 'hmore[llm]'``); nothing is downloaded: the checkpoint
is a local folder (``from_pretrained(path, local_files_only=True)``). No pretrained language model can be had
here, so hmore ships no language weights; the path is exercised with a tiny randomly initialised model in the tests.

Prompt: ``[concept vectors of the clip, one per segment, projected] "question: <q> answer:"``; the target is
``" <answer>"`` + end-of-sequence, and only its tokens carry loss.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hmore.errors import InputError, UsageError

log = logging.getLogger(__name__)


def _require() -> tuple:
    try:
        import peft
        import transformers
    except ImportError as exc:
        raise UsageError(f"the language-model path needs transformers and peft (pip install 'hmore[llm]'): {exc}"
                         ) from None
    return transformers, peft


def load_causal_lm(path: str | Path, *, lora_rank: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.05,
                   target_modules: Sequence[str] | None = None) -> tuple[nn.Module, object]:
    """A local causal LM with LoRA adapters (its own weights frozen) and its tokenizer.

    Args:
        path: a folder written by ``save_pretrained`` (model and tokenizer).
        lora_rank, lora_alpha, lora_dropout: the adapters (HuMoCon: rank 8).
        target_modules: module names to adapt (None: peft's default for the architecture).
    """
    transformers, peft = _require()
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"language model folder not found: {path}")
    try:
        lm = transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load a causal language model from {path}: {exc}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cfg = peft.LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout, task_type="CAUSAL_LM",
                          target_modules=list(target_modules) if target_modules else None)
    return peft.get_peft_model(lm, cfg), tok


class ConceptLLM(nn.Module):
    """Concept vectors -> a trainable projection -> soft prompt of a LoRA-adapted causal LM.

    Args:
        lm: the (peft-wrapped) causal LM.
        tokenizer: its tokenizer.
        codebook: (K, D) concept vectors (kept as a buffer; a concept id indexes it).
    """

    def __init__(self, *, lm: nn.Module, tokenizer: object, codebook: torch.Tensor) -> None:
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.register_buffer("codebook", codebook.detach().float().clone())
        hidden = lm.get_input_embeddings().weight.shape[1]
        self.project = nn.Linear(codebook.shape[1], hidden)

    def _soft_prompt(self, concepts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids (-1 pads) -> (B, L, hidden) embeddings and (B, L) mask."""
        valid = concepts >= 0
        vec = self.codebook[concepts.clamp_min(0)]  # (B, L, D)
        return self.project(vec) * valid[..., None], valid

    def _batch(self, concepts: torch.Tensor, questions: Sequence[str], answers: Sequence[str] | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        tok = self.tokenizer
        emb = self.lm.get_input_embeddings()
        soft, soft_mask = self._soft_prompt(concepts)
        rows, masks, labels = [], [], []
        eos = tok.eos_token_id
        for i, q in enumerate(questions):
            prompt = tok(f"question: {q} answer:", add_special_tokens=False)["input_ids"]
            target = [] if answers is None else tok(f" {answers[i]}", add_special_tokens=False)["input_ids"] + [eos]
            ids = torch.tensor(prompt + target, dtype=torch.long, device=concepts.device)
            rows.append(torch.cat([soft[i], emb(ids)], dim=0))
            masks.append(torch.cat([soft_mask[i], torch.ones(len(ids), dtype=torch.bool, device=concepts.device)]))
            labels.append(torch.tensor([-100] * (soft.shape[1] + len(prompt)) + target, dtype=torch.long,
                                       device=concepts.device))
        n = max(len(r) for r in rows)
        # left padding, so that generation continues right after every prompt
        x = torch.stack([torch.cat([r.new_zeros(n - len(r), r.shape[1]), r]) for r in rows])
        m = torch.stack([torch.cat([mk.new_zeros(n - len(mk)), mk]) for mk in masks])
        y = torch.stack([torch.cat([lb.new_full((n - len(lb),), -100), lb]) for lb in labels]) if answers else None
        return x, m.long(), y

    def loss(self, concepts: torch.Tensor, questions: Sequence[str], answers: Sequence[str]) -> torch.Tensor:
        """Next-token cross-entropy on the answer tokens."""
        x, m, y = self._batch(concepts, questions, answers)
        return self.lm(inputs_embeds=x, attention_mask=m, labels=y).loss

    @torch.no_grad()
    def answer(self, concepts: torch.Tensor, questions: Sequence[str], *, max_new_tokens: int = 6) -> list[str]:
        """Greedy answers (the text before the end-of-sequence token)."""
        x, m, _ = self._batch(concepts, questions, None)
        tok = self.tokenizer
        out: list[list[int]] = [[] for _ in questions]
        done = np.zeros(len(questions), bool)
        emb = self.lm.get_input_embeddings()
        for _ in range(max_new_tokens):
            logits = self.lm(inputs_embeds=x, attention_mask=m).logits[:, -1]
            nxt = logits.argmax(dim=-1)
            for i, t in enumerate(nxt.tolist()):
                if not done[i]:
                    if t == tok.eos_token_id:
                        done[i] = True
                    else:
                        out[i].append(t)
            if done.all():
                break
            x = torch.cat([x, emb(nxt)[:, None]], dim=1)
            m = torch.cat([m, m.new_ones(len(questions), 1)], dim=1)
        return [tok.decode(o, skip_special_tokens=True).strip() for o in out]


def fit_concept_llm(model: ConceptLLM, concepts: np.ndarray, questions: Sequence[str], answers: Sequence[str], *,
                    steps: int, batch_size: int = 8, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Instruction-tune the projection and the LoRA adapters (AdamW) on QA examples; returns the losses."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for _ in range(steps):
        idx = rng.integers(0, len(questions), size=min(batch_size, len(questions)))
        loss = model.loss(torch.from_numpy(concepts[idx]), [questions[i] for i in idx], [answers[i] for i in idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


__all__ = ["ConceptLLM", "fit_concept_llm", "load_causal_lm"]
