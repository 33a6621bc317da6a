"""Code every sequence with every codec at every rate point and collect scores and pictures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from flow.viz import flow_to_color
from pipeline.evaluation.cache import ResultCache, frames_digest
from pipeline.evaluation.codecs import VideoCodec
from pipeline.evaluation.metrics import FlowMetric, average, noise_floor_variants, score, score_frames
from pipeline.evaluation.visuals import FlowEstimator, centre_crop, robust_max_magnitude


@dataclass
class Visual:
    """Crops of one frame (uint8 (h, w, 3)) and of its flow colour image, for one codec point."""

    point: Any
    bpp: float
    image: np.ndarray
    flow: np.ndarray


@dataclass
class Evaluation:
    """Everything the report needs; ``rows`` is per (sequence, codec, point), ``curves`` averages sequences."""

    codecs: dict[str, dict[str, Any]]
    rows: list[dict[str, Any]]
    curves: dict[str, list[dict[str, Any]]]
    noise_floor: list[dict[str, Any]]
    frame_size: tuple[int, int]
    visual_sequence: str = ""
    visual_frame: int = 0
    original: Visual | None = None
    visuals: dict[str, list[Visual]] = field(default_factory=dict)


def evaluate_codecs(sequences: Iterable[tuple[str, list[np.ndarray]]], codecs: list[VideoCodec],
                    flow_metrics: Mapping[str, FlowMetric], flow_estimator: FlowEstimator,
                    visual_frame: int = 1, crop: tuple[int, int] = (384, 192), seed: int = 0,
                    progress: bool = True, cache: ResultCache | None = None,
                    cache_keys: Mapping[str, str] | None = None) -> Evaluation:
    """Sweep ``codecs`` over ``sequences`` ((name, uint8 (H, W, 3) RGB frames) pairs, one frame size for all).

    Pictures (crops of frame ``visual_frame`` and of the flow from it to the next frame) come from the
    first sequence only, to keep memory flat however many sequences there are. With a ``cache``, a codec
    whose name has an entry in ``cache_keys`` (its settings' hash) reuses the points it has already scored.
    """
    if not codecs:
        raise ValueError("no codecs to evaluate: eval.compare is empty")
    names = [c.name for c in codecs]
    if len(set(names)) != len(names):
        raise ValueError(f"codec names must be unique, got {names}")
    result = Evaluation(codecs={c.name: {"point_name": c.point_name, "intra": bool(c.intra),
                                          "points": list(c.points())} for c in codecs},
                        rows=[], curves={}, noise_floor=[], frame_size=(0, 0))
    floor_rows: dict[str, list[dict]] = {}
    jobs = sum(len(c.points()) for c in codecs)
    for index, (seq_name, frames) in enumerate(sequences):
        if len(frames) < 2:
            raise ValueError(f"sequence {seq_name}: {len(frames)} frame(s); flow metrics need at least 2")
        size = (frames[0].shape[1], frames[0].shape[0])
        if index == 0:
            result.frame_size = size
        elif size != result.frame_size:
            raise ValueError(f"sequence {seq_name} is {size[0]}x{size[1]}, the first was "
                             f"{result.frame_size[0]}x{result.frame_size[1]}; set dataset.resize to one size")
        pictures = index == 0
        if pictures:
            result.visual_sequence = seq_name
            result.visual_frame = k = min(visual_frame, len(frames) - 2)
            original_flow = flow_estimator(frames[k], frames[k + 1])
            scale = robust_max_magnitude(original_flow)
            result.original = Visual(None, float("nan"), centre_crop(frames[k], *crop),
                                     centre_crop(flow_to_color(original_flow, scale), *crop))
        for variant, (copy, bits) in noise_floor_variants(frames, seed).items():
            row = score_frames(frames, copy, bits, flow_metrics)
            floor_rows.setdefault(variant, []).append(row)
        bar = tqdm(total=jobs, desc=f"{seq_name}", disable=not progress, leave=False)
        digest = frames_digest(frames)
        picture_name = f"pictures{k}-{crop[0]}x{crop[1]}" if pictures else None
        for codec in codecs:
            key = (cache_keys or {}).get(codec.name) if cache is not None else None
            for point in codec.points():
                hit = cache.get(codec.name, key, digest, point, picture_name) if key else None
                if hit is None:
                    coded = codec.code(frames, point)
                    coded.check(frames, codec.name, point)
                    row = score(frames, coded, flow_metrics)
                    crops = None
                    if pictures:
                        decoded = coded.decoded
                        flow = flow_estimator(decoded[k], decoded[k + 1])
                        crops = {"image": centre_crop(decoded[k], *crop),
                                 "flow": centre_crop(flow_to_color(flow, scale), *crop)}
                    if key:
                        cache.put(codec.name, key, digest, point, row, crops, picture_name)
                else:
                    row, crops = hit
                result.rows.append({"sequence": seq_name, "codec": codec.name, "point": point, **row})
                if crops is not None:
                    result.visuals.setdefault(codec.name, []).append(
                        Visual(point, row["bpp"], crops["image"], crops["flow"]))
                bar.update()
        bar.close()
    if not floor_rows:
        raise ValueError("no sequences to evaluate: the dataset yielded nothing")
    for codec in codecs:
        result.curves[codec.name] = [
            {"point": point, **average([r for r in result.rows if r["codec"] == codec.name and r["point"] == point])}
            for point in codec.points()]
    result.noise_floor = [{"variant": v, **average(rows)} for v, rows in floor_rows.items()]
    return result
