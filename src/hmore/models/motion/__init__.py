"""Skeleton motion encoders (DSTformer), their heads and baseline lifters; importing registers the builders."""

from hmore.models.motion import baselines, dstformer, heads, input_norm, mesh, stgcn  # noqa: F401  (for registration)
