"""Plots of training runs (matplotlib, written as PNG)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_accuracy(history: list[dict], path, title: str = "") -> None:
    """Strict / lenient / first-spike accuracy per epoch, validation and test."""
    path = Path(path)
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"strict": "-", "lenient": "--", "first_spike": ":"}
    for split, color in (("val", "tab:blue"), ("test", "tab:orange")):
        for metric, style in styles.items():
            key = f"{split}_{metric}"
            if all(key in h for h in history):
                ax.plot(epochs, [100 * h[key] for h in history], style, color=color, label=f"{split} {metric}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
