"""Skeleton motion encoders (DSTformer) and their heads."""
