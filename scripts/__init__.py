"""Developer scripts (run as files: `python scripts/run_dev.py`)."""
