"""Data: the procedural video world (and, later, SynVid trajectories)."""
