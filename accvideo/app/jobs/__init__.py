"""Jobs the app launches, in five modules, each importing only the ones before it:

- `specs`: the job dataclasses, their validation and the argv a user would type;
- `quotas`: how many jobs may run at once, and the disk a job needs against the free space;
- `plans`: a job's memory plan against the GPU (`training.preflight`), before it starts;
- `runs`: a run folder read back (status, progress, metrics, log tail), never written;
- `manager`: `JobManager`, which starts, stops and resumes the processes.

The names below are the package's public surface.
"""

from .manager import JobManager
from .runs import TABLE_FILE, JobState, read_metrics, read_watchdog
from .specs import (
    KINDS,
    AccVideoJob,
    GPDJob,
    JobSpec,
    SynVidJob,
    build_command,
    executable_argv,
    form_default,
    form_fields,
    local_gpus,
    make_spec,
    max_processes,
    teacher_models,
)

__all__ = ["KINDS", "TABLE_FILE", "AccVideoJob", "GPDJob", "JobManager", "JobSpec", "JobState", "SynVidJob",
           "build_command", "executable_argv", "form_default", "form_fields", "local_gpus", "make_spec",
           "max_processes", "read_metrics", "read_watchdog", "teacher_models"]
