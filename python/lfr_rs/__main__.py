"""``python -m lfr_rs``: the ``lfr-rs`` command line."""

import sys

from lfr_rs.cli import main

sys.exit(main())
