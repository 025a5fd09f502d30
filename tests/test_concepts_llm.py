"""The language-model path (hmore.concepts.llm) with a tiny randomly initialised Llama and a word-level tokenizer
written to a temporary folder (no pretrained model exists here). Skipped when transformers/peft are absent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

pytestmark = pytest.mark.slow  # importing transformers takes seconds


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = "question answer what is the person doing walk run which hand left right".split()
    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", "</s>", ":", *words])}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64, bos_token_id=2,
                      eos_token_id=2, pad_token_id=1)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_lora_concept_llm_learns_to_answer(tiny_lm):
    from hmore.concepts.llm import ConceptLLM, fit_concept_llm, load_causal_lm

    torch.manual_seed(0)
    lm, tok = load_causal_lm(tiny_lm, lora_rank=8)
    model = ConceptLLM(lm=lm, tokenizer=tok, codebook=torch.randn(8, 16))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("project.") for n in trainable)  # the LM stays frozen
    frozen_before = lm.get_input_embeddings().weight.detach().clone()
    concepts = np.array([[0, 1, 2, -1], [3, 4, 5, 6]] * 4)
    questions = ["what is the person doing"] * 8
    answers = ["walk", "run"] * 4
    losses = fit_concept_llm(model, concepts, questions, answers, steps=40, lr=3e-2, seed=0)
    assert losses[-1] < losses[0]
    assert model.answer(torch.from_numpy(concepts[:2]), questions[:2]) == ["walk", "run"]  # read from the concepts
    torch.testing.assert_close(lm.get_input_embeddings().weight, frozen_before)


def test_missing_folder_is_an_input_error(tmp_path):
    from hmore.concepts.llm import load_causal_lm
    from hmore.errors import InputError

    with pytest.raises(InputError, match="not found"):
        load_causal_lm(tmp_path / "none")
    with pytest.raises(InputError, match="cannot load"):
        load_causal_lm(tmp_path)
