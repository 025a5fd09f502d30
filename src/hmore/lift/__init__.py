"""2D-to-3D lifting: training data (virtual cameras, noise, masking) and inference over any length (blended
windows, missing frames, several people)."""

DEFAULT_LIFTER = "dstformer_cpu_h36m_pose"
"""The shipped weights ``hmore lift`` and :func:`hmore.lift.pipeline.load_lifter` use unless told otherwise: the
Human3.6M lifter with the whole-pose embedding (real people: Human3.6M, held-out Bandai-Namco takes; README,
Measured). A light module, so that the command-line parser need not import torch to name it."""
