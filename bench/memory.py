"""Resident memory of this process: now, and the most it has held."""

from __future__ import annotations

import os
import resource
import sys


def peak_rss_mb() -> float:
    """The high-water mark of resident memory since the process started."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def current_rss_mb() -> float:
    """Resident memory now (Linux); elsewhere the high-water mark, which is the closest portable figure."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
