"""Provenance helpers for artifacts."""
from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(cwd=None) -> str | None:
    """The current git commit of the source tree, or None outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
