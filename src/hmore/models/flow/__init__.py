"""H-MoRe world/local flow models."""
