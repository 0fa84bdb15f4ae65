"""Models: the tiny offline Wan family, loading of pipeline folders, VAE helpers."""
