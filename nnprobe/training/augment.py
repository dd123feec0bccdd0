"""Seeded training-batch augmentation: random crops of edge-padded images, optionally random horizontal flips.

The GradNet reference trains its base CNN on random crops and flips (and contrast changes) of CIFAR-10; on 28x28
digits the usual adaptation is a crop of the image padded by 2 pixels, without flips (a mirrored digit is
another symbol). Padding repeats the border pixels, so a normalised image's background stays background.

The draws for a whole epoch (one offset pair and one flip bit per example of the shuffled order) come from the
trainer's seeded generator right after the epoch's permutation, so a run is a function of its seed and a
resumed run (whose generator state is restored) draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nnprobe.errors import NNProbeError


def parse_augment(spec: str) -> tuple[int, bool]:
    """``(pad, flip)`` of an augmentation spec: ``"crop"`` (pad 2), ``"crop:P"``, either with ``"+flip"``.

    >>> parse_augment("crop"), parse_augment("crop:4+flip")
    ((2, False), (4, True))
    """
    parts = [p.strip() for p in str(spec).split("+")]
    crop, extra = parts[0], parts[1:]
    name, _, pad_text = crop.partition(":")
    ok = name == "crop" and extra in ([], ["flip"])
    try:
        pad = int(pad_text) if pad_text else 2
    except ValueError:
        ok, pad = False, 0
    if not ok or pad < 0:
        raise NNProbeError(
            f"augmentation '{spec}' is not understood",
            "use 'crop' (pad 2), 'crop:P' (pad P pixels), optionally with '+flip'",
        )
    return pad, bool(extra)


def draw_augment(
    spec: str, n: int, generator: torch.Generator, device: torch.device | str | None = None
) -> torch.Tensor:
    """``(n, 3)`` long tensor: row and column offsets in ``0..2*pad`` and a flip bit per example, from ``generator``.

    >>> d = draw_augment("crop", 5, torch.Generator().manual_seed(0)); tuple(d.shape), int(d[:, :2].max()) <= 4
    ((5, 3), True)
    """
    pad, flip = parse_augment(spec)
    offsets = torch.randint(2 * pad + 1, (n, 2), generator=generator)
    bits = torch.randint(2, (n, 1), generator=generator) if flip else torch.zeros(n, 1, dtype=torch.long)
    return torch.cat([offsets, bits], dim=1).to(device)


def apply_augment(x: torch.Tensor, draws: torch.Tensor, start: int, spec: str) -> torch.Tensor:
    """Crop (and flip) the batch ``x`` of images ``(B, C, H, W)`` with rows ``start .. start+B`` of ``draws``.

    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> apply_augment(x, torch.tensor([[2, 2, 0]]), 0, "crop:1")[0, 0, 0].tolist()   # shifted up-left by 1
    [5.0, 6.0, 7.0, 7.0]
    """
    if x.ndim != 4:
        raise NNProbeError(
            f"augmentation '{spec}' needs images (B, C, H, W), got shape {tuple(x.shape)}",
            "leave augment unset for flat inputs",
        )
    pad, _ = parse_augment(spec)
    b, c, h, w = x.shape
    d = draws[start : start + b].to(x.device)
    rows = d[:, 0:1] + torch.arange(h, device=x.device)  # (B, H) rows of the padded image
    cols = d[:, 1:2] + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(d[:, 2:3].bool(), cols.flip(1), cols)  # a flip reads the columns backwards
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate") if pad else x
    ib = torch.arange(b, device=x.device)[:, None, None, None]
    ic = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[ib, ic, rows[:, None, :, None], cols[:, None, None, :]]


__all__ = ["apply_augment", "draw_augment", "parse_augment"]
