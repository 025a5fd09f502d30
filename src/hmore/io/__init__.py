"""Reading and writing: video, keypoint files, BVH motion capture, atomic file output."""
