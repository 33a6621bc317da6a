"""Batch preprocessing with a stand-in coder: manifest, resume, failures, retries, full disk, kill -9.

The stand-in writes each frame zlib-compressed (so outputs are checkable without the codec weights); the
engine, manifest and resume logic under test are the real ones. tests/test_preprocess_cli.py runs the real
coder through the CLI.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import pipeline.cli  # noqa: F401 - registers the ${repo:} resolver
from pipeline.config_hash import config_hash
from pipeline.frames import Sequence
from pipeline.preprocess import Manifest, RunAborted, local, preprocess
from pipeline.preprocess.jobs import plan, sequence_key
from pipeline.video.sequence import png_name

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
MAGIC = b"STND"


# ---- stand-in coder ---------------------------------------------------------------------------------------
class StandIn:
    """Writes MAGIC, then per frame (h, w, length) + zlib(frame), via a temporary name like the real coder.

    ``cfg.standin``: ``sleep`` seconds per frame; ``transient`` sequence names raising RuntimeError once and
    ``crash`` names killing their worker process once (a marker file in ``marks`` remembers the first attempt),
    holding the pool's progress-queue lock when ``crash_locked`` is set;
    ``enospc`` names failing with a full disk mid-file.
    """

    def __init__(self, cfg: DictConfig) -> None:
        opts = cfg.get("standin") or {}
        self.sleep = float(opts.get("sleep", 0.0))
        self.transient = set(opts.get("transient", []))
        self.crash = set(opts.get("crash", []))
        self.crash_locked = bool(opts.get("crash_locked", False))
        self.enospc = set(opts.get("enospc", []))
        self.marks = Path(opts.get("marks", "."))

    def __call__(self, sequence: Sequence, stream: Path, frames_dir: Path | None, on_frame=None) -> dict:
        mark = self.marks / f"{sequence.name}.attempted"
        if sequence.name in self.transient | self.crash and not mark.exists():
            mark.touch()
            if sequence.name in self.crash:
                if self.crash_locked:  # as if killed in the middle of reporting a frame
                    local._FRAMES["queue"]._wlock.acquire()
                os._exit(3)  # the worker process dies, as under the OOM killer
            raise RuntimeError(f"transient failure on {sequence.name}")
        tmp = stream.with_name(stream.name + ".tmp")
        bits = pixels = 0
        try:
            with open(tmp, "wb") as f:
                f.write(MAGIC)
                for frame in sequence:
                    data = zlib.compress(frame.image.tobytes(), 1)
                    h, w = frame.image.shape[:2]
                    f.write(struct.pack("<III", h, w, len(data)) + data)
                    if sequence.name in self.enospc:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
                    if frames_dir is not None:
                        frames_dir.mkdir(parents=True, exist_ok=True)
                        cv2.imwrite(str(frames_dir / png_name(frame.name)), frame.image[:, :, ::-1])
                    bits, pixels = bits + 8 * (12 + len(data)), pixels + h * w
                    if on_frame is not None:
                        on_frame()
                    time.sleep(self.sleep)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, stream)
        finally:
            tmp.unlink(missing_ok=True)
        return {"bpp": bits / pixels, "psnr": None, "msssim": None, "flow_consistency": None}


def decode_standin(path: Path) -> list[np.ndarray]:
    data = path.read_bytes()
    assert data[:4] == MAGIC, f"{path}: bad magic"
    frames, pos = [], 4
    while pos < len(data):
        h, w, n = struct.unpack_from("<III", data, pos)
        pos += 12
        frames.append(np.frombuffer(zlib.decompress(data[pos : pos + n]), np.uint8).reshape(h, w, 3))
        pos += n
    return frames


# ---- fixtures ---------------------------------------------------------------------------------------------
def make_dataset(root: Path, sequences: int = 4, frames: int = 4, size: int = 64) -> Path:
    rng = np.random.default_rng(0)
    for s in range(sequences):
        folder = root / f"seq{s}"
        folder.mkdir(parents=True)
        base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        for f in range(frames):
            cv2.imwrite(str(folder / f"frame{f:03d}.png"), np.roll(base, 2 * f, axis=1))
    return root


def make_cfg(data: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["dataset=folder", f"dataset.root={data}", "preprocess.progress=false",
                                            *overrides])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


def ok_records(out: Path) -> list[dict]:
    return [r for r in Manifest(out / "manifest.jsonl").read() if r["status"] == "ok"]


# ---- manifest and planning --------------------------------------------------------------------------------
def _record(key: str, status: str = "ok", **values) -> dict:
    from pipeline.preprocess.manifest import FIELDS

    return {**dict.fromkeys(FIELDS), "sequence": key, "status": status, **values}


def test_manifest_latest_wins_and_torn_lines_are_skipped(tmp_path: Path):
    manifest = Manifest(tmp_path / "manifest.jsonl")
    manifest.append(_record("a", "failed", error="boom"))
    manifest.append(_record("b"))
    with manifest.path.open("ab") as f:
        f.write(b'{"sequence": "c", "sta')  # a kill -9 in the middle of a write
    manifest.append(_record("a", bytes=10))
    with pytest.warns(UserWarning, match="malformed manifest line"):
        latest = manifest.latest()
    assert set(latest) == {"a", "b"} and latest["a"]["status"] == "ok" and latest["a"]["bytes"] == 10
    with pytest.warns(UserWarning):
        manifest.compact()
    lines = manifest.path.read_text().splitlines()
    assert [json.loads(line)["sequence"] for line in lines] == ["a", "b"]


def test_manifest_rejects_incomplete_records(tmp_path: Path):
    with pytest.raises(ValueError, match="lacks fields"):
        Manifest(tmp_path / "m.jsonl").append({"sequence": "a"})


def test_plan_mirrors_layout_and_rejects_escaping_paths(data: Path):
    cfg = make_cfg(data)
    from hydra.utils import instantiate

    tasks = plan(instantiate(cfg.dataset), write_frames=True)
    assert [t.output for t in tasks] == [f"seq{i}.bin" for i in range(4)]  # beside the folder, not inside it
    assert tasks[0].frames == 4 and tasks[0].frame_names[0] == "frame000.png"
    assert sequence_key(".", "x") == "x"
    with pytest.raises(ValueError, match="inside the dataset root"):
        sequence_key("../up", "x")


def test_config_hash_follows_coding_keys_only(data: Path):
    keys = list(make_cfg(data).preprocess.hash_keys)
    base = config_hash(make_cfg(data), keys)
    assert config_hash(make_cfg(data, "preprocess.workers=7"), keys) == base
    assert config_hash(make_cfg(data, "codec.iterations=3"), keys) != base


def test_config_hash_covers_weights_content_not_their_path(data: Path, tmp_path: Path):
    keys = list(make_cfg(data).preprocess.hash_keys)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "w.safetensors").write_bytes(b"weights v1")
        (tmp_path / folder / "w.json").write_text("{}")
    first = config_hash(make_cfg(data, f"codec.weights={tmp_path / 'a' / 'w'}"), keys)
    assert config_hash(make_cfg(data, f"codec.weights={tmp_path / 'b' / 'w'}"), keys) == first
    (tmp_path / "b" / "w.entropy.safetensors").write_bytes(b"prior")  # a side file of the same weights
    second = config_hash(make_cfg(data, f"codec.weights={tmp_path / 'b' / 'w'}"), keys)
    assert second != first
    (tmp_path / "b" / "w.safetensors").write_bytes(b"weights v2")  # retrained under the same name
    assert config_hash(make_cfg(data, f"codec.weights={tmp_path / 'b' / 'w'}"), keys) not in (first, second)


# ---- runs -------------------------------------------------------------------------------------------------
def test_codes_all_then_rerun_skips_and_repairs(data: Path, tmp_path: Path):
    out = tmp_path / "out"
    cfg = make_cfg(data, "preprocess.workers=0", "preprocess.write_frames=true")
    summary = preprocess(cfg, out, factory=StandIn)
    assert (summary.ok, summary.failed, summary.skipped, summary.exit_code) == (4, 0, 0, 0)
    records = ok_records(out)
    assert len(records) == 4
    for record in records:
        stream = out / record["output"]
        frames = decode_standin(stream)
        assert len(frames) == record["frames"] == 4
        assert record["bytes"] == stream.stat().st_size and len(record["checksum"]) == 64
        png = cv2.imread(str(out / record["frames_dir"] / "frame003.png"))[:, :, ::-1]
        np.testing.assert_array_equal(png, frames[3])
    assert not list(out.rglob("*.tmp"))

    again = preprocess(cfg, out, factory=StandIn)
    assert (again.ok, again.skipped) == (0, 4)

    damaged = out / records[1]["output"]
    damaged.write_bytes(damaged.read_bytes()[:-5])  # same name, wrong content: the checksum catches it
    repaired = preprocess(cfg, out, factory=StandIn)
    assert (repaired.ok, repaired.skipped) == (1, 3)
    decode_standin(damaged)
    assert len(Manifest(out / "manifest.jsonl").read()) == 4  # compacted: one line per sequence

    changed = preprocess(make_cfg(data, "preprocess.workers=0", "preprocess.write_frames=true",
                                  "codec.iterations=3"), out, factory=StandIn)
    assert changed.ok == 4  # another config hash: everything is redone


def test_bad_sequence_is_recorded_and_others_go_on(data: Path, tmp_path: Path, capsys):
    (data / "seq1" / "frame002.png").write_bytes(b"not a png")
    cv2.imwrite(str(data / "seq2" / "frame003.png"), np.zeros((32, 64, 3), np.uint8))
    out = tmp_path / "out"
    cfg = make_cfg(data, "preprocess.workers=2", "preprocess.progress=true", "+standin.crash=[seq3]",
                   f"+standin.marks={tmp_path}")
    summary = preprocess(cfg, out, factory=StandIn)
    assert (summary.ok, summary.failed, summary.exit_code) == (2, 2, 1)
    assert (tmp_path / "seq3.attempted").exists()  # seq3 killed its worker once; the new pool coded it
    err = capsys.readouterr().err
    assert "16/16" in err and "frame/s" in err and "failed: seq1" in err  # progress bar and failure lines
    latest = Manifest(out / "manifest.jsonl").latest()
    assert "cannot decode image" in latest["seq1"]["error"] and "frame002.png" in latest["seq1"]["error"]
    assert "must share a size" in latest["seq2"]["error"]
    assert latest["seq3"]["status"] == "ok" and latest["seq3"]["attempts"] >= 2
    assert not (out / "seq1" / "seq1.bin").exists() and not (out / "seq2" / "seq2.bin").exists()
    assert {r["sequence"] for r in ok_records(out)} == {"seq0", "seq3"}
    assert latest["seq0"]["worker"] != f"{os.uname().nodename}:{os.getpid()}"  # coded in a pool process


def test_worker_killed_holding_the_progress_lock_does_not_hang_the_run(data: Path, tmp_path: Path):
    out = tmp_path / "out"
    cfg = make_cfg(data, "preprocess.workers=2", "preprocess.progress=true", "+standin.crash=[seq1]",
                   "+standin.crash_locked=true", "+standin.sleep=0.05", f"+standin.marks={tmp_path}")
    result = {}
    run = threading.Thread(target=lambda: result.update(summary=preprocess(cfg, out, factory=StandIn)), daemon=True)
    run.start()
    run.join(timeout=120)
    assert not run.is_alive(), "preprocess hung after a worker died holding the progress queue's lock"
    assert (result["summary"].ok, result["summary"].failed) == (4, 0)


def test_unexpected_errors_are_retried(data: Path, tmp_path: Path):
    out = tmp_path / "out"
    cfg = make_cfg(data, "preprocess.workers=0", "+standin.transient=[seq0]", f"+standin.marks={tmp_path}")
    summary = preprocess(cfg, out, factory=StandIn)
    assert summary.ok == 4
    assert Manifest(out / "manifest.jsonl").latest()["seq0"]["attempts"] == 2

    out2 = tmp_path / "out2"
    (tmp_path / "seq0.attempted").unlink()
    cfg = make_cfg(data, "preprocess.workers=0", "preprocess.max_retries=0", "+standin.transient=[seq0]",
                   f"+standin.marks={tmp_path}")
    summary = preprocess(cfg, out2, factory=StandIn)
    assert (summary.ok, summary.failed) == (3, 1)
    assert "transient failure" in Manifest(out2 / "manifest.jsonl").latest()["seq0"]["error"]


def test_full_disk_stops_with_a_clear_error_and_no_partial_outputs(data: Path, tmp_path: Path):
    out = tmp_path / "out"
    cfg = make_cfg(data, "preprocess.workers=0", "preprocess.write_frames=true", "+standin.enospc=[seq1]")
    with pytest.raises(RunAborted, match="No space left on device"):
        preprocess(cfg, out, factory=StandIn)
    assert not (out / "seq1" / "seq1.bin").exists() and not (out / "seq1" / "seq1.bin.tmp").exists()
    assert not (out / "seq1" / "seq1").exists() and not (out / "seq1" / "seq1.tmp").exists()
    latest = Manifest(out / "manifest.jsonl").latest()
    assert latest["seq0"]["status"] == "ok" and latest["seq1"]["status"] == "failed"
    assert "seq2" not in latest  # the run stopped instead of failing every sequence the same way
    summary = preprocess(make_cfg(data, "preprocess.workers=0", "preprocess.write_frames=true"), out, factory=StandIn)
    assert (summary.ok, summary.skipped) == (3, 1)


def test_full_disk_on_the_manifest_is_a_clear_error(data: Path, tmp_path: Path, monkeypatch):
    def full(self, record):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(Manifest, "append", full)
    with pytest.raises(RunAborted, match=r"cannot append to .*manifest.jsonl.*No space left"):
        preprocess(make_cfg(data, "preprocess.workers=0"), tmp_path / "out", factory=StandIn)


def test_unwritable_output_and_concurrent_runs_are_refused(data: Path, tmp_path: Path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunAborted, match="is not writable"):
        preprocess(make_cfg(data, "preprocess.workers=0"), tmp_path / "file" / "out", factory=StandIn)
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".preprocess.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RunAborted, match="another preprocess run"):
            preprocess(make_cfg(data, "preprocess.workers=0"), out, factory=StandIn)


# ---- kill -9 in the middle, then resume -------------------------------------------------------------------
_DRIVER = """
import sys
sys.path.insert(0, {tests!r})
from test_preprocess import StandIn, make_cfg
from pathlib import Path
from pipeline.preprocess import preprocess
if __name__ == "__main__":
    cfg = make_cfg(Path({data!r}), *sys.argv[2:])
    sys.exit(preprocess(cfg, sys.argv[1], factory=StandIn).exit_code)
