"""The toy's one door into the package's flow-matching core.

The toy samples with the package's own schedule and Euler sampler, so that the 1D
picture is the video code's maths, not a copy of it. Every toy module imports the
core through here; when the core moves, only these imports change.
"""

from accvideo.core.sampling import SampleResult, euler_sample
from accvideo.core.schedules import sigma_schedule

__all__ = ["SampleResult", "euler_sample", "sigma_schedule"]
