"""Training: distributed set-up, checkpoints, the teacher trainer."""
