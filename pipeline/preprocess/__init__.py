"""Batch dataset preprocessing (issue 7): code whole datasets, resumable, on a local pool or a Ray cluster.

``preprocess(cfg, out)`` is the entry point; ``python -m pipeline preprocess`` wraps it (docs/preprocess.md).
"""

from pipeline.preprocess.driver import RunAborted, RunSummary, preprocess
from pipeline.preprocess.manifest import Manifest

__all__ = ["Manifest", "RunAborted", "RunSummary", "preprocess"]
