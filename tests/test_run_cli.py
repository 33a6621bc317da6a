"""End to end: `python -m pipeline run` on the embedded sample, then standalone decoding of its bitstream."""

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # end-to-end: each test runs the CLI in a subprocess

QUICK = ["dataset.frames_per_sequence=3", "rate.quality=36", "rate.max_iterations=3"]


def _png_with_garbage_pixels(png: bytes) -> bytes:
    """The PNG with its image data replaced by bytes that are no zlib stream, under a valid chunk checksum."""
    start = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[start : start + 4])
    chunk = b"IDAT" + bytes((37 * i + 11) % 256 for i in range(length))
    return png[:start + 4] + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[start + 12 + length :]


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    result = _cli("run", *QUICK, f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ALL" in result.stdout and "noise floor" in result.stdout  # the printed summary
    assert "ALL" in (out / "cli.log").read_text()  # the log file holds what happened
    return out


def test_run_writes_metrics_frames_and_bitstreams(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    frames = metrics["frames"]
    assert [f["type"] for f in frames] == ["I", "P", "P"]
    for row in frames:
        assert {"frame", "type", "bits", "bpp", "psnr", "msssim", "flow_consistency"} <= row.keys()
        assert row["bits"] > 0 and 10 < row["psnr"] < 60 and 0.5 < row["msssim"] <= 1
    assert frames[0]["flow_consistency"] is None and frames[1]["flow_consistency"] >= 0
    assert metrics["summary"]["frames"] == 3 and metrics["status"] == "complete"
    assert 0 <= metrics["summary"]["flow_noise_floor"] < metrics["summary"]["flow_consistency"]
    pngs = sorted((run_dir / "frames").rglob("*_leftImg8bit.png"))
    assert [p.name for p in pngs] == [f["frame"] for f in frames]
    assert len(list((run_dir / "bitstreams").rglob("*.bin"))) == 1


def test_run_scores_flow_consistency_as_evaluate_does(run_dir):
    from omegaconf import OmegaConf

    from pipeline.evaluation.flow_scores import FlowConsistency
    from pipeline.imageio import read_image
    from pipeline.paths import REPO_DIR

    metrics = json.loads((run_dir / "metrics.json").read_text())
    names = [f["frame"] for f in metrics["frames"]]
    originals = [read_image(next((REPO_DIR / "data" / "sample").rglob(n))) for n in names]
    decoded = [read_image(next((run_dir / "frames").rglob(n))) for n in names]
    options = OmegaConf.to_container(OmegaConf.load(REPO_DIR / "conf" / "flow" / "default.yaml").consistency)
    pooled = FlowConsistency(options)(originals, decoded)  # evaluate's definition: pixels pooled over pairs
    assert metrics["summary"]["flow_consistency"] == pytest.approx(pooled, rel=1e-6)


def test_standalone_decode_matches_the_run(run_dir, tmp_path):
    stream = next((run_dir / "bitstreams").rglob("*.bin"))
    out = tmp_path / "decoded"
    result = _cli("decode", str(stream), str(out), f"hydra.run.dir={tmp_path / 'hydra'}")
    assert result.returncode == 0, result.stderr[-2000:]
    originals = sorted((run_dir / "frames").rglob("*.png"))
    assert len(originals) == 3
    for original in originals:
        assert np.array_equal(cv2.imread(str(original)), cv2.imread(str(out / original.name)))


def test_decode_at_half_and_quarter_size_from_the_same_stream(run_dir, tmp_path):
    stream = next((run_dir / "bitstreams").rglob("*.bin"))
    full = sorted((run_dir / "frames").rglob("*.png"))
    h, w = cv2.imread(str(full[0])).shape[:2]
    for scale, factor in (("0.5", 2), ("0.25", 4)):
        out = tmp_path / f"at{scale}"
        result = _cli("decode", str(stream), str(out), f"scale={scale}", f"hydra.run.dir={tmp_path / 'hydra'}")
        assert result.returncode == 0, result.stderr[-2000:]
        for original in full:
            small = cv2.imread(str(out / original.name))
            assert small.shape == (-(-h // factor), -(-w // factor), 3)
            reference = cv2.resize(cv2.imread(str(original)), small.shape[1::-1], interpolation=cv2.INTER_AREA)
            assert np.abs(small.astype(int) - reference).mean() < 6  # the same picture, not just the same size
    image_stream = tmp_path / "one.bin"
    assert _cli("encode", str(full[0]), str(image_stream), "codec.iterations=2",
                f"hydra.run.dir={tmp_path / 'hydra'}").returncode == 0
    result = _cli("decode", str(image_stream), str(tmp_path / "one.png"), "scale=0.25",
                  f"hydra.run.dir={tmp_path / 'hydra'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert cv2.imread(str(tmp_path / "one.png")).shape == (-(-h // 4), -(-w // 4), 3)
    result = _cli("decode", str(stream), str(tmp_path / "bad"), "scale=0.3", f"hydra.run.dir={tmp_path / 'hydra'}")
    assert result.returncode == 2 and "scale=0.3 is not supported; expected one of 1.0, 0.5, 0.25" in result.stderr
    assert not (tmp_path / "bad").exists()


def test_truncated_sequence_names_the_frame(run_dir, tmp_path):
    stream = next((run_dir / "bitstreams").rglob("*.bin"))
    cut = tmp_path / "cut.bin"
    cut.write_bytes(stream.read_bytes()[:-50])
    result = _cli("decode", str(cut), str(tmp_path / "out"), f"hydra.run.dir={tmp_path / 'hydra'}")
    assert result.returncode == 2
    assert "frame 2" in result.stderr and "truncated" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written left looking complete


def test_cfg_job_prints_the_composed_config():
    result = _cli("run", "mode=diff", "--cfg", "job", "rate.mode=iterations")
    assert result.returncode == 0, result.stderr
    assert "mode: diff" in result.stdout and "_target_: flow.motion.BlockMotion" in result.stdout


def test_unset_dataset_root_is_a_clear_error(tmp_path):
    result = _cli("run", "dataset=cityscapes", f"hydra.run.dir={tmp_path / 'h'}")
    assert result.returncode == 2
    assert "dataset.root" in result.stderr and "Traceback" not in result.stderr


def test_missing_dataset_root_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere"
    result = _cli("run", "dataset=cityscapes", f"dataset.root={missing}", f"hydra.run.dir={tmp_path / 'h'}")
    assert result.returncode == 2
    assert str(missing) in result.stderr


def _two_sequences(root: Path) -> Path:
    """Folders a/ and b/ of two 96x64 PNG frames each."""
    for seq in ("a", "b"):
        (root / seq).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(root / seq / f"f{i}.png"), np.full((64, 96, 3), 40 * i, np.uint8))
    return root


def test_a_corrupt_frame_stops_the_run_before_anything_is_coded(tmp_path):
    root = _two_sequences(tmp_path / "frames")
    (root / "b" / "f1.png").write_bytes((root / "b" / "f1.png").read_bytes()[:60])  # truncated PNG
    out = tmp_path / "out"
    result = _cli("run", "dataset=folder", f"dataset.root={root}", f"hydra.run.dir={out}")
    assert result.returncode == 2 and "f1.png" in result.stderr and "corrupt" in result.stderr
    assert not (out / "bitstreams").exists() and not (out / "frames").exists()


def test_a_run_that_fails_midway_marks_its_outputs_failed(tmp_path):
    root = _two_sequences(tmp_path / "frames")
    # Checksums intact, pixels undecodable: it passes the up-front check and fails in the second sequence.
    (root / "b" / "f1.png").write_bytes(_png_with_garbage_pixels((root / "b" / "f1.png").read_bytes()))
    out = tmp_path / "out"
    result = _cli("run", "dataset=folder", f"dataset.root={root}", f"hydra.run.dir={out}")
    assert result.returncode != 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "failed" and [s["name"] for s in metrics["sequences"]] == ["a"]
