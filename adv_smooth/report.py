"""`python -m adv_smooth.report SWEEP_DIR [MORE_DIRS ...] [--out DIR]` (thin entry point; see `app.report_run`)."""

from __future__ import annotations

from adv_smooth.app.report_run import main

if __name__ == "__main__":
    main()
