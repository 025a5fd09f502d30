"""Training engine shared by every hmore model."""
