"""Plots of training runs (matplotlib, written as PNG)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_accuracy(history: list[dict], path, title: str = "") -> None:
    """Strict / lenient / first-spike accuracy per epoch, validation and test; beside it the training loss
    and the test median first output spike bin per epoch."""
    path = Path(path)
    epochs = [h["epoch"] for h in history]
    fig, (ax, side) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [3, 2]})
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
    if all("loss" in h for h in history):
        side.plot(epochs, [h["loss"] for h in history], color="tab:red", label="training loss")
        side.set_ylabel("training loss", color="tab:red")
    if all("test_median_first_spike_bin" in h for h in history):
        bins = side.twinx()
        bins.plot(epochs, [h["test_median_first_spike_bin"] for h in history], color="tab:purple")
        bins.set_ylabel("test median first output spike bin", color="tab:purple")
    side.set_xlabel("epoch")
    side.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def plot_spike_histograms(inference, path, title: str = "") -> None:
    """Per layer: the distribution of spike bins (never = 256 counted apart), and the first output spike t*."""
    import numpy as np

    from .semantics import T_MAX

    layers = inference.spikes
    fig, axes = plt.subplots(1, len(layers) + 1, figsize=(4.2 * (len(layers) + 1), 3.6))
    for k, (ax, bins) in enumerate(zip(axes, layers)):
        fired = bins[bins < T_MAX]
        ax.hist(fired, bins=np.arange(0, T_MAX + 1, 4), color="tab:blue")
        never = 100 * (1 - fired.size / max(1, bins.size))
        ax.set_title(f"layer {k}: spike bins ({never:.1f}% never fire)", fontsize=9)
        ax.set_xlabel("bin")
    t_star = inference.first_spike_bin
    axes[-1].hist(t_star[t_star < T_MAX], bins=np.arange(0, T_MAX + 1, 2), color="tab:orange")
    no_spike = 100 * float((t_star >= T_MAX).mean()) if t_star.size else 0.0
    median = float(np.median(t_star)) if t_star.size else float("nan")
    axes[-1].set_title(f"first output spike t* (median {median:.0f}, no spike {no_spike:.2f}%)", fontsize=9)
    axes[-1].set_xlabel("bin")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(decision, labels, path, title: str = "", n_classes: int = 10) -> None:
    """Confusion matrix of the strict decision (rows: label, columns: decision), in percent of each row."""
    import numpy as np

    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (np.asarray(labels, np.int64), np.asarray(decision, np.int64)), 1)
    share = 100 * counts / np.maximum(1, counts.sum(axis=1, keepdims=True))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
    for i in range(n_classes):
        for j in range(n_classes):
            if counts[i, j]:
                ax.text(j, i, f"{counts[i, j]}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 50 else "black")
    ax.set_xlabel("decision (strict)")
    ax.set_ylabel("label")
    ax.set_xticks(range(n_classes))
    ax.set_yticks(range(n_classes))
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def plot_hidden_activity(inference, path, title: str = "") -> None:
    """Per hidden layer: how often each neuron fires, sorted; dead (never) and always-firing neurons counted."""
    import numpy as np

    from .semantics import T_MAX

    hidden = inference.spikes[:-1]
    if not hidden:
        return
    fig, axes = plt.subplots(1, len(hidden), figsize=(5.5 * len(hidden), 3.6), squeeze=False)
    for k, (ax, bins) in enumerate(zip(axes[0], hidden)):
        rate = (bins < T_MAX).mean(axis=0) if bins.size else np.zeros(bins.shape[1])
        dead = int((rate == 0).sum())
        always = int((rate == 1).sum())
        ax.plot(np.sort(rate)[::-1] * 100, color="tab:green")
        ax.set_title(f"hidden layer {k}: {dead} dead, {always} always fire (of {bins.shape[1]})", fontsize=9)
        ax.set_xlabel("neuron (sorted)")
        ax.set_ylabel("images it fires on (%)")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
