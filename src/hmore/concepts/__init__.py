"""Motion concepts (HuMoCon, docs/humocon.md): data, paired video-motion clips, encoding, reports and motion QA.

* :mod:`hmore.concepts.motion`: skeleton sequences of the shared datasets and procedural motions at the model's
  frame rate, and the per-window canonical state/velocity features the motion encoder reads.
* :mod:`hmore.concepts.pairs`: paired video-motion clips (generated renders with exact motion, real videos with
  their lifted motion), cached on disk with hmore's world/local flow, resumable.
* :mod:`hmore.concepts.encode`: concept ids per frame of a BVH, a keypoint file, a generated clip or a video.
* :mod:`hmore.concepts.show`: the HTML report (concept timeline, nearest segments, concept-by-label table).
* :mod:`hmore.concepts.qa`: BABEL-QA reader, generated QA set, question tokenizer.
* :mod:`hmore.concepts.llm`: optional path to a local Hugging Face causal LM with LoRA (``peft``).

The networks are in :mod:`hmore.models.concepts`, the losses in :mod:`hmore.losses.concepts`, the metrics in
:mod:`hmore.metrics.concepts`, the training tasks in :mod:`hmore.train.tasks.concepts`.
"""
