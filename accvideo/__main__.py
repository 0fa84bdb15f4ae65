import sys

from accvideo.cli import main

sys.exit(main())
