"""Meshes from 2D keypoints: MotionBERT's third head on the DSTformer backbone, regressing Anny bodies.

``decoder``: a differentiable Anny body (group rotations + phenotype -> vertices, joints); ``data``: training clips of
posed Anny people seen by random cameras; ``task``: the ``mesh`` training task; ``infer``: ``hmore mesh``.
"""
