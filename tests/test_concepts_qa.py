"""Motion QA: BABEL-QA reader, generated questions, tokenizer, the answerer (hmore.concepts.qa, models.concepts.qa)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hmore.concepts import qa
from hmore.concepts.motion import MODEL_FPS, SkeletonSequence, procedural_sequences, rot_y
from hmore.errors import InputError
from hmore.registry import create_model


@pytest.fixture(scope="module")
def seqs() -> list[SkeletonSequence]:
    return procedural_sequences(identities=[0, 1], split="train", num_frames=45,
                                actions=["walk", "wave_one", "wave_both", "turn"])


def test_measurements_match_the_procedural_actions(seqs):
    by = {(s.action, s.subject): s.joints for s in seqs}
    for ident in ("id0", "id1"):
        assert qa.moving_part(by[("walk", ident)]) == "legs"
        assert qa.moving_part(by[("wave_one", ident)]) == "right arm"  # the generator waves the right hand
        assert qa.used_side(by[("wave_one", ident)]) == ("hand", "right")
        assert qa.moving_part(by[("wave_both", ident)]) == "both arms"
        assert qa.used_side(by[("wave_both", ident)]) is None


def test_mirrored_motion_swaps_sides(seqs):
    j = next(s.joints for s in seqs if s.action == "wave_one")
    from hmore.skeleton import H36M17

    mirrored = (j * np.array([-1.0, 1.0, 1.0]))[:, H36M17.flip_index]
    assert qa.used_side(mirrored) == ("hand", "left")


def test_heading_change_sign():
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import generate_motion

    j = generate_motion("stand", sample_identity(0), num_frames=10, fps=MODEL_FPS).joints
    turning = np.stack([p @ rot_y(a).T for p, a in zip(j, np.linspace(0, 1.5, 10))])  # counter-clockwise from above
    assert qa.heading_change(turning) == pytest.approx(1.5, abs=1e-6)
    assert qa.used_side(turning) == ("turn", "left")


def test_count_repetitions_of_a_sine():
    t = np.arange(68) / MODEL_FPS
    j = np.zeros((68, 17, 3))
    j[:, 16, 0] = 0.3 * ((1 - np.cos(2 * np.pi * t)) / 2) ** 2  # right wrist: 4 bumps (at 0.5, 1.5, 2.5, 3.5 s)
    assert qa.count_repetitions(j) == 4
    j[:, 16, 0] *= -1  # the main excursion's side is counted, whatever its sign
    assert qa.count_repetitions(j) == 4
    assert qa.count_answer(4) == "4" and qa.count_answer(7) == "5 or more"
    assert qa.count_repetitions(np.zeros((60, 17, 3))) is None


def test_generate_qa_types_and_splits(seqs):
    test = procedural_sequences(identities=[9], split="test", num_frames=45, actions=["walk", "wave_one"])
    items = qa.generate_qa(seqs + test, seed=0)
    types = {i.query_type for i in items}
    assert {"action", "body_part", "left_right", "before_after"} <= types
    for it in items:
        assert it.joints is not None and it.joints.shape[1:] == (17, 3)
        if it.query_type == "left_right":  # both options are named, never only the answer
            assert ("left" in it.question) == ("right" in it.question)
        elif it.query_type != "before_after":
            assert it.answer not in it.question
    ba = [i for i in items if i.query_type == "before_after"]
    assert ba and all(i.relation_type in ("before", "after") for i in ba)
    for i in ba:  # composites never mix splits; the segment is the answer's part
        assert i.split in ("train", "test") and i.segment[1] <= len(i.joints)
    assert {i.split for i in items if i.motion_id.startswith("procedural:walk/id9")} == {"test"}
    again = qa.generate_qa(seqs + test, seed=0)
    assert [i.question for i in again] == [i.question for i in items]


def test_concatenate_keeps_ground_position():
    a = np.zeros((3, 17, 3))
    a[:, :, 0] = np.arange(3)[:, None]
    b = np.full((2, 17, 3), 5.0)
    c = qa.concatenate(a, b)
    assert c.shape == (5, 17, 3)
    np.testing.assert_allclose(c[3, 0], [2.0, 5.0, 0.0])


def test_tokenizer():
    vocab = qa.build_vocab(["What is the person doing?", "what hand"])
    assert vocab[:2] == ("<pad>", "<unk>") and "what" in vocab and "?" not in vocab
    ids = qa.encode_question("what is THIS", vocab, max_words=5)
    assert ids.tolist() == [vocab.index("what"), vocab.index("is"), 1, 0, 0]
    tok = qa.segment_tokens(np.arange(20), 4, max_tokens=8)
    assert tok.tolist() == [0, 4, 8, 12, 16, -1, -1, -1]
    assert len(qa.segment_tokens(np.arange(400), 4, max_tokens=8)) == 8


def test_read_babel_qa(tmp_path):
    recs = [{"babel_id": "m1", "question": "what does the person do after walking", "answer": "jump",
             "query_type": "action", "relation_type": "after", "question_id": 7, "program": [], "segment": [3, 9]},
            {"babel_id": "m2", "question": "which body part", "answer": "left arm", "query_type": "body_part"}]
    (tmp_path / "questions.json").write_text(json.dumps(recs))
    motions = tmp_path / "motions"
    motions.mkdir()
    np.save(motions / "m1.npy", np.random.default_rng(0).normal(size=(30, 22, 3)))
    np.save(motions / "m2.npy", np.zeros((6, 17, 3)))
    items = qa.read_babel_qa(tmp_path / "questions.json", motions=motions)
    assert [i.answer for i in items] == ["jump", "left arm"]
    assert items[0].segment == (3, 9) and items[0].relation_type == "after" and items[0].question_id == "7"
    assert items[0].joints.shape == (15, 17, 3)  # 30 Hz -> 15 Hz, SMPL-22 -> H36M-17
    assert items[1].relation_type == "no_relation"
    (tmp_path / "bad.json").write_text(json.dumps([{"question": "q"}]))
    with pytest.raises(InputError, match="lacks"):
        qa.read_babel_qa(tmp_path / "bad.json")
    with pytest.raises(InputError, match="not found"):
        qa.read_babel_qa(tmp_path / "questions.json", motions=tmp_path)


def test_answerer_forward_and_question_only():
    torch.manual_seed(0)
    m = create_model("concept_qa_test").eval()
    concepts = torch.tensor([[0, 3, -1], [1, 1, 2]])
    words = torch.tensor([[2, 3, 0], [2, 0, 0]])
    assert m(concepts, words).shape == (2, 2)
    torch.manual_seed(0)
    q_only = create_model("concept_qa_test", use_concepts=False).eval()
    a = q_only(concepts, words)
    b = q_only(torch.tensor([[7, 7, 7], [5, 5, 5]]), words)
    torch.testing.assert_close(a, b)  # the question-only baseline never sees the concepts
    with pytest.raises(ValueError):
        create_model("concept_qa_test", vocab=["what"])
