"""The plan of ``nnprobe demo``: one short run of each probe on one dataset, and what the demo page says of each."""

from __future__ import annotations

from typing import Any

# what the demo page says under each probe's verdict
DEMO_TEXT = {
    "margin": "Does the last linear layer point where the max-margin linear SVM on the penultimate features points? "
    "The SVM is the hard-margin multi-class (Crammer-Singer) SVM with free intercepts, the max-margin problem "
    "that gradient descent on cross-entropy approaches; cosines are per class and averaged. The approach "
    "is logarithmic in the number of steps: the curve rises steadily rather than jumping.",
    "codes": "The on/off pattern of all ReLUs is the input's code. Redundancy ratio: (n - distinct codes) / n.",
    "gradnet": "A base MLP is trained on half of the training set; at each snapshot a block-structured GradNet is "
    "trained on per-sample gradients of the other half and tested by summing its outputs over all "
    "candidate labels.",
}


def demo_plan(data: str = "digits", epochs: int = 40, seed: int = 0, device: str = "auto") -> list[dict[str, Any]]:
    """``nnprobe demo``: the three probes on one dataset (the embedded digits by default)."""
    common = dict(data=data, seed=seed, device=device, batch_size=64, lr=0.05, schedule="constant")
    mlp = dict(model="mlp", width=128, depth=2)
    pair = f"{data.split(':')[0]}:0,1"
    return [
        {
            "key": "margin",
            "title": "1. Max-margin probe (Li, Ding & Gao)",
            "probe": "margin",
            "text": DEMO_TEXT["margin"],
            "params": dict(
                common, **mlp, epochs=epochs, log_spaced=6, multi_class="crammer_singer", retrain_epochs=300
            ),
        },
        {
            "key": "margin_2d",
            "title": "A 2-D penultimate layer on two classes",
            "probe": "margin",
            "columns": [
                "experiment",
                "cosine_to_svm",
                "test_agreement",
                "svm_margin",
                "nn_offset_from_svm",
                "nn_offset_from_midpoint",
                "grid_disagreement",
            ],
            "note": "Leaky ReLU activations: with ReLU, one of the two feature units of this easy pair tends to die "
            "during training and the 2-D picture collapses onto one axis.",
            "params": dict(
                common,
                data=pair,
                model="mlp",
                width=64,
                depth=1,
                feature_dim=2,
                activation="leaky_relu",
                epochs=4 * epochs,
                log_spaced=None,
                retrain_epochs=0,
            ),
        },
        {
            "key": "codes",
            "title": "2. Activation codes (He, Lei, Ji & Tao)",
            "probe": "codes",
            "text": DEMO_TEXT["codes"],
            "note": "Same model settings and seed as the max-margin run, so the same trained MLP.",
            "params": dict(common, **mlp, epochs=epochs),
        },
        {
            "key": "gradnet",
            "title": "3. Gradient space: GradNet vs the base network",
            "probe": "gradnet",
            "text": DEMO_TEXT["gradnet"],
            "params": dict(
                common,
                model="mlp",
                width=64,
                depth=2,
                lr=0.01,
                schedule="cosine",
                epochs=max(4, epochs // 4),
                snapshot_epochs=f"1,3,{max(4, epochs // 4)}",
                percent=20.0,
                structure="10+10+10",
                gradnet_epochs=30,
                gradnet_weight_decay=0.0,
                gradnet_dropout=0.0,
            ),
        },
    ]