"""


def wait_for_ok_lines(manifest: Path, proc: subprocess.Popen, count: int, timeout: float = 90.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = manifest.read_text().count('"status": "ok"') if manifest.exists() else 0
        if lines >= count:
            return lines
        if proc.poll() is not None:
            raise AssertionError(f"run ended (rc {proc.returncode}) before {count} sequences were done")
        time.sleep(0.05)
    raise AssertionError(f"no {count} finished sequences within {timeout} s")


def kill_group(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """kill -9 the driver, then check its workers follow it (none may keep writing outputs)."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    alive = subprocess.run(["ps", "-o", "pid,ppid,stat,etime,args", "-g", str(proc.pid)], capture_output=True,
                           text=True).stdout
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"worker processes outlived the killed driver:\n{alive}")


@pytest.mark.slow
def test_kill_9_in_the_middle_then_rerun_completes_each_sequence_once(data: Path, tmp_path: Path):
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(tests=str(Path(__file__).parent), data=str(data)))
    out = tmp_path / "out"
    args = [sys.executable, str(script), str(out), "preprocess.workers=2", "preprocess.write_frames=true",
            "+standin.sleep=0.4"]
    proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = wait_for_ok_lines(out / "manifest.jsonl", proc, 1)
    kill_group(proc)
    assert done < 4, "the run finished before it could be killed; slow the stand-in down"
    assert len(ok_records(out)) < 4

    # The rerun codes in its own process (workers=0): resuming is the driver's job, whatever the engine.
    rerun = subprocess.run([*args[:3], "preprocess.workers=0", "preprocess.write_frames=true"], capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    records = Manifest(out / "manifest.jsonl").read()
    assert sorted(r["sequence"] for r in records) == [f"seq{i}" for i in range(4)]
    assert all(r["status"] == "ok" for r in records)
    for record in records:
        frames = decode_standin(out / record["output"])
        assert len(frames) == 4
        assert sorted(p.name for p in (out / record["frames_dir"]).iterdir()) == [f"frame{i:03d}.png" for i in range(4)]
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.old"))
