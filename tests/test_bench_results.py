"""bench/RESULTS.md keeps the latest run of each benchmark: a rerun replaces its own section only."""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import bench.results
from bench.results import append, fresh_run_dir


def test_append_adds_then_replaces_only_its_own_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    append("A", "first A\n\n### detail\n\nrow", command="cmd a", results=results)
    append("B", "only B", command="cmd b", results=results)
    append("A", "second A", command="cmd a2", results=results)
    text = results.read_text()
    assert text.startswith("# Results\n")
    assert text.count("## A\n") == 1 and "second A" in text and "first A" not in text and "### detail" not in text
    assert "only B" in text and text.index("## A\n") < text.index("## B\n")  # A stays in its place
    assert "- command: `cmd a2`" in text
    append("B", "new B", command="cmd b2", results=results)  # the last section, replaced up to the end
    assert "only B" not in results.read_text() and results.read_text().rstrip().endswith("new B")


def test_sections_appended_side_by_side_are_all_kept(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: append(f"S{i}", f"body {i}", command="cmd", results=results), range(32)))
    text = results.read_text()
    assert all(f"## S{i}\n" in text for i in range(32))


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    class FrozenClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(bench.results._dt, "datetime", FrozenClock)
    dirs = [fresh_run_dir(tmp_path / "runs") for _ in range(3)]
    assert [d.name for d in dirs] == ["2026-01-02_03-04-05", "2026-01-02_03-04-05-1", "2026-01-02_03-04-05-2"]
    assert all(d.is_dir() for d in dirs)
