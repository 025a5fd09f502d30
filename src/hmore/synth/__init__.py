"""Ground-truth generator of people in motion: bodies, motions, cameras, exact rasterisation and flow."""
