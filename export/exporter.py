"""Checkpoint -> artifact: the trained network (best validation epoch) as format version 1."""
from __future__ import annotations

from ..sw.train import load_network
from .artifact import Artifact, write_artifact
from .provenance import git_commit


def export_checkpoint(checkpoint, out_dir, command: str | None = None, metrics: list[dict] | None = None,
                      which: str = "best") -> Artifact:
    """Write the artifact of a training checkpoint; provenance carries the training command and seed."""
    network, meta = load_network(checkpoint, which)
    provenance = {
        "command": command or meta["command"] or "",
        "seed": int(meta["seed"]),
        "commit": meta.get("commit") or git_commit(),  # the commit that trained it, when the checkpoint says
        "source": "trained",
    }
    return write_artifact(out_dir, network, meta["dataset"], provenance, metrics)
