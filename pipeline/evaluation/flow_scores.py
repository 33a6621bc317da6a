"""The flow metrics of the report as ``metric(original_frames, decoded_frames) -> float``, over flow.metrics.

Built from ``eval.flow_metrics`` with ``hydra.utils.instantiate``; each takes the project's flow-consistency
settings (``${flow.consistency}``: estimator, scale, mask and its options), the same estimator and mask as
``python -m pipeline run``; both pool the reliable pixels of all pairs of a sequence (``run`` scores each pair
and pools them the same way), and average sequences weighted by their frames. Frames are lists of uint8 (H, W, 3) RGB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flow.dense import estimate_flow
from flow.metrics import flow_consistency, temporal_warping_error
from flow.occlusion import occlusion_mask


def estimator_options(options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(method, estimate_flow keyword arguments) from flow-consistency settings: ``scale`` and ``mask``
    belong to the score, and ``preset`` only to DIS."""
    opts = {k: v for k, v in dict(options).items() if k not in ("scale", "mask")}
    method = opts.pop("method", "dis")
    if method != "dis":
        opts.pop("preset", None)
    return method, opts


class FlowConsistency:
    """Mean end-point error (full-resolution px, lower is better) between the flow estimated on the decoded
    frames and on the originals, over the originals' non-occluded pixels (``flow.metrics.flow_consistency``)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def __call__(self, original: Sequence[np.ndarray], decoded: Sequence[np.ndarray]) -> float:
        return float(flow_consistency(original, decoded, **self.options)["epe"])


class TemporalWarpingError:
    """Lai et al. 2018 warping error of the decoded video (lower is better), with forward flows and
    forward-backward occlusion masks estimated on the *original* frames at full size, as the paper does.

    The originals' flows are the same for every codec and rate point of a sequence, so they are kept for
    the last ``original`` list seen (the sweep passes one list object per sequence).
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.method, self.options = estimator_options(options)
        self._frames: Sequence[np.ndarray] | None = None
        self._flows: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []

    def __call__(self, original: Sequence[np.ndarray], decoded: Sequence[np.ndarray]) -> float:
        if len(original) != len(decoded):
            raise ValueError(f"{len(original)} original frames but {len(decoded)} decoded frames")
        if original is not self._frames:
            self._flows, self._masks = [], []
            for a, b in zip(original[:-1], original[1:], strict=True):
                forward = estimate_flow(a, b, self.method, **self.options)
                backward = estimate_flow(b, a, self.method, **self.options)
                self._flows.append(forward)
                self._masks.append(occlusion_mask(forward, backward))
            self._frames = original
        return float(temporal_warping_error(decoded, self._flows, self._masks))


class PictureFlow:
    """Forward flow (H, W, 2) float32 between two uint8 (H, W, 3) frames at full size, for report pictures."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.method, self.options = estimator_options(options)

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return estimate_flow(first, second, self.method, **self.options)
