"""What a LocalExecutor worker of the embedded run starts with, checked from inside one."""

from __future__ import annotations

import gc
import sys

from pipeline.stages.warm_modules import WARM_MODULES


def exit_if_warm() -> None:
    """Exit 0 if the pipeline was imported and frozen out of the collector before this process
    started (by its forkserver), 3 if not."""
    imported = all(module in sys.modules for module in WARM_MODULES)
    raise SystemExit(0 if imported and gc.get_freeze_count() > 100_000 else 3)
