"""Input adaptation named in the dataset's name: ``mnist@3x32x32``.

A model built for CIFAR-sized colour images (a torchvision ResNet-18: 3x32x32) cannot read 28x28 grey digits.
Rather than guessing, nnprobe adapts inputs only when the dataset's name asks for it, with ``@CxHxW``:

* height and width are zero-padded (centred; the extra row or column of an odd difference goes below and to
  the right) up to ``H x W``: zero is the digits' background, so the image is unchanged, only framed;
* one channel becomes ``C`` copies of it (grey as ``C`` equal colour channels); otherwise the channel count
  must already be ``C``.

Nothing is cropped, resized or interpolated. The adaptation is applied to the raw pixels (before the
normalisation), and recorded as ``Dataset.meta["input_adaptation"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from nnprobe.errors import NNProbeError


def adaptation(source: Sequence[int], target: Sequence[int], name: str = "the dataset") -> dict[str, Any]:
    """What :func:`adapt_inputs` does to go from ``source`` to ``target`` (both ``(C, H, W)``), as a record;
    an :class:`~nnprobe.errors.NNProbeError` when it cannot be done without cropping or inventing channels.

    >>> adaptation((1, 28, 28), (3, 32, 32))["pad"]
    [2, 2, 2, 2]
    """
    source, target = tuple(int(d) for d in source), tuple(int(d) for d in target)
    shown = "x".join(map(str, target))
    if len(source) != 3:
        raise NNProbeError(
            f"{name} holds vectors of shape {source}, not images: @{shown} cannot adapt them",
            "use @CxHxW with image data only (N, C, H, W), or give the model inputs of its own shape",
        )
    (c, h, w), (tc, th, tw) = source, target
    if th < h or tw < w:
        raise NNProbeError(
            f"{name} has {h}x{w} images; @{shown} would have to crop them to {th}x{tw}",
            f"nnprobe only pads: ask for at least {h}x{w}, e.g. @{tc}x{max(h, th)}x{max(w, tw)}",
        )
    if tc != c and c != 1:
        raise NNProbeError(
            f"{name} has {c} channels; @{shown} asks for {tc}, and only one channel can be repeated",
            f"ask for @{c}x{th}x{tw}",
        )
    top, left = (th - h) // 2, (tw - w) // 2
    return {
        "from": [c, h, w],
        "to": [tc, th, tw],
        "pad": [left, tw - w - left, top, th - h - top],
        "repeat_channel": tc if c == 1 and tc != 1 else 1,
        "how": f"zero-padded {h}x{w} to {th}x{tw}" + (f", channel repeated {tc} times" if c == 1 and tc != 1 else ""),
    }


def adapt_inputs(
    x: torch.Tensor, target: Sequence[int], name: str = "the dataset"
) -> tuple[torch.Tensor, dict[str, Any]]:
    """``x`` (``(N, C, H, W)``) zero-padded and channel-repeated to ``(N, *target)``, and the record of it.

    >>> x, how = adapt_inputs(torch.ones(2, 1, 28, 28), (3, 32, 32))
    >>> x.shape, float(x[0, 2, 0, 0]), float(x[0, 2, 2, 2]), how["how"]
    (torch.Size([2, 3, 32, 32]), 0.0, 1.0, 'zero-padded 28x28 to 32x32, channel repeated 3 times')
    """
    how = adaptation(tuple(x.shape[1:]), target, name)
    if any(how["pad"]):
        x = F.pad(x, how["pad"])
    if how["repeat_channel"] > 1:
        x = x.repeat(1, how["repeat_channel"], 1, 1)
    return x.contiguous(), how


__all__ = ["adapt_inputs", "adaptation"]
