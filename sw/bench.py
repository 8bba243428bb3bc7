"""Throughput benchmarks: fast and spec reference images/s, training samples/s (784-600-10 on MNIST).

Figures are printed and written to JSON; nothing here asserts a target (see docs/benchmarks in README).
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _best_rate(fn, items: int, repeats: int) -> float:
    fn()  # warm-up (numba compilation, caches)
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return items / best


def bench_reference(network, images: np.ndarray, spec_images: int = 40, repeats: int = 3) -> dict:
    from . import reference, reference_spec

    fast = _best_rate(lambda: reference.run(network, images), len(images), repeats)
    few = images[:spec_images]
    spec = _best_rate(lambda: reference_spec.run(network, few), len(few), 1)
    return {"fast_images_per_s": fast, "spec_images_per_s": spec, "fast_images": len(images), "spec_images": len(few)}


def bench_training(dataset, batches: int = 150, batch_size: int = 64, hidden: int = 600, seed: int = 0) -> dict:
    """Full training steps (data shift, exact forward, backward, Adam update, threshold refresh)."""
    import torch

    from .train import TrainConfig, build_model, make_optimizer, train_step

    n_in = int(np.prod(dataset.images.shape[1:]))
    config = TrainConfig(dataset=dataset.name, hidden=(hidden,), batch_size=batch_size, seed=seed)
    config = config.resolved(n_in, dataset.images.shape[1])
    generator = torch.Generator().manual_seed(seed)
    model = build_model(config, n_in, generator)
    optimizer = make_optimizer(model, config)
    images = torch.from_numpy(dataset.images)
    labels = torch.from_numpy(dataset.labels.astype(np.int64))

    def steps(count):
        for _ in range(count):
            idx = torch.randint(0, len(labels), (batch_size,), generator=generator)
            train_step(model, optimizer, config, images[idx], labels[idx], generator)

    steps(3)
    began = time.perf_counter()
    steps(batches)
    seconds = time.perf_counter() - began
    return {"train_samples_per_s": batches * batch_size / seconds, "train_batch_size": batch_size,
            "train_batches": batches}


def main(dataset_name: str = "mnist", data_dir=None, model_dir=None, json_out=None, limit: int = 10000) -> dict:
    from . import datasets
    from .network import random_network

    test = datasets.load(dataset_name, "test", data_dir, progress=False)
    train = datasets.load(dataset_name, "train", data_dir, progress=False)
    images = test.images[:limit]
    if model_dir:
        from ..export.artifact import read_artifact

        network = read_artifact(model_dir).network
        model_note = str(model_dir)
    else:
        n_in = int(np.prod(images.shape[1:]))
        network = random_network([n_in, 600, 10], np.random.default_rng(0), images.shape[1:], threshold_range=(15, 30))
        model_note = "random 784-600-10, thresholds 15..30"
    result = {"dataset": dataset_name, "model": model_note, "sizes": network.sizes,
              "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    result.update(bench_reference(network, images))
    result.update(bench_training(train))
    text = json.dumps(result, indent=2)
    print(text)
    if json_out:
        path = Path(json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, path)
    return result
