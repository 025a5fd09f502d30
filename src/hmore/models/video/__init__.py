"""Video classifiers fed with RGB and flow channels. Importing this package registers ``r2plus1d_cpu``,
``r2plus1d_flow`` (a two-stream classifier's flow stream) and ``r2plus1d_test``."""

from hmore.models.video.r2plus1d import R2Plus1D, R2Plus1DConfig

__all__ = ["R2Plus1D", "R2Plus1DConfig"]
