import subprocess
import sys

from pipeline.cli import split_args


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    out = _run("--help")
    assert out.returncode == 0
    for name in ["run", "preprocess", "evaluate", "train", "encode", "decode", "flow"]:
        assert f"  {name}" in out.stdout


def test_unknown_command_fails_with_usage():
    out = _run("frobnicate")
    assert out.returncode == 2
    assert "unknown command 'frobnicate'" in out.stderr


def test_split_args_keeps_hydra_flags_and_overrides():
    positional, hydra_args = split_args(["a.png", "--cfg", "job", "x=1", "b.bin", "-m", "hydra.run.dir=out"])
    assert positional == ["a.png", "b.bin"]
    assert hydra_args == ["--cfg", "job", "-m", "x=1", "hydra.run.dir=out"]  # flags first: Hydra's parser needs it
