"""Pose and person-mask priors from video, tracking, boundaries."""
