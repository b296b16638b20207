import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import dagnet
import dagnet.report
from dagnet.cli import main
from dagnet.data import load_dataset
from dagnet.experiment import ExperimentConfig, run_experiment, select_learning_rate

MNIST = Path(__file__).resolve().parent / "data" / "mnist"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def result(digits):
    config = ExperimentConfig(dataset="digits", hidden=(24, 24), epochs=3,
                              lr={"sgd": 0.1, "adagrad": 0.03, "pathsgd": 0.3})
    return run_experiment(config, data=digits)


class TestExperiment:
    def test_records(self, result, digits):
        assert len(result.records) == 3 * 2 * 4  # optimisers x inits x (epochs + 1)
        first = [r for r in result.records if r["epoch"] == 0]
        # epoch 0: every run starts from the same function
        assert len({round(r["objective"], 12) for r in first}) == 1
        final = {(r["optimizer"], r["init"]): r for r in result.final()}
        assert final["pathsgd", "balanced"]["train_error"] < 0.5
        assert all(0 <= r["test_error"] <= 1 for r in result.records)

    def test_path_sgd_curves_coincide_and_sgd_curves_do_not(self, result):
        assert result.max_difference("pathsgd") < 1e-8
        assert result.max_difference("sgd") > 1e-2
        assert result.max_difference("adagrad") > 1e-2

    def test_files(self, result, tmp_path):
        paths = dagnet.report.write_results(result, tmp_path)
        rows = list(csv.DictReader(open(paths["csv"])))
        assert len(rows) == len(result.records)
        assert set(rows[0]) == set(dagnet.report.COLUMNS)
        summary = json.load(open(paths["json"]))
        assert summary["balanced_vs_unbalanced_max_difference"]["pathsgd"] < 1e-8
        assert paths["png"].stat().st_size > 10_000
        assert "Path-SGD" in dagnet.report.format_table(result)

    def test_divergence_is_recorded_as_nan(self, digits):
        config = ExperimentConfig(dataset="digits", hidden=(16,), epochs=2, dtype="float32",
                                  optimizers=("sgd",), lr={"sgd": 1e30})
        res = run_experiment(config, data=digits)
        assert any(math.isnan(r["objective"]) for r in res.records)

    def test_select_learning_rate(self, digits):
        config = ExperimentConfig(dataset="digits", hidden=(16,), epochs=2)
        lr, table = select_learning_rate(config, "pathsgd", exponents=[0, 1, 2, 6],
                                         data=digits)
        assert [row[0] for row in table] == [1.0, 0.1, 0.01, 1e-6]
        assert lr in (1.0, 0.1, 0.01)  # 1e-6 cannot learn anything in 2 epochs
        best = min(row[1] for row in table if row[2] is not None)
        assert dict((r[0], r[1]) for r in table)[lr] == best

    def test_bad_config(self):
        with pytest.raises(ValueError, match=r"unknown optimiser\(s\) \['adam'\]"):
            ExperimentConfig(optimizers=("adam",))
        with pytest.raises(ValueError, match="learning rate for sgd must be > 0; got -1"):
            ExperimentConfig(lr={"sgd": -1})


class TestCli:
    def test_train_end_to_end(self, tmp_path, capsys):
        code = main(["train", "--dataset", "digits", "--hidden", "12", "--epochs", "1",
                     "--skip", "0", "2", "--dropout", "0.5", "--out", str(tmp_path),
                     "--no-progress"])
        assert code == 0
        out = capsys.readouterr().out
        assert "largest |balanced - unbalanced|" in out
        assert (tmp_path / "curves.png").exists() and (tmp_path / "results.csv").exists()

    def test_mnist_idx_files(self, tmp_path, capsys):
        data = tmp_path / "mnist"
        data.mkdir()
        for kind in ("images-idx3", "labels-idx1"):
            src = MNIST / f"t10k-{kind}-ubyte.gz"
            (data / f"t10k-{kind}-ubyte.gz").symlink_to(src)
            (data / f"train-{kind}-ubyte.gz").symlink_to(src)
        code = main(["train", "--dataset", "mnist", "--data-dir", str(data),
                     "--hidden", "8", "--epochs", "1", "--optimizers", "pathsgd",
                     "--dtype", "float32",
                     "--out", str(tmp_path / "out"), "--no-progress"])
        assert code == 0
        summary = json.load(open(tmp_path / "out" / "summary.json"))
        assert summary["dataset"]["n_train"] == 10000
        assert summary["dataset"]["n_features"] == 784

    def test_missing_data_is_a_clear_error(self, tmp_path, capsys):
        code = main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path),
                     "--no-progress", "--out", str(tmp_path / "o")])
        assert code == 2
        assert "train-images-idx3-ubyte" in capsys.readouterr().err

    def test_unbalanced_init_keeps_the_function(self):
        net = dagnet.layered([5, 8, 8, 3], seed=0)
        skewed = dagnet.unbalanced(net, seed=1)
        x = np.random.default_rng(0).standard_normal((4, 5))
        import torch
        a = net.compile(dtype=torch.float64)(torch.tensor(x))
        b = skewed.compile(dtype=torch.float64)(torch.tensor(x))
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
        changed = [e for e in net.edges
                   if not np.allclose(net.weight(*e), skewed.weight(*e), rtol=1e-3)]
        assert changed
