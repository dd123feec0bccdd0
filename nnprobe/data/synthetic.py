"""Seeded simulated data: Gaussian clusters with a separability knob, and the reference 2-D shapes.

The 2-D shapes follow the simulated experiments of "On the decision boundary of deep neural networks"
(Li, Ding, Gao): blobs, plate, circle, sectors, moons and a 3-class blob set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nnprobe.errors import NNProbeError

KINDS = ("gauss", "blobs", "plate", "circle", "sectors", "moons", "blobs3")


def _gauss(
    rng: np.random.Generator, n: int, k: int = 2, d: int = 2, sep: float = 4.0, std: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """k Gaussian clusters in d dimensions, means on a simplex-like set at distance ``sep`` std apart."""
    means = rng.standard_normal((k, d))
    means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-12
    # scale so that the closest pair of means sits sep*std apart
    dists = np.linalg.norm(means[:, None] - means[None], axis=-1) + np.eye(k) * 1e9
    means *= sep * std / dists.min()
    y = np.arange(n) % k
    x = means[y] + std * rng.standard_normal((n, d))
    return x, y


def _blobs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 2
    centres = np.array([[0.2, 0.2], [0.8, 0.8]])
    return centres[y] + 0.1 * rng.standard_normal((n, 2)), y


def _blobs3(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 3
    centres = np.array([[10.0, 10.0], [45.0, 75.0], [80.0, 10.0]])
    return centres[y] + 5.0 * rng.standard_normal((n, 2)), y


def _rejection(
    rng: np.random.Generator,
    n: int,
    sampler: Callable[[int], np.ndarray],
    label_fn: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    count = 0
    while count < n:
        x = sampler(4 * n)
        y = label_fn(x)
        keep = y >= 0
        xs.append(x[keep])
        ys.append(y[keep])
        count += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def _plate(rng: np.random.Generator, n: int, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    def label(x: np.ndarray) -> np.ndarray:
        s = x[:, 0] + x[:, 1] - 1
        return np.where(np.abs(s) < margin, -1, (s > 0).astype(int))

    return _rejection(rng, n, lambda m: rng.uniform(0, 1, (m, 2)), label)


def _circle(
    rng: np.random.Generator, n: int, radius: float = 0.2, margin: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    def label(x: np.ndarray) -> np.ndarray:
        r = np.linalg.norm(x - 0.5, axis=1)
        return np.where(np.abs(r - radius) < margin, -1, (r < radius).astype(int))

    return _rejection(rng, n, lambda m: rng.uniform(0, 1, (m, 2)), label)


def _sectors(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    def sample(m: int) -> np.ndarray:
        r = np.sqrt(rng.uniform(0.1**2, 0.4**2, m))
        theta = rng.uniform(0, math.pi / 2, m)
        return np.stack([r * np.cos(theta), r * np.sin(theta)], 1)

    def label(x: np.ndarray) -> np.ndarray:
        r = np.linalg.norm(x, axis=1)
        return np.where(r <= 0.2, 0, np.where(r >= 0.283, 1, -1))

    return _rejection(rng, n, sample, label)


def _moons(rng: np.random.Generator, n: int, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 2
    t = rng.uniform(0, math.pi, n)
    x = np.where(y[:, None] == 0, np.stack([np.cos(t), np.sin(t)], 1), np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    return x + noise * rng.standard_normal((n, 2)), y


def make_synthetic(
    kind: str = "gauss", n: int = 5000, test_fraction: float = 0.1, seed: int = 0, **params: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` float32/int64 numpy arrays for a simulated set.

    >>> xtr, ytr, xte, yte = make_synthetic("blobs", n=100, seed=0)
    >>> xtr.shape, xte.shape
    ((90, 2), (10, 2))
    """
    rng = np.random.default_rng(seed)
    makers = {
        "gauss": lambda: _gauss(rng, n, **params),
        "blobs": lambda: _blobs(rng, n),
        "blobs3": lambda: _blobs3(rng, n),
        "plate": lambda: _plate(rng, n, **params),
        "circle": lambda: _circle(rng, n, **params),
        "sectors": lambda: _sectors(rng, n),
        "moons": lambda: _moons(rng, n, **params),
    }
    if kind not in makers:
        raise NNProbeError(f"unknown synthetic kind '{kind}'", f"use one of: {', '.join(KINDS)}")
    try:
        x, y = makers[kind]()
    except TypeError as exc:
        raise NNProbeError(f"bad setting for synthetic:{kind}: {exc}", "gauss takes k=, d=, sep=, std=") from None
    order = rng.permutation(len(y))
    x, y = x[order].astype(np.float32), y[order].astype(np.int64)
    n_test = max(1, int(round(test_fraction * len(y))))
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]
