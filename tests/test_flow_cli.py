import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_flow_synthetic import shifted, textured

from flow.io import read_flo, write_flo

pytestmark = pytest.mark.slow  # end-to-end: each test runs the CLI in a subprocess

REPO = Path(__file__).resolve().parent.parent


def _flow_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "flow", *args, f"hydra.run.dir={tmp_path / 'hydra'}"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    a = textured(96, 136, seed=7)
    b = shifted(a, 3, -2)
    cv2.imwrite(str(tmp_path / "a.png"), a[..., ::-1])
    cv2.imwrite(str(tmp_path / "b.png"), b[..., ::-1])
    gt = np.zeros((96, 136, 2), np.float32)
    gt[...] = (3, -2)
    write_flo(tmp_path / "gt.flo", gt)
    return tmp_path / "a.png", tmp_path / "b.png", tmp_path / "gt.flo"


@pytest.mark.parametrize("method", ["block", "dis", "farneback"])
def test_flow_cli_writes_flow_picture_and_metrics(tmp_path: Path, pair: tuple[Path, Path, Path], method: str) -> None:
    a, b, gt = pair
    out = tmp_path / "out" / "f.flo"
    result = _flow_cli(tmp_path, str(a), str(b), str(out), f"flow.method={method}", f"flow.gt={gt}",
                       "motion.search=16")
    assert result.returncode == 0, result.stderr
    flow = read_flo(out)
    assert flow.shape == (96, 136, 2)
    picture = cv2.imread(str(out.with_suffix(".png")))
    assert picture.shape == (96, 136, 3)
    metrics = json.loads(result.stdout.strip())
    assert metrics["method"] == method and metrics["epe"] < 0.5 and metrics["fl_all"] < 5


def test_flow_cli_without_gt_prints_nothing(tmp_path: Path, pair: tuple[Path, Path, Path]) -> None:
    a, b, _ = pair
    result = _flow_cli(tmp_path, str(a), str(b), str(tmp_path / "f.flo"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and (tmp_path / "f.flo").is_file()


def test_flow_cli_bad_input(tmp_path: Path, pair: tuple[Path, Path, Path]) -> None:
    a, _, gt = pair
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), textured(50, 60)[..., ::-1])
    result = _flow_cli(tmp_path, str(a), str(small), str(tmp_path / "f.flo"))
    assert result.returncode == 2 and "small.png is 60x50" in result.stderr and "Traceback" not in result.stderr
    result = _flow_cli(tmp_path, str(a), str(a), str(tmp_path / "f.flo"), "flow.method=raft")
    assert result.returncode == 2 and "raft" in result.stderr
    corrupt = tmp_path / "corrupt.flo"
    corrupt.write_bytes(b"PIEH" + bytes(3))
    result = _flow_cli(tmp_path, str(a), str(a), str(tmp_path / "f.flo"), f"flow.gt={corrupt}")
    assert result.returncode == 2 and "corrupt.flo" in result.stderr
    assert not (tmp_path / "f.flo").exists() and not (tmp_path / "f.png").exists()  # nothing that looks complete
    result = _flow_cli(tmp_path, str(a), str(tmp_path / "missing.png"), str(tmp_path / "f.flo"))
    assert result.returncode == 2 and "missing.png" in result.stderr


def test_flow_cli_on_kitti_example(tmp_path: Path, shared_data: Path) -> None:
    kitti = shared_data / "kitti_flow_example"
    if not (kitti / "flow_gt.png").is_file():
        pytest.skip(f"{kitti} is absent")
    out = tmp_path / "kitti.flo"
    result = _flow_cli(tmp_path, str(kitti / "frame1.png"), str(kitti / "frame2.png"), str(out),
                       "flow.method=dis", "flow.preset=fast", f"flow.gt={kitti / 'flow_gt.png'}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["valid_pixels"] > 50000 and 0 < metrics["epe"] < 100 and 0 <= metrics["fl_all"] <= 100
