import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_eval_codecs import moving_frames

from pipeline.evaluation.codecs import CodedSequence
from pipeline.evaluation.flow_scores import FlowConsistency, PictureFlow, TemporalWarpingError
from pipeline.evaluation.image_codecs import OpenCVImageCodec
from pipeline.evaluation.report import write_report
from pipeline.evaluation.sweep import evaluate_codecs
from pipeline.evaluation.video_codecs import PyAVCodec

FLOW = {"method": "dis", "preset": "fast", "scale": 1.0, "mask": "fb"}
HEIGHT, WIDTH = 176, 224  # the smaller side is over 160 px, so MS-SSIM is defined


class IterationJPEG:
    """A stand-in for a codec swept over iteration counts: JPEG at quality 20 * iterations."""

    name, point_name, intra = "jpeg_iter", "rate.iterations", True

    def __init__(self) -> None:
        self.jpeg = OpenCVImageCodec("jpeg_iter", "jpeg", [20, 40, 60, 80])

    def points(self) -> list[int]:
        return [1, 2, 3, 4]

    def code(self, frames: list[np.ndarray], point: int) -> CodedSequence:
        return self.jpeg.code(frames, 20 * point)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    sequences = [("a", moving_frames(6, HEIGHT, WIDTH, seed=0)), ("b", moving_frames(6, HEIGHT, WIDTH, seed=1))]
    codecs = [OpenCVImageCodec("jpeg", "jpeg", [15, 40, 70, 90]), IterationJPEG(),
              PyAVCodec("x264", "libx264", [18, 26, 34, 42], gop=30)]
    metrics = {"flow_consistency": FlowConsistency(FLOW), "temporal_warping_error": TemporalWarpingError(FLOW)}
    evaluation = evaluate_codecs(sequences, codecs, metrics, PictureFlow(FLOW), crop=(128, 96), progress=False)
    return write_report(evaluation, tmp_path_factory.mktemp("report"), reference="x264", intra_reference="jpeg",
                        config_yaml="eval:\n  reference: x264\n")


def test_results_json_schema(report):
    doc = json.loads(report["json"].read_text())
    assert set(doc["curves"]) == {"jpeg", "jpeg_iter", "x264"}
    for points in doc["curves"].values():
        assert len(points) == 4
        for p in points:
            for key in ("point", "bpp", "psnr", "msssim", "flow_consistency", "temporal_warping_error",
                        "encode_s_per_frame", "decode_s_per_frame"):
                assert isinstance(p[key], int | float), (key, p)
            assert p["frames"] == 12 and p["sequences"] == 2
    assert doc["bd_rate_reference"] == "x264"
    for metric in ("psnr", "msssim", "flow_consistency"):
        assert set(doc["bd_rate"][metric]) == {"jpeg", "jpeg_iter", "x264"}
        assert doc["bd_rate"][metric]["x264"] == pytest.approx(0.0, abs=1e-9)
        # JPEG at qualities 20..80 is a resampled version of the same curve as JPEG 15..90.
        assert abs(doc["bd_rate_intra"][metric]["jpeg_iter"]) < 15
    assert [r["variant"] for r in doc["noise_floor"]] == ["lossless copy", "+-1 LSB noise", "JPEG q100"]
    assert doc["noise_floor"][0]["flow_consistency"] == 0.0
    assert [p["point"] for p in doc["rate_points"]["jpeg_iter"]] == [1, 2, 3, 4]
    assert doc["rate_setting"] == {"jpeg_iter": "rate.iterations"}
    assert doc["flow_floor"] == max(r["flow_consistency"] for r in doc["noise_floor"])
    right = doc["flow_right_at"]["jpeg_iter"]
    assert right is None or doc["curves"]["jpeg_iter"][right - 1]["flow_consistency"] <= doc["flow_floor"]
    assert len(doc["per_sequence"]) == 2 * 12


