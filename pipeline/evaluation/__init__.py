"""Rate-distortion evaluation: one codec interface, baselines, metrics, BD-rate and the HTML report.

``python -m pipeline evaluate`` (``pipeline/commands/evaluate.py``) codes every sequence with every codec
named in ``eval.compare`` over its rate sweep, scores each point (:mod:`.metrics`), and writes
``report.html``, ``results.json`` and ``results.csv`` (:mod:`.report`).
"""
