"""bench/RESULTS.md keeps the latest run of each benchmark: a rerun replaces its own section only."""

from pathlib import Path

from bench.results import append


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