def test_csv_has_a_row_per_point_and_noise_floor(report):
    rows = list(csv.DictReader(report["csv"].open()))
    assert len(rows) == 12 + 3
    assert float(rows[0]["bpp"]) > 0 and rows[-1]["codec"] == "noise floor: JPEG q100"


def test_html_is_self_contained(report):
    text = report["html"].read_text()
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) > 10 and all(s.startswith("data:image/png;base64,") for s in sources)
    for heading in ("Rate-distortion curves", "BD-rate", "At which rate", "Noise floor", "Timing", "Pictures",
                    "Configuration"):
        assert heading in text
    assert "reference: x264" in text
    assert not list(report["html"].parent.glob(".*.tmp"))


_CHECK = """<script>window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-loaded", imgs.filter(i => i.complete && i.naturalWidth > 0).length);
});</script>"""


def _rendered_image_counts(html_file: Path, chromium: str) -> tuple[int, int]:
    """Load ``html_file`` in headless Chromium; (images, images decoded with a size) from the live DOM."""
    probe = html_file.with_name("probe_" + html_file.name)
    probe.write_text(html_file.read_text().replace("</body>", _CHECK + "</body>"))
    # Its own session, so a timeout kills the whole process tree (children keep the pipes open otherwise).
    proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                             "--dump-dom", probe.as_uri()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("headless chromium did not finish rendering the report within 120 s")
    body = re.search(r'<body data-images="(\d+)" data-loaded="(\d+)"', stdout)
    assert body, f"chromium did not run the probe (rc {proc.returncode}): {stderr[-500:]}"
    return int(body[1]), int(body[2])


