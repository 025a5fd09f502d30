"""2D-to-3D lifting: training data (virtual cameras, noise, masking) and inference over any length (blended
windows, missing frames, several people)."""
