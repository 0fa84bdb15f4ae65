"""Free TCP ports for the torchrun tests."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A localhost TCP port that is free now, for ``torchrun --master_port``.

    Fixed ports collided between tests run at the same time (two worktrees, or two
    tests that shared 29533). The OS picks the port; the short window between closing
    this socket and torchrun binding it is the usual, accepted race.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
