"""The GradNet plans (``nnprobe reproduce gradnet``): nnprobe's protocol and the reference's."""

from __future__ import annotations

from typing import Any


def gradnet_plan(quick: bool) -> list[dict[str, Any]]:
    """``nnprobe reproduce gradnet``: one snapshot study per dataset (``quick``: subsampled, ~15 CPU minutes)."""
    if quick:
        params = dict(
            samples_per_class=2000,
            test_samples_per_class=500,
            epochs=8,
            snapshot_epochs="1,2,4,8",
            channels=8,
            width=64,
            percent=2.0,
            fit_samples=1000,
            structure="5+25+25+10",
            gradnet_epochs=15,
        )
    else:
        params = dict(
            epochs=20,
            snapshot_epochs="1,2,5,10,20",
            channels=32,
            width=128,
            percent=1.0,
            fit_samples=2000,
            structure="5+25+100+10",
            gradnet_epochs=30,
        )
    common = dict(model="cnn", batch_size=64, optimizer="momentum", lr=0.01, schedule="constant", seed=0, **params)
    names = ["mnist", "fashion-mnist"] + ([] if quick else ["cifar10"])
    return [{"key": name, "title": name, "probe": "gradnet", "params": dict(common, data=name)} for name in names]


def gradnet_reference_plan(quick: bool) -> list[dict[str, Any]]:
    """``nnprobe reproduce gradnet --protocol reference``: the GradNet reference's protocol (design note
    ``gradnet.md``) on MNIST and Fashion-MNIST (and CIFAR-10 in the full run, when present).

    Base: the reference's two-conv CNN (``refcnn``; 32 maps with ``quick``, 64 otherwise), SGD lr 0.05, weight
    decay 5e-4, batch 64, the rate halved every quarter of the run (the reference: every 25 of 100 epochs), random
    crops of the images padded by 2 (4 on CIFAR-10), with horizontal flips on Fashion-MNIST and CIFAR-10 (a
    mirrored garment is the same garment; a mirrored digit is not). Gradients of the loss with the base's weight
    decay (``grad_weight_decay`` 5e-4) w.r.t. the layer weights only; per example and per layer the top 15 % by
    magnitude kept; min-max + signed square root; a new random label per training image every GradNet epoch;
    GradNet ``5+100+25``, N(0, 0.02), SGD lr 0.01, 25 images a step (the reference trains 200 epochs; here 20
    with ``quick`` and in the full run).

    >>> [(e["params"]["model"], e["params"]["augment"]) for e in gradnet_reference_plan(quick=True)]
    [('refcnn', 'crop'), ('refcnn', 'crop+flip')]
    """
    if quick:
        params = dict(
            samples_per_class=300,
            test_samples_per_class=100,
            epochs=4,
            snapshot_epochs="1,4",
            channels=32,
            lr_step_epochs=1,
            gradnet_epochs=20,
        )
    else:
        params = dict(epochs=20, snapshot_epochs="1,2,5,10,20", channels=64, lr_step_epochs=5, gradnet_epochs=20)
    common = dict(
        model="refcnn",
        batch_size=64,
        optimizer="sgd",
        lr=0.05,
        weight_decay=5e-4,
        schedule="epoch_step",
        lr_step_factor=0.5,
        seed=0,
        weights_only=True,
        selection="per_example_topk",
        percent=15.0,
        grad_normalize="minmax_sqrt",
        grad_weight_decay=5e-4,
        labels_per_sample=1,
        label_draw="per_epoch",
        target="random",
        structure="5+100+25",
        window=1,
        gradnet_optimizer="sgd",
        gradnet_lr=0.01,
        gradnet_batch_size=25,
        gradnet_weight_decay=0.0,
        gradnet_dropout=0.0,
        gradnet_init_std=0.02,
        **params,
    )
    augment = {"mnist": "crop", "fashion-mnist": "crop+flip", "cifar10": "crop:4+flip"}
    names = ["mnist", "fashion-mnist"] + ([] if quick else ["cifar10"])
    return [
        {
            "key": f"{name}-reference",
            "title": f"{name}, reference protocol",
            "probe": "gradnet",
            "params": dict(common, data=name, augment=augment[name]),
        }
        for name in names
    ]
