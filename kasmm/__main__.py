"""``python -m kasmm``."""

import sys

from kasmm.cli import main

sys.exit(main())
