"""Saved checkpoints as curve points: training order from metadata or file names, every kind of file loaded (whole
modules, nnprobe checkpoints, state dicts through a factory, Lightning's prefixed keys, Hugging Face folders), and
``nnprobe track`` interrupted after 2 of 5 checkpoints and resumed without measuring those 2 again."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.tracking import ProbeSet, ProbeSetConfig, find_checkpoints, load_model, track_checkpoints
from nnprobe.tracking import track as track_module
from nnprobe.tracking.checkpoints import find_prefix
from nnprobe.tracking.measure import measure_point as real_measure_point
from nnprobe.tracking.measure import probe_configs
from nnprobe.training import save_checkpoint

DATA = "digits:0,1,2"


def write_plain_loop_checkpoints(make, folder, epochs=5):
    """What a plain loop leaves: ``torch.save(model.state_dict(), f"epoch_{e}.pt")`` after each epoch."""
    ds = load_dataset(DATA)
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    folder.mkdir()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(ds.n_train)
        for i in range(0, ds.n_train, 64):
            idx = order[i : i + 64]
            loss = F.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch.save(model.state_dict(), folder / f"epoch_{epoch}.pt")
    return model


def test_training_order_comes_from_metadata_else_from_the_file_name(tiny_nets, tmp_path):
    sd = tiny_nets.make().state_dict()
    lit = tmp_path / "lit"
    lit.mkdir()
    for epoch, step in ((2, 30), (0, 10), (1, 20)):  # names that sort wrongly; the metadata decides
        torch.save(
            {
                "epoch": epoch,
                "global_step": step,
                "pytorch-lightning_version": "2.6",
                "state_dict": {f"model.{k}": v for k, v in sd.items()},
            },
            lit / f"z{9 - epoch}.ckpt",
        )
    assert [(c.epoch, c.step, c.order_from) for c in find_checkpoints(lit)] == [
        (0, 10, "lightning"),
        (1, 20, "lightning"),
        (2, 30, "lightning"),
    ]
    hf = tmp_path / "hf"
    for n in (100, 20, 3):
        (hf / f"checkpoint-{n}").mkdir(parents=True)
        (hf / f"checkpoint-{n}" / "trainer_state.json").write_text(json.dumps({"epoch": n / 10, "global_step": n}))
    assert [(c.step, c.epoch) for c in find_checkpoints(str(hf / "checkpoint-*"))] == [(3, 0.3), (20, 2.0), (100, 10.0)]
    files = tmp_path / "files"
    files.mkdir()
    for epoch in (10, 2, 1):
        torch.save(sd, files / f"run3_epoch_{epoch}.pt")
        torch.save(sd, files / f"step-{epoch * 100}.pth")
    assert [c.epoch for c in find_checkpoints(str(files / "run3_*.pt"))] == [1, 2, 10]  # numbers, not text order
    assert [c.step for c in find_checkpoints(str(files / "step-*"))] == [100, 200, 1000]
    torch.save(sd, files / "final.pt")
    with pytest.raises(NNProbeError, match="training order"):
        find_checkpoints(str(files / "*.pt"))
    with pytest.raises(NNProbeError, match="no checkpoint matches"):
        find_checkpoints(str(tmp_path / "nothing_*.pt"))


def test_prefixes_are_found_or_named():
    saved = ["model.0.weight", "model.0.bias", "loss_fn.weight"]
    assert find_prefix(saved, ["0.weight", "0.bias"]) == "model."
    assert find_prefix(["0.weight", "0.bias"], ["0.weight", "0.bias"]) == ""
    assert find_prefix(saved, ["0.weight", "0.bias"], prefix="model.") == "model."
    with pytest.raises(NNProbeError, match="several prefixes"):
        find_prefix(["a.0.weight", "b.0.weight"], ["0.weight"])
    with pytest.raises(NNProbeError, match="under prefix 'net.'"):
        find_prefix(saved, ["0.weight"], prefix="net.")
    with pytest.raises(NNProbeError, match="do not fit"):
        find_prefix(saved, ["head.weight"])


def test_every_kind_of_checkpoint_loads_the_same_weights(tiny_nets, tmp_path):
    trained = tiny_nets.make()
    torch.nn.init.normal_(trained[1].weight)
    trained[2].running_mean.fill_(0.25)
    sd = trained.state_dict()
    torch.save(trained, tmp_path / "whole.pt")
    torch.save(sd, tmp_path / "plain.pt")
    torch.save({"epoch": 1, "model_state_dict": sd, "optimizer": {}}, tmp_path / "dict.pt")
    torch.save(
        {
            "epoch": 0,
            "global_step": 5,
            "pytorch-lightning_version": "2.6",
            "state_dict": {f"net.{k}": v for k, v in sd.items()},
        },
        tmp_path / "lit.ckpt",
    )
    save_checkpoint(tmp_path / "nnprobe.pt", trained, epoch=1)
    for name in ("whole.pt", "plain.pt", "dict.pt", "lit.ckpt", "nnprobe.pt"):
        loaded = load_model(tmp_path / name, "tinynets:make")
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in sd.items()), name
    assert torch.equal(load_model(tmp_path / "whole.pt").state_dict()["1.weight"], sd["1.weight"])
    with pytest.raises(NNProbeError, match="model-factory"):
        load_model(tmp_path / "plain.pt")
    safetensors = pytest.importorskip("safetensors.torch")
    folder = tmp_path / "checkpoint-7"
    folder.mkdir()
    safetensors.save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "model.safetensors"))
    loaded = load_model(folder, "tinynets:make")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in sd.items())


def test_track_interrupted_after_two_of_five_checkpoints_resumes_without_measuring_them_again(
    tiny_nets, tmp_path, monkeypatch
):
    write_plain_loop_checkpoints(tiny_nets.make, tmp_path / "ckpts")
    pattern, out = str(tmp_path / "ckpts" / "epoch_*.pt"), tmp_path / "track"
    config = ProbeSetConfig(train=120, test=40)

    def stop_after_two(checkpoint, point):
        if checkpoint.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        track_checkpoints(pattern, "margin", DATA, out, factory="tinynets:make", config=config, on_point=stop_after_two)
    state = json.loads((out / "state.json").read_text())
    first = json.loads((out / "curve.json").read_text())["points"]
    assert state["status"] == "interrupted" and [p["epoch"] for p in first] == [1, 2]

    measured = []

    def counting(model, probe_set, configs, *, seed=0, output=None):
        measured.append(model)
        return real_measure_point(model, probe_set, configs, seed=seed, output=output)

    monkeypatch.setattr(track_module, "measure_point", counting)
    result = CliRunner().invoke(
        main,
        [
            "track",
            "--checkpoints",
            pattern,
            "--probe",
            "margin",
            "--data",
            DATA,
            "--train-rows",
            "120",
            "--test-rows",
            "40",
            "--model-factory",
            "tinynets:make",
            "--out",
            str(out),
            "--resume",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 checkpoint(s) measured before, kept" in result.output and "measured 3 checkpoint(s)" in result.output
    assert len(measured) == 3  # epochs 3, 4, 5 only
    points = json.loads((out / "curve.json").read_text())["points"]
    assert [p["epoch"] for p in points] == [1, 2, 3, 4, 5]
    assert points[:2] == first  # kept as written, not recomputed
    assert json.loads((out / "state.json").read_text())["status"] == "done"
    assert (out / "curves.png").is_file() and len((out / "metrics.jsonl").read_text().splitlines()) == 5
    # each point is the measurement of its own checkpoint (the 5th: the last weights)
    last = load_model(tmp_path / "ckpts" / "epoch_5.pt", "tinynets:make")
    expected, _ = real_measure_point(last, ProbeSet.of(DATA, config), probe_configs("margin"))
    assert points[-1]["summaries"] == expected


def test_track_refuses_bad_input_before_writing(tiny_nets, tmp_path):
    write_plain_loop_checkpoints(tiny_nets.make, tmp_path / "ckpts", epochs=1)
    pattern = str(tmp_path / "ckpts" / "*.pt")
    runner = CliRunner()
    no_factory = runner.invoke(main, ["track", "--checkpoints", pattern, "--data", DATA, "--out", str(tmp_path / "a")])
    assert no_factory.exit_code != 0 and "--model-factory" in no_factory.output and not (tmp_path / "a").exists()
    no_data = runner.invoke(main, ["track", "--checkpoints", pattern, "--out", str(tmp_path / "b")])
    assert no_data.exit_code != 0 and "--probe-set" in no_data.output
    bad_setting = runner.invoke(
        main,
        [
            "track",
            "--checkpoints",
            pattern,
            "--data",
            DATA,
            "--model-factory",
            "tinynets:make",
            "--set",
            "margin.C=-1",
            "--out",
            str(tmp_path / "c"),
        ],
    )
    assert bad_setting.exit_code != 0 and "C must be" in bad_setting.output
    not_a_probe = runner.invoke(
        main,
        [
            "track",
            "--checkpoints",
            pattern,
            "--data",
            DATA,
            "--probe",
            "train",
            "--model-factory",
            "tinynets:make",
            "--out",
            str(tmp_path / "d"),
        ],
    )
    assert not_a_probe.exit_code != 0 and "cannot be tracked" in not_a_probe.output


def test_track_checkpoints_takes_the_probe_set_sizes_as_the_tracker_does(tiny_nets, tmp_path):
    write_plain_loop_checkpoints(tiny_nets.make, tmp_path / "ckpts", epochs=2)
    pattern = str(tmp_path / "ckpts" / "epoch_*.pt")
    result = track_checkpoints(pattern, "margin", DATA, tmp_path / "a", factory="tinynets:make", train=90, test=30)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert result.measured == 2 and (config["probe_set"]["n_train"], config["probe_set"]["n_test"]) == (90, 30)
    with pytest.raises(NNProbeError, match="one way"):
        track_checkpoints(
            pattern, "margin", DATA, tmp_path / "b", factory="tinynets:make", config=ProbeSetConfig(), train=90
        )
    assert not (tmp_path / "b").exists()