def test_report_renders_in_headless_chromium_with_every_image(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    images, loaded = _rendered_image_counts(report["html"], chromium)
    assert images > 10 and loaded == images
    # The probe can fail: a report with one corrupt picture is caught.
    broken = tmp_path / "broken.html"
    broken.write_text(report["html"].read_text().replace("base64,iVBOR", "base64,AAAA", 1))
    images, loaded = _rendered_image_counts(broken, chromium)
    assert loaded == images - 1


@pytest.mark.slow
def test_evaluate_command_end_to_end(tmp_path):
    for seq in ("s1", "s2"):
        (tmp_path / "data" / seq).mkdir(parents=True)
        for i, frame in enumerate(moving_frames(5, HEIGHT, WIDTH, seed=len(seq) + int(seq[1]))):
            cv2.imwrite(str(tmp_path / "data" / seq / f"f{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "evaluate", "dataset=folder", f"dataset.root={tmp_path / 'data'}",
         "eval.compare=[jpeg,x264]", "eval.codecs.jpeg.qualities=[20,60,90]", "eval.codecs.x264.crfs=[22,30,38]",
         "eval.max_frames=4", f"hydra.run.dir={out}", f"eval.cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 2 * 2 * 3  # codecs x sequences x points
    doc = json.loads((out / "results.json").read_text())
    assert [p["point"] for p in doc["curves"]["x264"]] == [38, 30, 22]
    assert doc["curves"]["jpeg"][0]["frames"] == 8
    assert "report.html" in proc.stdout and (out / "report.html").stat().st_size > 10_000
    assert "flow:\n" in (out / "report.html").read_text()  # the composed config is embedded


@pytest.mark.slow
def test_plot_overlays_runs(report, tmp_path):
    from pipeline.commands.plot import msssim_db

    other = tmp_path / "other" / "results.json"
    other.parent.mkdir()
    shutil.copy(report["json"], other)
    out = tmp_path / "rd.png"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "plot", str(report["json"]), str(other), f"out={out}",
                           f"hydra.run.dir={tmp_path / 'h'}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "6 curves from 2 runs" in proc.stdout and cv2.imread(str(out)).shape[1] > 1000
    assert msssim_db(0.99) == pytest.approx(20.0) and np.isnan(msssim_db(None))
    bad = subprocess.run([sys.executable, "-m", "pipeline", "plot", str(tmp_path / "rd.png"),
                          f"hydra.run.dir={tmp_path / 'h2'}"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not an evaluation results.json" in bad.stderr


class Counting(IterationJPEG):
    """IterationJPEG counting the points it codes, over all instances (each evaluation run builds its own)."""

    calls = 0

    def code(self, frames, point):
        Counting.calls += 1
        return super().code(frames, point)


def test_cached_points_are_reused_until_something_they_depend_on_changes(tmp_path):
    from pipeline.evaluation.cache import ResultCache

    Counting.calls = 0
    sequences = [("a", moving_frames(3, HEIGHT, WIDTH, seed=0))]
    metrics = {"flow_consistency": FlowConsistency(FLOW)}

    def run(key: str, force: bool = False, frames=sequences):
        return evaluate_codecs(frames, [Counting()], metrics, PictureFlow(FLOW), crop=(64, 48), progress=False,
                               cache=ResultCache(tmp_path, force), cache_keys={"jpeg_iter": key})

    first = run("k1")
    assert Counting.calls == 4
    again = run("k1")
    assert Counting.calls == 4 and again.curves == first.curves  # all four points from the cache
    assert [v.point for v in again.visuals["jpeg_iter"]] == [1, 2, 3, 4]  # pictures too
    run("k2")  # other settings or weights: a new key
    assert Counting.calls == 8
    run("k1", frames=[("a", moving_frames(3, HEIGHT, WIDTH, seed=5))])  # other frames, same name
    assert Counting.calls == 12
    run("k1", force=True)
    assert Counting.calls == 16


def test_runs_over_different_subsets_of_sequences_share_cached_rows(tmp_path):
    """The report draws its pictures from its first sequence; a run in which that sequence came second reuses
    its rows, and codes it again only where the pictures' crops are missing."""
    from pipeline.evaluation.cache import ResultCache

    Counting.calls = 0
    a, b = (("a", moving_frames(3, HEIGHT, WIDTH, seed=0)), ("b", moving_frames(3, HEIGHT, WIDTH, seed=1)))
    metrics = {"flow_consistency": FlowConsistency(FLOW)}

    def run(sequences, root=tmp_path):
        return evaluate_codecs(sequences, [Counting()], metrics, PictureFlow(FLOW), crop=(64, 48), progress=False,
                               cache=ResultCache(root), cache_keys={"jpeg_iter": "k"})

    alone = run([a])  # pictures from a
    assert Counting.calls == 4
    run([b, a])  # pictures from b; a's rows come from the cache
    assert Counting.calls == 8
    both = run([a, b])  # rows and a's crops cached
    assert Counting.calls == 8 and [r["bpp"] for r in both.rows[:4]] == [r["bpp"] for r in alone.rows]
    run([b], tmp_path / "other")
    run([a, b], tmp_path / "other")  # b's rows and crops cached; a's crops and rows missing
    assert Counting.calls == 8 + 4 + 4


def test_the_cache_key_follows_our_coders_source_not_its_training_data_tools(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    import pipeline.commands.evaluate as evaluate
    from pipeline.paths import CONF_DIR, REPO_DIR

    for part in ("codec", "flow", "pipeline"):
        shutil.copytree(REPO_DIR / part, tmp_path / part)
    monkeypatch.setattr(evaluate, "REPO_DIR", tmp_path)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config")
    key = evaluate.cache_key(cfg, "rnn_mc")
    (tmp_path / "pipeline" / "video" / "closed_loop_data.py").write_text("# edited\n")
    assert evaluate.cache_key(cfg, "rnn_mc") == key
    with open(tmp_path / "pipeline" / "video" / "coder.py", "a") as f:
        f.write("# edited\n")
    assert evaluate.cache_key(cfg, "rnn_mc") != key


@pytest.mark.parametrize(("compare", "message"), [("[x264,nope]", "eval.compare names 'nope'"),
                                                  ("[jpeg]", "eval.reference=x264 is not among")])
@pytest.mark.slow
def test_evaluate_command_rejects_bad_codec_lists(tmp_path, compare, message):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "evaluate", f"eval.compare={compare}",
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
