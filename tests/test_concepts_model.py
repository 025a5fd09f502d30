"""Concept model, its losses and metrics (hmore.models.concepts, hmore.losses.concepts, hmore.metrics.concepts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hmore.losses.concepts import actionable_loss, clustering_loss, discriminative_loss, info_nce, masked_mse
from hmore.metrics.concepts import contingency, homogeneity_completeness, nmi, purity, recall_at_k
from hmore.models.concepts.model import ConceptModelConfig, segment_pool, segment_valid
from hmore.registry import create_model, list_models


def _model(**kw):
    torch.manual_seed(0)
    return create_model("concepts_test", **kw)


def _batch(b: int = 3, t: int = 8):
    g = torch.Generator().manual_seed(1)
    states = torch.randn(b, t, 55, generator=g)
    valid = torch.ones(b, t, dtype=torch.bool)
    return states, valid


@pytest.mark.parametrize("name", ["concepts_test", "concept_qa_test"])
def test_registered(name):
    assert name in list_models("concept*")


def test_motion_branch_shapes_and_vq_decode():
    m = _model().eval()
    states, valid = _batch()
    out = m.motion(states, valid)
    assert out.latent.shape == (3, 2, 16) and out.quantized.shape == (3, 2, 16) and out.ids.shape == (3, 2)
    assert out.ids.dtype == torch.long and torch.isfinite(out.commit_loss)
    # decode(indices) gives the quantised output (vector-quantize's contract), and the model's own eval-time
    # nearest-code search agrees with the library's
    torch.testing.assert_close(m.motion_vq.get_output_from_indices(out.ids), out.quantized)
    torch.testing.assert_close(m.codebook()[out.ids], out.quantized)
    lib_q, lib_ids, _ = m.motion_vq(out.latent, mask=out.token_valid)
    assert torch.equal(lib_ids, out.ids)
    torch.testing.assert_close(lib_q, out.quantized)
    assert m.decode_motion(out.quantized).shape == (3, 8, 55)


class _FixedLatent(torch.nn.Module):
    """A stand-in motion encoder that returns the same (B, N, dim) tokens whatever the states."""

    def __init__(self, latent: torch.Tensor) -> None:
        super().__init__()
        self.latent = latent

    def forward(self, states: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.latent


@pytest.mark.parametrize(("cosine", "expect"), [(True, [0, 2]), (False, [1, 2])])
def test_cosine_or_euclidean_codebook(cosine, expect):
    # codes c0 = e0, c1 = 10 e0 + 3 e1, c2 = -e0, c3 = 30 (e0 + e2) (c1, c3 unit-norm when cosine), c4..c7 = -e2;
    # tokens z0 = 9 e0, z1 = -4 e0. Cosine: z0 -> c0 (cos 1 vs 10 / sqrt(109) = 0.96 and 0.71); Euclidean: z0 -> c1
    # (distance sqrt(10) vs 8 to c0, 36.6 to c3; the largest dot product would be c3). z1 -> c2 both ways (cos 1;
    # distance 3 vs 5 to c0 and sqrt(17) to c4..c7).
    m = _model(cosine_codebook=cosine)
    assert m.motion_vq._codebook.use_cosine_sim is cosine
    e = torch.eye(16)
    c1, c3 = 10 * e[0] + 3 * e[1], 30 * (e[0] + e[2])
    if cosine:
        c1, c3 = c1 / c1.norm(), c3 / c3.norm()
    codes = torch.stack([e[0], c1, -e[0], c3] + [-e[2]] * 4)
    m.motion_vq._codebook.embed.copy_(codes[None])
    m.motion_encoder = _FixedLatent(torch.stack([9 * e[0], -4 * e[0]])[None])
    states, valid = _batch(b=1)
    assert m.eval().motion(states, valid).ids.tolist() == [expect]
    with torch.no_grad():  # the library's own search (training mode) picks the same codes
        assert m.train().motion(states, valid).ids.tolist() == [expect]


def _train_step_on(m, latent: torch.Tensor) -> None:
    """One training-mode pass of the motion branch whose encoder outputs ``latent`` (B, 2, 16)."""
    m.motion_encoder = _FixedLatent(latent)
    with torch.no_grad():
        m.train().motion(torch.zeros(latent.shape[0], 8, 55), torch.ones(latent.shape[0], 8, dtype=torch.bool))


@pytest.mark.parametrize(("threshold", "replaced"), [(0.0, 0), (1.0, 7), (5.0, 8)])
def test_dead_code_threshold(threshold, replaced):
    # 8 Euclidean codes, every code's EMA cluster size starts at 1 (decay 0.9); all 8 tokens of the batch are the
    # same vector v, so one code takes them: its size becomes 0.9 * 1 + 0.1 * 8 = 1.7, the 7 others 0.9. Codes below
    # the threshold are re-drawn from the batch, i.e. become v: none at 0 (off), the 7 unused at 1.0, all 8 at 5.0.
    m = _model(codebook_size=8, cosine_codebook=False, kmeans_init=False, dead_code_threshold=threshold)
    assert m.motion_vq._codebook.threshold_ema_dead_code == threshold
    v = torch.arange(16.0) / 10
    _train_step_on(m, v.expand(4, 2, 16))
    is_v = (m.codebook() - v).abs().amax(dim=-1) < 1e-6
    assert int(is_v.sum()) == replaced


@pytest.mark.parametrize("seed", range(4))
def test_kmeans_init_iterations(seed):
    # 2 Euclidean codes initialised by k-means on a batch of 4 tokens v and 4 tokens -v. Whichever two tokens the
    # library samples as the start, two Lloyd iterations reach the centres {v, -v} (both starts in one group: the
    # first pass puts every token on the first code, whose mean is 0, and the second splits them); the EMA update of
    # the same pass keeps them (each code's 4 tokens equal it).
    m = _model(codebook_size=2, cosine_codebook=False, kmeans_init=True, kmeans_iters=2)
    assert m.motion_vq._codebook.kmeans_iters == 2
    v = torch.arange(16.0) / 10
    torch.manual_seed(seed)
    _train_step_on(m, torch.stack([v.expand(4, 16), -v.expand(4, 16)], dim=1))
    cb = m.codebook()
    cb = cb if cb[0, 1] > 0 else cb.flip(0)
    torch.testing.assert_close(cb, torch.stack([v, -v]), atol=1e-4, rtol=0)


def test_codebook_option_errors():
    with pytest.raises(ValueError, match="kmeans_iters"):
        ConceptModelConfig(kmeans_iters=0)
    with pytest.raises(ValueError, match="dead_code_threshold"):
        ConceptModelConfig(dead_code_threshold=-1.0)
    with pytest.raises(TypeError):
        _model(kmeans_iterations=3)


def test_codebook_diversity_loss_by_hand():
    # Cosine codebook of the 8 unit axes; tokens (B=2, N=2): position 0 holds e0 twice, position 1 holds e1 and e2.
    # Soft assignment at temperature T = 2: softmax(2 * cos) puts a = e^2 / (e^2 + 7) on the token's own axis and
    # b = 1 / (e^2 + 7) on each other one. The library's term is minus the entropy of the batch-mean assignment at
    # each position, averaged over positions: position 0's mean is (a, b, ..., b), position 1's (b, (a+b)/2,
    # (a+b)/2, b, ..., b).
    e = torch.eye(16)
    latent = torch.stack([torch.stack([e[0], e[1]]), torch.stack([e[0], e[2]])])  # (B=2, N=2, 16)
    runs = {}
    for weight in (0.0, 0.3):
        m = _model(codebook_size=8, codebook_diversity=weight, codebook_diversity_temperature=2.0)
        assert m.motion_vq.has_codebook_diversity_loss is (weight > 0)
        assert not m.video_vq.has_codebook_diversity_loss  # the motion codebook only
        if weight:
            assert m.motion_vq.codebook_diversity_loss_weight == 0.3
            assert m.motion_vq.codebook_diversity_temperature == 2.0
        m.motion_vq._codebook.embed.copy_(e[:8][None])
        m.motion_encoder = _FixedLatent(latent)
        with torch.no_grad():
            runs[weight] = m.train().motion(torch.zeros(2, 8, 55), torch.ones(2, 8, dtype=torch.bool))
            assert m.eval().motion(torch.zeros(2, 8, 55), torch.ones(2, 8, dtype=torch.bool)).diversity is None
    a, b = math.exp(2) / (math.exp(2) + 7), 1 / (math.exp(2) + 7)

    def entropy(p: list[float]) -> float:
        return -sum(x * math.log(x) for x in p)

    expect = -(entropy([a] + [b] * 7) + entropy([b, (a + b) / 2, (a + b) / 2] + [b] * 5)) / 2
    assert runs[0.0].diversity is None
    assert float(runs[0.3].diversity) == pytest.approx(expect, rel=1e-4)
    # the weighted term is part of the quantiser's loss; the codes chosen do not change
    assert float(runs[0.3].commit_loss - runs[0.0].commit_loss) == pytest.approx(0.3 * expect, rel=1e-4)
    assert torch.equal(runs[0.3].ids, runs[0.0].ids) and runs[0.3].ids.tolist() == [[0, 1], [0, 2]]
    with pytest.raises(ValueError, match="codebook_diversity"):
        ConceptModelConfig(codebook_diversity=-0.1)
    with pytest.raises(ValueError, match="codebook_diversity"):
        ConceptModelConfig(codebook_diversity_temperature=0.0)


def test_padding_with_mask_equals_truncation():
    m = _model().eval()
    states, valid = _batch(b=2, t=8)
    short = m.forward_features(states[:, :4], valid[:, :4])
    padded_valid = valid.clone()
    padded_valid[:, 4:] = False
    garbage = states.clone()
    garbage[:, 4:] = 100.0
    long = m.forward_features(garbage, padded_valid)
    torch.testing.assert_close(long[:, :1], short, atol=1e-5, rtol=1e-5)


def test_shape_errors():
    m = _model()
    with pytest.raises(ValueError, match="multiple of 4"):
        m.forward_features(torch.zeros(1, 6, 55), torch.ones(1, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="55"):
        m.forward_features(torch.zeros(1, 8, 54), torch.ones(1, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="video"):
        m.video_features(torch.zeros(1, 8, 3, 16, 16), torch.ones(1, 8, dtype=torch.bool))
    with pytest.raises(ValueError):
        ConceptModelConfig(window=10, segment=4)
    with pytest.raises(ValueError):
        ConceptModelConfig(backbone="lstm")
    no_video = _model(video=False)
    with pytest.raises(ValueError, match="no video branch"):
        no_video.video(torch.zeros(1, 8, 7, 16, 16), torch.ones(1, 8, dtype=torch.bool))


def test_segment_helpers():
    x = torch.arange(8.0).reshape(1, 8, 1)
    valid = torch.tensor([[True, True, True, False, False, False, False, False]])
    np.testing.assert_allclose(segment_pool(x, valid, 4)[0, :, 0].numpy(), [1.0, 0.0])
    assert segment_valid(valid, 4).tolist() == [[True, False]]


def test_hypernet_starts_at_identity_and_scores_in_unit_interval():
    m = _model()
    h = m.hypernet
    codes = torch.randn(5, 1, 16)
    states = torch.randn(1, 7, 55)
    r = h(codes, states)
    assert r.shape == (5, 7) and (r > 0).all() and (r < 1).all()
    # W starts as the identity: with a zero params layer the logits are cos(proto(code), embed(state)) / tau
    with torch.no_grad():
        h.params.weight.zero_()
        expect = torch.nn.functional.cosine_similarity(h.proto(codes), h.embed(states), dim=-1) / h.tau
        torch.testing.assert_close(h.logits(codes, states), expect)


def test_actionable_path_is_second_order():
    m = _model()
    states, valid = _batch()
    out = m.motion(states, valid)
    pred = m.predict_velocity(states, out.quantized)
    assert pred.shape == (3, 8, 54)
    loss = actionable_loss(pred, torch.zeros_like(pred), valid)
    loss.backward()
    # the loss reaches the hypernetwork only through d score / d state (create_graph) and the encoder through the
    # straight-through codes
    assert m.hypernet.params.weight.grad is not None and m.hypernet.params.weight.grad.abs().sum() > 0
    assert m.motion_encoder.embed.weight.grad.abs().sum() > 0


def test_per_frame_velocity_predictor():
    """predictor_depth 0: frame t's velocity depends on frame t's state and gradient only, and still trains the
    hypernetwork through the gradient."""
    m = _model(predictor_depth=0)
    states, valid = _batch()
    codes = m.motion(states, valid).quantized.detach()
    pred = m.predict_velocity(states, codes)
    moved = states.clone()
    moved[:, 5] += 1.0
    changed = (m.predict_velocity(moved, codes) - pred).abs().sum(dim=-1) > 0  # (B, T)
    assert changed[:, 5].all() and not changed[:, :5].any() and not changed[:, 6:].any()
    assert _model().predict_velocity(moved, codes)[:, 6:].ne(_model().predict_velocity(states, codes)[:, 6:]).any()
    actionable_loss(pred, torch.zeros_like(pred), valid).backward()
    assert m.hypernet.params.weight.grad.abs().sum() > 0


def test_hyper_motion_appends_the_past_pose_change_by_hand():
    """hyper_motion (issue 16): the hypernetwork's state is [s_t, (pose_t - pose_t-1) x scale], 0 at a window's first
    frame and next to padding; without it the states pass through unchanged."""
    states = torch.zeros(2, 4, 55)
    states[0, :, 0] = torch.tensor([0.0, 1.0, 3.0, 6.0])  # first pose value of window 0
    states[1, :, 50] = torch.tensor([2.0, 2.5, 9.0, 9.0])  # last pose value of window 1, frames 2-3 padding
    states[:, :, 51] = 4.0  # root velocity: not a pose value, not differenced
    valid = torch.tensor([[True] * 4, [True, True, False, False]])
    plain = _model()
    assert plain.hyper_states(states, valid) is states and plain.config.hyper_state_dim == 55
    m = _model(hyper_motion=True, hyper_motion_scale=2.0)
    assert m.config.hyper_state_dim == 55 + 51
    hs = m.hyper_states(states, valid)
    assert hs.shape == (2, 4, 106) and torch.equal(hs[..., :55], states)
    torch.testing.assert_close(hs[0, :, 55], torch.tensor([0.0, 2.0, 4.0, 6.0]))
    torch.testing.assert_close(hs[1, :, 55 + 50], torch.tensor([0.0, 1.0, 0.0, 0.0]))  # no step into padding
    hs[0, :, 55] = 0
    hs[1, :, 55 + 50] = 0
    assert not hs[..., 55:].any()  # nothing else moves (the root velocity is not a pose value)
    # the actionable path reads them: width checked, and the velocity of frame t does not read frame t+1
    with pytest.raises(ValueError, match="hyper_states"):
        m.predict_velocity(states, torch.zeros(2, 1, 16))
    st, val = _batch()
    codes = m.motion(st, val).quantized.detach()
    pred = m.predict_velocity(m.hyper_states(st, val), codes)
    assert pred.shape == (3, 8, 54)
    moved = st.clone()
    moved[:, 5] += 1.0
    changed = (m.predict_velocity(m.hyper_states(moved, val), codes) - pred).abs().sum(dim=-1) > 0
    assert not changed[:, :5].any() and changed[:, 5].all()
    actionable_loss(pred, torch.zeros_like(pred), val).backward()
    assert m.hypernet.embed.weight.grad[:, 55:].abs().sum() > 0  # the appended motion reaches the classifiers
    with pytest.raises(ValueError, match="hyper_motion"):
        ConceptModelConfig(state_dim=20, hyper_motion=True)


def test_video_branch_and_embedding():
    m = _model().eval()
    video = torch.randn(2, 8, 7, 16, 16)
    valid = torch.ones(2, 8, dtype=torch.bool)
    out = m.video(video, valid)
    assert out.ids.shape == (2, 2)
    assert m.video_target(video).shape == (2, 8, 16) and m.decode_video(out.quantized).shape == (2, 8, 16)
    e = m.embed(out, "video")
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(2))


def test_dstformer_backbone_variant():
    torch.manual_seed(0)
    m = create_model("concepts_test", backbone="dstformer", dstformer_name="dstformer_test").eval()
    states, valid = _batch(b=2)
    assert m.motion(states, valid).ids.shape == (2, 2)


# ---- losses --------------------------------------------------------------------------------------------------
def test_masked_mse_ignores_invalid_frames():
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [100.0, 100.0]]])
    valid = torch.tensor([[True, True, False]])
    assert masked_mse(pred, target, valid).item() == pytest.approx((1 + 4) / 2)
    assert masked_mse(pred, target, torch.zeros(1, 3, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError):
        masked_mse(pred, target[:, :2], valid)


def test_discriminative_loss_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.0]])
    positive = torch.tensor([[True, False, False]])
    sp = torch.nn.functional.softplus
    expect = 0.5 * (sp(torch.tensor(-2.0)) + (sp(torch.tensor(-1.0)) + sp(torch.tensor(0.0))) / 2)
    assert discriminative_loss(logits, positive).item() == pytest.approx(expect.item(), rel=1e-6)
    # perfect separation -> near zero; inverse cluster-size weights: the same for 1 or 100 negatives
    big = torch.tensor([[50.0] + [-50.0] * 100])
    assert discriminative_loss(big, big > 0).item() < 1e-6
    with pytest.raises(ValueError):
        discriminative_loss(logits, positive[:, :2])


def test_discriminative_loss_scores_only_the_scored_states():
    sp = torch.nn.functional.softplus
    logits = torch.tensor([[2.0, -1.0, 0.0, 5.0], [1.0, 3.0, -2.0, 0.5]])
    positive = torch.tensor([[True, False, False, False], [False, False, True, True]])
    scored = torch.tensor([[True, True, False, False], [False, True, True, True]])
    # row 0: positive 2.0, negative -1.0 (the other two are not scored); row 1: positives -2.0 and 0.5, negative 3.0
    row0 = 0.5 * (sp(torch.tensor(-2.0)) + sp(torch.tensor(-1.0)))
    row1 = 0.5 * ((sp(torch.tensor(2.0)) + sp(torch.tensor(-0.5))) / 2 + sp(torch.tensor(3.0)))
    got = discriminative_loss(logits, positive, scored)
    assert got.item() == pytest.approx(((row0 + row1) / 2).item(), rel=1e-6)
    everything = torch.ones_like(scored)
    assert discriminative_loss(logits, positive, everything).item() == pytest.approx(
        discriminative_loss(logits, positive).item(), rel=1e-7)
    with pytest.raises(ValueError, match="scored"):
        discriminative_loss(logits, positive, scored[:, :3])
    # row weights: a weighted mean of the rows; weight 0 leaves a row out
    assert discriminative_loss(logits, positive, scored, torch.tensor([0.0, 2.0])).item() == pytest.approx(
        row1.item(), rel=1e-6)
    assert discriminative_loss(logits, positive, scored, torch.tensor([1.0, 3.0])).item() == pytest.approx(
        ((row0 + 3 * row1) / 4).item(), rel=1e-6)


def test_clustering_loss_by_hand():
    codebook = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    latent = torch.tensor([[[1.0, 0.0]]])
    valid = torch.ones(1, 1, dtype=torch.bool)
    expect = -math.log(math.exp(10) / (math.exp(10) + 1))
    assert clustering_loss(latent, codebook, valid, tau=0.1).item() == pytest.approx(expect, abs=1e-7)


def test_info_nce():
    a = torch.nn.functional.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    good = info_nce(a, a, torch.tensor(math.log(100.0)))
    shuffled = info_nce(a, a.roll(1, dims=0), torch.tensor(math.log(100.0)))
    assert good.item() < shuffled.item()
    # zero temperature scale: uniform logits, log(B)
    assert info_nce(a, a, torch.tensor(-30.0)).item() == pytest.approx(math.log(6), rel=1e-4)


# ---- metrics -------------------------------------------------------------------------------------------------
def test_nmi_and_purity_by_hand():
    labels = ["a", "a", "b", "b"]
    assert nmi([0, 0, 1, 1], labels) == pytest.approx(1.0)
    assert nmi([5, 5, 9, 9], labels) == pytest.approx(1.0)  # renaming clusters changes nothing
    assert nmi([0, 1, 0, 1], labels) == pytest.approx(0.0, abs=1e-12)
    assert purity([0, 1, 0, 1], labels) == 0.5
    # clusters {a, a, b} and {b}: I = H(Y) - H(Y|C) with H(Y|C) = 3/4 H(2/3, 1/3); H(C) = H(3/4, 1/4)
    h = lambda *p: -sum(x * math.log(x) for x in p)  # noqa: E731
    mi = h(0.5, 0.5) - 0.75 * h(2 / 3, 1 / 3)
    assert nmi([0, 0, 0, 1], labels) == pytest.approx(mi / ((h(0.75, 0.25) + h(0.5, 0.5)) / 2))
    assert purity([0, 0, 0, 1], labels) == pytest.approx(3 / 4)
    table, cu, yu = contingency([0, 0, 0, 1], labels)
    assert table.tolist() == [[2, 1], [0, 1]] and list(cu) == [0, 1] and list(yu) == ["a", "b"]
    with pytest.raises(ValueError):
        nmi([0, 1], ["a"])
    # the clusters above: homogeneity I / H(Y), completeness I / H(C), NMI their harmonic mean
    hom, com = homogeneity_completeness([0, 0, 0, 1], labels)
    assert hom == pytest.approx(mi / h(0.5, 0.5)) and com == pytest.approx(mi / h(0.75, 0.25))
    assert 2 * hom * com / (hom + com) == pytest.approx(nmi([0, 0, 0, 1], labels))
    # one cluster per item: every cluster pure (homogeneity 1), each label split in two (ln 2 / ln 4 = 1/2)
    assert homogeneity_completeness([0, 1, 2, 3], labels) == pytest.approx((1.0, 0.5))
    assert homogeneity_completeness([7, 7, 7, 7], labels) == pytest.approx((0.0, 1.0))  # H(C) = 0: 0 / 0 -> 1


def test_recall_at_k():
    q = np.eye(3)
    assert recall_at_k(q, q, 1) == 1.0
    g = q[[1, 2, 0]]
    assert recall_at_k(q, g, 1) == 0.0 and recall_at_k(q, g, 3) == 1.0
    with pytest.raises(ValueError):
        recall_at_k(q, q[:2])


def test_window_majority_by_hand():
    from hmore.concepts.evaluate import window_majority

    # sequence 0: ids 1 1 2 2 2 3, sequence 1: 3 0 0. Window 3 = the frame and one either side, cut at each sequence's
    # ends: 1 1 | 1 1 2 -> 1 | 1 2 2 -> 2 | 2 2 2 | 2 2 3 | 2 3 (tie, smallest) -> 2; then 3 0 (tie) -> 0 | 3 0 0 | 0 0.
    ids = np.array([1, 1, 2, 2, 2, 3, 3, 0, 0])
    seq = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    assert window_majority(ids, seq, 3).tolist() == [1, 1, 2, 2, 2, 2, 0, 0, 0]
    # window 2 = the frame before and the frame itself: t = 0 sees only itself
    assert window_majority(ids, seq, 2).tolist() == [1, 1, 1, 2, 2, 2, 3, 0, 0]
    assert window_majority(ids, seq, 1).tolist() == ids.tolist()
    assert window_majority(ids, seq, 0).tolist() == [2] * 6 + [0] * 3  # each sequence's most frequent id
    assert window_majority(ids[:0], seq[:0], 3).shape == (0,)
    with pytest.raises(ValueError, match="same length"):
        window_majority(ids, seq[:-1], 3)
    with pytest.raises(ValueError, match="window"):
        window_majority(ids, seq, -1)


def _shared_branches(m, latent: torch.Tensor):
    """Training-mode passes of both branches whose encoders output ``latent`` (B, 2, 16): motion first, then video."""
    m.motion_encoder = _FixedLatent(latent)
    m.video_encoder = _FixedLatent(latent)
    b = latent.shape[0]
    with torch.no_grad():
        mo = m.train().motion(torch.zeros(b, 8, 55), torch.ones(b, 8, dtype=torch.bool))
        vi = m.video(torch.zeros(b, 8, 7, 16, 16), torch.ones(b, 8, dtype=torch.bool))
    return mo, vi


def test_shared_codebook_is_one_module_and_default_has_two():
    two, one = _model(), _model(shared_codebook=True)
    assert two.video_vq is not two.motion_vq and one.video_vq is one.motion_vq
    vq_names = {k for k in two.state_dict() if "_vq." in k}
    assert {k for k in vq_names if k.startswith("video_vq.")} == {k.replace("motion_vq.", "video_vq.")
                                                                  for k in vq_names if k.startswith("motion_vq.")}
    # the shared module is registered once: its state dict is the default's without the video codebook's names
    assert set(one.state_dict()) == {k for k in two.state_dict() if not k.startswith("video_vq.")}
    assert not any(n.startswith("video_vq.") for n, _ in one.named_parameters())
    torch.testing.assert_close(one.codebook("video"), one.codebook("motion"))


def test_shared_codebook_ids_name_the_same_vectors():
    # Cosine codebook of the 8 unit axes e0..e7 (EMA sums and sizes such that the motion pass leaves them there);
    # both encoders output tokens 2 e3 and 4 e6 (on axes 3 and 6, so the EMA update keeps them too). With one
    # codebook the video ids are the motion ids and the video codes the motion codes; with two codebooks (the video
    # one left at its random start) the video codes are other vectors.
    e = torch.eye(16)
    latent = torch.stack([2 * e[3], 4 * e[6]])[None]  # (1, 2, 16)
    for shared in (True, False):
        m = _model(codebook_size=8, shared_codebook=shared, dead_code_threshold=0.0)
        m.motion_vq._codebook.embed.copy_(e[:8][None])
        m.motion_vq._codebook.embed_avg.copy_(e[:8][None])  # so that the EMA update keeps each axis
        mo, vi = _shared_branches(m, latent)
        assert mo.ids.tolist() == [[3, 6]]
        if shared:
            assert vi.ids.tolist() == [[3, 6]]
            torch.testing.assert_close(vi.quantized, mo.quantized)
            torch.testing.assert_close(m.eval().video(torch.zeros(1, 8, 7, 16, 16),
                                                      torch.ones(1, 8, dtype=torch.bool)).quantized,
                                       torch.stack([e[3], e[6]])[None])
        else:
            assert not torch.allclose(vi.quantized, mo.quantized)


@pytest.mark.parametrize("video_update", [True, False])
def test_shared_codebook_video_update(video_update):
    # Euclidean codes: e0..e7 (EMA decay 0.9, no dead codes). Motion tokens e0, e1 move nothing (each code is the
    # mean of its tokens); the video tokens 2 e0, 2 e1 then pull codes 0 and 1 to 0.9 e + 0.1 * 2 e = 1.1 e when the
    # video branch updates the shared codebook, and leave them at e when it only reads it.
    e = torch.eye(16)
    m = _model(codebook_size=8, cosine_codebook=False, shared_codebook=True, dead_code_threshold=0.0,
               shared_codebook_video_update=video_update)
    m.motion_vq._codebook.embed.copy_(e[:8][None])
    m.motion_vq._codebook.embed_avg.copy_(e[:8][None])
    m.motion_encoder = _FixedLatent(torch.stack([e[0], e[1]])[None])
    m.video_encoder = _FixedLatent(torch.stack([2 * e[0], 2 * e[1]])[None])
    with torch.no_grad():
        m.train().motion(torch.zeros(1, 8, 55), torch.ones(1, 8, dtype=torch.bool))
        torch.testing.assert_close(m.codebook()[:2], e[:2])
        vi = m.video(torch.zeros(1, 8, 7, 16, 16), torch.ones(1, 8, dtype=torch.bool))
    assert vi.ids.tolist() == [[0, 1]] and float(vi.commit_loss) > 0
    scale = 1.1 if video_update else 1.0
    torch.testing.assert_close(m.codebook()[:2], scale * e[:2])
    torch.testing.assert_close(m.codebook("video"), m.codebook("motion"))


def test_shared_codebook_errors():
    with pytest.raises(ValueError, match="shared_codebook needs the video branch"):
        ConceptModelConfig(shared_codebook=True, video=False)
    with pytest.raises(ValueError, match="needs shared_codebook"):
        ConceptModelConfig(shared_codebook_video_update=False)


def test_shared_codebook_save_and_load(tmp_path):
    from hmore.errors import InputError
    from hmore.train.checkpoint import load_weights_into, save_weights

    m = _model(codebook_size=8, shared_codebook=True, kmeans_init=True)
    states, video = torch.randn(4, 8, 55), torch.randn(4, 8, 7, 16, 16)
    valid = torch.ones(4, 8, dtype=torch.bool)
    with torch.no_grad():  # k-means start and EMA updates from both branches: a codebook unlike a fresh model's
        m.train().motion(states, valid)
        m.video(video, valid)
    path = save_weights(tmp_path / "w.safetensors", m, metadata={})
    back = _model(codebook_size=8, shared_codebook=True)
    assert not torch.equal(back.codebook(), m.codebook())
    load_weights_into(back, path)
    assert back.video_vq is back.motion_vq
    torch.testing.assert_close(back.codebook("video"), m.codebook("motion"), rtol=0, atol=0)
    for k, v in m.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0)
    # a shared checkpoint lacks the second codebook; a two-codebook one has a codebook the shared model cannot hold
    with pytest.raises(InputError, match="video_vq"):
        load_weights_into(_model(codebook_size=8), path)
    two = save_weights(tmp_path / "two.safetensors", _model(codebook_size=8), metadata={})
    with pytest.raises(InputError, match="video_vq"):
        load_weights_into(_model(codebook_size=8, shared_codebook=True), two)
