"""Independent jobs on every core, in threads: Arrow, numpy and DuckDB release the GIL while they work."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def parallel(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run ``jobs`` (started in their order) on every core; their results by name."""
    if len(jobs) <= 1 or (os.cpu_count() or 1) == 1:
        return {name: job() for name, job in jobs.items()}
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}
