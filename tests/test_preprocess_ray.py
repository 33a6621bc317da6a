"""The Ray engine against a local 2-CPU cluster started by the test: sharding, retries, failures, resume."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import test_preprocess
from test_preprocess import StandIn, decode_standin, make_cfg, make_dataset

from pipeline.preprocess import Manifest, preprocess
from pipeline.preprocess.ray_engine import gpus_per_task

pytestmark = pytest.mark.slow  # end-to-end: each test runs the CLI in a subprocess

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    # The stand-in lives in this test folder, which Ray's workers do not import from: ship it by value.
    ray.cloudpickle.register_pickle_by_value(test_preprocess)
    try:
        yield
    finally:
        ray.cloudpickle.unregister_pickle_by_value(test_preprocess)
        ray.shutdown()


def test_gpus_per_task():
    assert gpus_per_task("auto", {"CPU": 8}) == 0
    assert gpus_per_task("auto", {"CPU": 8, "GPU": 2}) == 1
    assert gpus_per_task("auto", {"GPU": 2}, device="cpu") == 0
    assert gpus_per_task(0.5, {"GPU": 1}) == 0.5
    with pytest.raises(ValueError, match="num_gpus"):
        gpus_per_task(-1, {})


def test_ray_engine_retries_records_failures_and_resumes(cluster, tmp_path: Path):
    data = make_dataset(tmp_path / "data")
    (data / "seq2" / "frame001.png").write_bytes(b"garbage")
    out = tmp_path / "out"
    overrides = ["preprocess.engine=ray", "+standin.transient=[seq0]", f"+standin.marks={tmp_path}",
                 "preprocess.write_frames=true"]
    summary = preprocess(make_cfg(data, *overrides), out, factory=StandIn)
    assert (summary.ok, summary.failed, summary.exit_code) == (3, 1, 1)
    assert (tmp_path / "seq0.attempted").exists()  # seq0 failed once, Ray retried it
    latest = Manifest(out / "manifest.jsonl").latest()
    assert "cannot decode image" in latest["seq2"]["error"]
    for key in ("seq0", "seq1", "seq3"):
        assert latest[key]["status"] == "ok" and len(decode_standin(out / latest[key]["output"])) == 4
    workers = {latest[key]["worker"] for key in latest}
    assert all(not w.endswith(f":{os.getpid()}") for w in workers)  # coded in Ray workers

    cv2.imwrite(str(data / "seq2" / "frame001.png"), np.zeros((64, 64, 3), np.uint8))
    again = preprocess(make_cfg(data, *overrides), out, factory=StandIn)
    assert (again.ok, again.failed, again.skipped) == (1, 0, 3)
    assert [r["status"] for r in Manifest(out / "manifest.jsonl").read()] == ["ok"] * 4

