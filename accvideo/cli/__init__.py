"""The command line: `python -m accvideo COMMAND` (the top layer; `main` builds the parser)."""

from accvideo.cli.main import main

__all__ = ["main"]
