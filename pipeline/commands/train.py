"""``python -m pipeline train``: train the RNN codec on crops from the configured image sources.

Sources (``train.sources``): Kodak PNGs, Cityscapes sequence frames (some also downscaled by 2), dashcam video
frames (PyAV), the synthetic renderer's output and extra files; optional consecutive Cityscapes pairs with DIS
flow for flow losses. Images are loaded here (a small loader of its own) and handed to ``codec.train``.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import fields
from pathlib import Path

import av
import cv2
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from codec.data import CropSource, Pair
from codec.model import ModelConfig
from codec.train import TrainConfig, train
from codec.zoo import load_model, read_meta, save_model
from pipeline.imageio import read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
# pipeline.video.closed_loop_data's names: SOURCE_SEQUENCE_INDEX_qQUALITY.npy
CLOSED_LOOP_NAME = re.compile(r"^(?P<sequence>.+)_(?P<index>\d{4})_q(?P<quality>[^_]+)$")
log = logging.getLogger("drivecodec.train")


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; ``.npy`` files as stored: uint8 (e.g. (H, W, 6) frame + prediction pairs) or float
    [0, 1] (as float32)."""
    if path.suffix == ".npy":
        array = np.load(path)
        return array if array.dtype == np.uint8 else array.astype(np.float32)
    return read_image(path)


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES | {".npy"})


def _half(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)


def _dis_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (first, second)]
    return dis.calc(gray[0], gray[1], None).astype(np.float32)


def closed_loop_pairs(root: Path) -> list[Pair]:
    """Consecutive P-frames of one sequence and quality in a folder of closed-loop (frame, prediction) ``.npy``
    files (``pipeline.video.closed_loop_data``): each pair holds both (H, W, 6) arrays and the DIS flow between the
    two frames, so a flow loss compares the two decoded frames' change with the originals'."""
    files = sorted(root.glob("*.npy"))
    if not files:
        raise FileNotFoundError(f"train.sources.closed_loop_pairs: {root} holds no closed-loop .npy files")
    runs: dict[tuple[str, str], dict[int, Path]] = defaultdict(dict)
    for path in files:
        match = CLOSED_LOOP_NAME.match(path.stem)
        if match is None:
            raise ValueError(f"{path}: not a closed-loop pair name (SOURCE_SEQUENCE_INDEX_qQUALITY.npy, as "
                             "pipeline.video.closed_loop_data writes)")
        runs[match["sequence"], match["quality"]][int(match["index"])] = path
    pairs = []
    for (sequence, quality), paths in runs.items():
        arrays = {index: read_rgb(path) for index, path in paths.items()}
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1 or next(iter(shapes))[2:] != (6,):
            raise ValueError(f"{root}: {sequence} at quality {quality} holds arrays of shapes {sorted(shapes)}; "
                             "expected (H, W, 6) frame + prediction pairs of one size")
        for index in sorted(arrays):
            if index + 1 in arrays:
                first, second = arrays[index], arrays[index + 1]
                frames = (np.ascontiguousarray(first[..., :3]), np.ascontiguousarray(second[..., :3]))
                pairs.append(Pair(first, second, _dis_flow(*frames)))
    return pairs


def _check_sources(src: DictConfig) -> None:
    """Every configured (non-null) source must exist: a typo must not silently train on less data."""
    for key, is_there in (("kodak", Path.is_dir), ("cityscapes", Path.is_dir), ("dashcam", Path.is_file),
                          ("sample", Path.is_dir)):
        if src.get(key) and not is_there(Path(src[key])):
            raise FileNotFoundError(f"train.sources.{key}={src[key]} does not exist; fix the path or set "
                                    f"train.sources.{key}=null to train without it")


def load_sources(src: DictConfig, exclude: list[str] | None = None) -> CropSource:
    """Read every configured source (each must exist), leaving out the Cityscapes sequences named in ``exclude``;
    prints what it loaded."""
    _check_sources(src)
    images: list[np.ndarray] = []
    pairs: list[Pair] = []
    counts: dict[str, int] = {}
    if src.get("kodak"):
        kodak = [read_rgb(p) for p in sorted(Path(src.kodak).glob("*.png"))]
        images += kodak
        counts["kodak"] = len(kodak)
    if src.get("cityscapes"):
        n = 0
        for seq in sorted(Path(src.cityscapes).glob("seq*")):
            if seq.name in (exclude or []):
                log.info("left out %s (held out)", seq.name)
                continue
            frames = sorted(seq.glob("*.jpg")) + sorted(seq.glob("*.png"))
            if not frames:
                continue
            picks = np.linspace(0, len(frames) - 1, min(src.cityscapes_frames_per_sequence, len(frames))).astype(int)
            for k, i in enumerate(picks):
                image = read_rgb(frames[i])
                images.append(image)
                n += 1
                if src.cityscapes_half_scale_every and k % src.cityscapes_half_scale_every == 0:
                    images.append(_half(image))
                    n += 1
            for i in range(min(int(src.get("pairs") or 0), len(frames) - 1)):
                first, second = _half(read_rgb(frames[i])), _half(read_rgb(frames[i + 1]))
                pairs.append(Pair(first, second, _dis_flow(first, second)))
        counts["cityscapes"] = n
    if src.get("dashcam"):
        n = 0
        with av.open(str(src.dashcam)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % src.dashcam_every == 0:
                    images.append(frame.to_ndarray(format="rgb24"))
                    n += 1
        counts["dashcam"] = n
    if src.get("sample"):
        sample = [read_rgb(p) for p in _files(Path(src.sample))]
        images += sample
        counts["sample"] = len(sample)
    for extra in src.get("images") or []:
        if not Path(extra).exists():
            raise FileNotFoundError(f"training image source {extra} does not exist")
        more = [read_rgb(p) for p in _files(Path(extra))]
        images += more
        counts[str(extra)] = len(more)
    for root in src.get("closed_loop_pairs") or []:
        if not Path(root).is_dir():
            raise FileNotFoundError(f"train.sources.closed_loop_pairs: {root} is not a folder")
        pairs += closed_loop_pairs(Path(root))
    counts["pairs"] = len(pairs)
    log.info("training sources: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    return CropSource(images, pairs)


def build_losses(entries: DictConfig) -> list[tuple[str, object, float]]:
    """``{name: {_target_: ..., weight: w, ...}}`` -> [(name, instantiated loss, w)]; weight defaults to 1."""
    losses = []
    for name, entry in entries.items():
        spec = OmegaConf.to_container(entry, resolve=True)
        weight = float(spec.pop("weight", 1.0))
        losses.append((str(name), instantiate(spec), weight))
    return losses


def main(cfg: DictConfig, args: list[str]) -> int:
    if args:
        raise ValueError(f"train takes no positional arguments, got {args}")
    tc = cfg.train
    train_cfg = TrainConfig(**{f.name: tc[f.name] for f in fields(TrainConfig)})
    losses = build_losses(cfg.loss)
    model_config = ModelConfig(**OmegaConf.to_container(cfg.codec.model, resolve=True))
    source = load_sources(tc.sources)
    last = train(model_config, losses, source, train_cfg, tc.out_dir, init=tc.get("init"))
    if tc.get("export"):
        stem = Path(last).with_suffix("")
        meta = read_meta(stem)
        recipe = {"step": meta["step"], "init": tc.get("init"), "train": meta["train"],
                  "loss": OmegaConf.to_container(cfg.loss, resolve=True)}
        log.info("exported %s", save_model(load_model(stem), tc.export, recipe))
    return 0
