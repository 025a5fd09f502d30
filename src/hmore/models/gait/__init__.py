"""Gait recognisers. Importing this package registers ``gaitbase``, ``gaitbase_cpu`` and ``gaitbase_test``."""

from hmore.models.gait.gaitbase import GaitBase, GaitBaseConfig, GaitOutput, build_gaitbase

__all__ = ["GaitBase", "GaitBaseConfig", "GaitOutput", "build_gaitbase"]
