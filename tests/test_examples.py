"""The scripts in examples/ run and check their own results."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(*args):
    done = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_toy_dag():
    out = run(EXAMPLES / "toy_dag.py")
    assert "function unchanged: True" in out


def test_main_job(tmp_path):
    out = run(EXAMPLES / "main_job.py", "--epochs", "1", "--hidden", "16", "--dataset",
              "digits", "--out", tmp_path)
    assert "Path-SGD" in out and (tmp_path / "curves.png").exists()


def test_lr_sweep():
    out = run(EXAMPLES / "lr_sweep.py", "--epochs", "1", "--hidden", "8", "--dataset",
              "digits", "--grid", "0.1", "0.01")
    assert out.count("best step size") == 3
