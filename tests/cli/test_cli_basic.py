import json

from click.testing import CliRunner

from nnprobe.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_probes():
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("margin", "codes", "gradnet", "train", "data"):
        assert word in result.output


def test_data_list_and_info():
    result = invoke("data", "list")
    assert result.exit_code == 0 and "digits" in result.output and "built in" in result.output
    result = invoke("data", "info", "--data", "digits:0,1")
    assert result.exit_code == 0 and "n_train: 294" in result.output


def test_train_writes_run_directory(tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "train",
        "--data",
        "digits",
        "--width",
        "32",
        "--epochs",
        "2",
        "--no-progress",
        "--out",
        str(out),
        "--snapshot-epochs",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "test loss" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["options"] == {"width": 32}
    assert (out / "checkpoints" / "epoch_0001.pt").is_file() and (out / "checkpoints" / "final.pt").is_file()


def test_bad_input_is_one_readable_line_not_a_traceback(tmp_path, monkeypatch):
    import nnprobe.data.paths as paths

    monkeypatch.setattr(paths, "SYSTEM_DIRS", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNPROBE_DATA", raising=False)
    cases = [
        (["train", "--data", "imagenet"], "unknown dataset"),
        (["train", "--data", "digits:1,42"], "no class 42"),
        (["train", "--model", "densenet", "--width", "3"], "model 'densenet' does not take option(s) width"),
        (["train", "--model", "resnet", "--depth", "7"], "6n+2"),
        (["train", "--snapshot-epochs", "x"], "bad snapshot epochs"),
        (["train", "--width", "0"], "width must be an integer >= 1, got 0"),
        (["train", "--feature-dim", "0"], "feature_dim must be an integer >= 1"),
        (["codes", "--width", "0"], "width must be an integer >= 1"),
        (["train", "--dropout", "1.5"], "dropout must be a finite number in [0.0, 1.0)"),
        (["train", "--data", "synthetic:gauss,k=1"], "a classifier needs at least two"),
        (["train", "--snapshot-epochs", "5", "--epochs", "2"], "come after the last epoch"),
        (["codes", "--activation", "tanh"], "needs ReLU units"),
        (["train", "--data-dir", str(tmp_path / "nowhere")], "does not exist"),
        (["margin", "--multi-class", "ovr", "--log-spaced", "-1"], "log_spaced must be an integer >= 0"),
        (["gradnet", "--gradnet-dropout", "1.5"], "gradnet_dropout must be a finite number"),
        (["train", "--data", "mnist", "--data-dir", str(tmp_path)], "nnprobe data fetch mnist"),
    ]
    for args, fragment in cases:
        result = CliRunner().invoke(main, args + ["--out", str(tmp_path / "r"), "--no-progress"])
        assert result.exit_code != 0, args
        assert fragment in result.output, (args, result.output)
        assert "Traceback" not in result.output
