"""AccVideo Workbench: few-step video diffusion (AccVideo, GPD) made real and explorable.

Time convention, used everywhere in this package (rectified flow):

    sigma in [0, 1],   x_sigma = (1 - sigma) * x_0 + sigma * eps,   eps ~ N(0, I)
    the network predicts the velocity  v = eps - x_0
    sampling runs from sigma = 1 (pure noise) to sigma = 0 (data) with Euler steps
    x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v(x_i, sigma_i)

Layers, bottom to top (a module imports only from its own layer or below; tests/test_layers.py):
core, util, world -> models -> generation, media -> synvid -> training -> eval -> experiments
-> app -> cli. docs/ARCHITECTURE.md draws them and follows a prompt to a video.
"""

__version__ = "0.1.0"
