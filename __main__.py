"""`python -m ar_edit_pack ...`: the pack's command line (demo, batch, shapes-jobs, summary, models, convert)."""
import sys

from .core.__main__ import main

sys.exit(main())
