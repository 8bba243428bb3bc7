"""Checkpoint -> artifact: the trained network (best validation epoch) as format version 1."""
from __future__ import annotations

import subprocess
from pathlib import Path

from ..sw.train import load_network
from .artifact import Artifact, write_artifact


def git_commit(cwd=None) -> str | None:
    """The current git commit of the source tree, or None outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def export_checkpoint(checkpoint, out_dir, command: str | None = None, metrics: list[dict] | None = None,
                      which: str = "best") -> Artifact:
    """Write the artifact of a training checkpoint; provenance carries the training command and seed."""
    network, meta = load_network(checkpoint, which)
    provenance = {
        "command": command or meta["command"] or "",
        "seed": int(meta["seed"]),
        "commit": git_commit(),
        "source": "trained",
    }
    return write_artifact(out_dir, network, meta["dataset"], provenance, metrics)
