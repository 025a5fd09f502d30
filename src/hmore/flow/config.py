"""The run configuration of ``hmore train flow`` (:class:`FlowRunConfig`): which model, which data, which loss.

Strict frozen dataclasses, loaded by :func:`hmore.config.from_dict` through the task registry; every run saves its
resolved config. The data stream itself is :mod:`hmore.flow.data`, the loss :mod:`hmore.flow.objective`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from hmore.synth.realism import RealismConfig
from hmore.train.engine import TrainConfig


@dataclass(frozen=True)
class FlowModelConfig:
    """Which flow model is trained.

    Attributes:
        name: registered model (``hmore_flow``, ``hmore_flow_cpu``, ``hmore_flow_test``).
        overrides: keyword overrides passed to the model builder (e.g. ``{iters: 4}``); saved with the weights.
        train_iters: refinement iterations during training (None: the model's default).
        zero_flow_head: zero the output layer of the update block's flow head after the model is built (and after
            ``init_from``): every refinement step is then 0, so a model with ``init_residual`` starts exactly at its
            initial (DIS) flow and training moves it from there (ours; the other weights keep their values).
    """

    name: str = "hmore_flow_cpu"
    overrides: dict[str, Any] = field(default_factory=dict)
    train_iters: int | None = None
    zero_flow_head: bool = False


@dataclass(frozen=True)
class FlowDataConfig:
    """Where the pairs come from and how they are augmented.

    Attributes:
        source: ``generate`` (render clips on the fly) or ``folder`` (``.npz`` clips under ``folder``).
        folder: folder of clips for ``source: folder`` (searched recursively).
        seed: seed of the data stream (clips, pairs, crops, flips).
        size: (H, W) render size of generated clips.
        crop: (H, W) random crop of every pair (equal to ``size`` for none).
        frames_per_clip: frames per generated clip; each clip gives ``frames_per_clip - 1`` training pairs.
        clip_cache: clips in use at a time: consecutive samples come from different clips of this window.
        subjects: (min, max) people per generated clip; ``max`` is also the subject slots of every batch.
        camera_motions: camera motions drawn from for generated clips.
        distractors: (min, max) moving background objects per generated clip.
        max_overlap: the screen overlap of several people is drawn from [0, max_overlap].
        shading_prob: probability that a generated clip uses Lambert shading.
        fps: (min, max) frame rate of generated clips, drawn per clip: lower rates give longer flows (ours).
        flip_prob: probability of a horizontal flip (flow x and keypoint x mirrored; labels unchanged).
        priors: stage 2's pose and mask source: ``groundtruth`` (the clips' own kp2d and masks) or ``files``.
        priors_folder: folder searched recursively for ``priors.npz`` (``priors: files``).
        video_folder: where the videos named in the priors files are (default: beside each priors file).
        eval_clips: held-out generated clips for evaluation (seeds >= HELD_OUT_SEED_BASE; 0 = no evaluation).
        eval_size: (H, W) of the evaluation clips.
        leak_dilation: pixels by which the person masks are dilated before measuring background leakage.
        real_fraction: with ``priors: files``, the share of samples taken from the real videos; the others are
            generated clips with ground truth (a mixed stream: the real-video terms and the supervised anchor in
            one run).
        shake_prob: probability that a generated clip's camera is hand-held (``render_clip(camera_shake=...)``).
        camera_shake: (min, max) shake in degrees per frame, drawn per shaken clip.
        realism: real-photo backgrounds (from the frames of the ``priors_folder`` videos, people painted out) and
            noise / blur / JPEG / lighting changes for generated samples (:mod:`hmore.synth.realism`).
        real_max_side: real-video frames are scaled to this longer side (0: the priors' mask size), then enlarged
            where needed to cover ``crop``.
        crop_on_people: every crop contains a person pixel when the sample has one (real frames are large and their
            people small; ours).
        stabilise: the share of samples treated as inference does with camera compensation: fit the camera's motion to
            OpenCV DIS on the background, warp frame t+1 onto frame t's view and move the ground truth, the
            keypoints at t+1 and the subject motion with it (:mod:`hmore.flow.camera`).
        body: body model of generated clips, ``anny`` (default: flow trained on Anny bodies leaks less background
            motion on real clips than the same recipe on capsules, three seeds, README "Flow trained on Anny vs
            capsule bodies") or ``capsule`` (``hmore.synth.clip.BODIES``; the configs under ``configs/flow_synth*``
            keep ``capsule``, the body their published figures were trained on).
    """

    source: Literal["generate", "folder"] = "generate"
    folder: str = ""
    seed: int = 0
    size: tuple[int, int] = (208, 272)
    crop: tuple[int, int] = (192, 256)
    frames_per_clip: int = 8
    clip_cache: int = 8
    subjects: tuple[int, int] = (1, 3)
    camera_motions: tuple[str, ...] = ("static", "pan", "track")
    distractors: tuple[int, int] = (0, 3)
    max_overlap: float = 0.5
    shading_prob: float = 0.5
    fps: tuple[float, float] = (10.0, 30.0)
    flip_prob: float = 0.5
    priors: Literal["groundtruth", "files"] = "groundtruth"
    priors_folder: str = ""
    video_folder: str = ""
    eval_clips: int = 8
    eval_size: tuple[int, int] = (192, 256)
    leak_dilation: int = 5
    real_fraction: float = 1.0
    shake_prob: float = 0.0
    camera_shake: tuple[float, float] = (0.1, 0.6)
    realism: RealismConfig = field(default_factory=RealismConfig)
    real_max_side: int = 0
    crop_on_people: bool = False
    stabilise: float = 0.0
    body: str = "anny"


@dataclass(frozen=True)
class FlowLossConfig:
    """The loss of a stage.

    Attributes:
        stage: ``supervised`` (stage 1) or ``hmore`` (stage 2: F + alpha G + Psi's hip-centre loss).
        target: world-flow target of stage 1: ``human`` (flow inside the masks, 0 outside; ours) or ``full``.
        gamma: decay of the earlier iterations' weights in the sequence loss (RAFT: 0.8).
        background_weight: weight of background pixels relative to people's pixels in the sequence loss.
        balance: people's pixels and background pixels each make up half of every sample's sequence loss (then
            ``background_weight`` scales the background half; ours). Without it the background, most of the image,
            dominates, and a short run settles on predicting zero flow everywhere.
        max_flow: target flows at least this long are ignored.
        subject_weight: weight of Psi's loss.
        skeleton_weight: weight of the skeleton constraint F (stage 2).
        boundary_weight: weight alpha of the boundary constraint G (stage 2; paper: 0.1).
        supervised_weight: weight of the supervised sequence loss in stage 2 (0 = the paper's unsupervised loss;
            only clips with ground-truth flow count).
        background_l1: weight of an L1 penalty on world flow outside dilated masks (ablation switch, off by default).
        photometric_weight: weight of the soft-census photometric loss on samples without ground-truth flow (real
            video), inside the people, occluded pixels (a forward-backward check of OpenCV DIS) left out (ours).
    """

    stage: Literal["supervised", "hmore"] = "supervised"
    target: Literal["human", "full"] = "human"
    gamma: float = 0.8
    background_weight: float = 1.0
    balance: bool = False
    max_flow: float = 400.0
    subject_weight: float = 0.1
    skeleton_weight: float = 1.0
    boundary_weight: float = 0.1
    supervised_weight: float = 0.0
    background_l1: float = 0.0
    photometric_weight: float = 0.0


@dataclass(frozen=True)
class FlowRunConfig:
    """The run config of ``hmore train flow``.

    Attributes:
        model: which model and its overrides.
        data: the data stream.
        loss: the loss of the stage.
        train: the engine settings.
        init_from: a checkpoint (``.safetensors``) or run folder whose weights initialise the model (stage 2 starts
            from stage 1); empty for a fresh initialisation. Ignored when the run resumes from its own checkpoint.
    """

    model: FlowModelConfig = field(default_factory=FlowModelConfig)
    data: FlowDataConfig = field(default_factory=FlowDataConfig)
    loss: FlowLossConfig = field(default_factory=FlowLossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: str = ""


__all__ = ["FlowDataConfig", "FlowLossConfig", "FlowModelConfig", "FlowRunConfig"]
