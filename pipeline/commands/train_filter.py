"""``python -m pipeline train_filter restore=jpeg``: train a restoration filter for one evaluation codec
(``restore=comcnn_jpeg``: Jiang et al.'s ComCNN + RecCNN around JPEG, :mod:`codec.comcnn_train`).

Two steps, each resumable. *Data*: the codec ``eval.codecs[restore.codec]`` codes every training sequence at
every ``restore.points`` (frames resized to ``restore.size``, held-out sequences in ``restore.exclude``
skipped), and every ``restore.every``-th frame is kept as a (decoded, original, conditioning) triple in
``restore.data`` (one ``.npz`` each; a finished data step leaves ``done.json`` and is not repeated). The
conditioning is what the codec says the decoder knows (ours: per-block iteration counts and frame type), or
else the point times ``restore.cond_scale`` (e.g. JPEG quality / 100) as one constant plane.
*Training*: :func:`codec.restoration_train.train_restoration` into ``restore.out_dir``; with ``restore.export``
the result is also written there with its recipe.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from atomic import staged_dir, write_bytes
from codec.comcnn import ComCNNConfig, compact_frame, load_system, save_system, upscale_frame
from codec.comcnn_train import train_comcnn
from codec.restoration import RestorationConfig, load_restoration, save_restoration
from codec.restoration_train import FitConfig, Triple, train_restoration
from codec.train import progress
from pipeline.datasets import FolderDataset, VideoDataset

log = logging.getLogger("drivecodec.train_filter")


def sequences(rc: DictConfig):
    """(name, uint8 RGB frames) of every training sequence: folders of sequences (or frames) and video files."""
    for source in map(Path, rc.sources):
        if not source.exists():
            raise FileNotFoundError(f"restore.sources: {source} does not exist")
        dataset = (VideoDataset(source, frames_per_sequence=rc.frames, resize=rc.size) if source.is_file() else
                   FolderDataset(source, frames_per_sequence=rc.frames, resize=rc.size))
        for seq in dataset:
            if seq.name in rc.exclude:
                log.info("left out %s (held out)", seq.name)
                continue
            yield f"{source.stem}_{seq.name}", [f.image for f in seq]


def make_data(cfg: DictConfig) -> Path:
    """Code the sources with the codec and store the triples; skipped when ``restore.data`` is complete."""
    rc = cfg.restore
    data = Path(rc.data)
    recipe = {"codec": OmegaConf.to_container(cfg.eval.codecs[rc.codec], resolve=True),
              **({"system": str(rc.system)} if rc.get("kind") == "comcnn_rec" else {}),
              "codec_overrides": OmegaConf.to_container(rc.codec_overrides) if rc.get("codec_overrides") else {},
              "points": list(rc.points), "cond_scale": rc.cond_scale, "sources": list(rc.sources),
              "exclude": list(rc.exclude), "size": rc.size, "frames": rc.frames, "every": rc.every}
    if (data / "done.json").is_file():
        if json.loads((data / "done.json").read_text()) != recipe:
            raise ValueError(f"{data} holds triples made with other settings (see its done.json); "
                             "set restore.data to a new folder")
        return data
    if OmegaConf.select(cfg.eval.codecs[rc.codec], "codec.loop_filter"):
        raise ValueError(f"eval.codecs.{rc.codec} runs with an in-loop filter; a filter learns from unfiltered "
                         "frames: pass codec.loop_filter=null")
    codec = instantiate(cfg.eval.codecs[rc.codec], **rc.get("codec_overrides", {}))
    # restore.kind=comcnn_rec: the codec codes a ComCNN's half-size frames; RecCNN restores their upscale.
    system = load_system(rc.system)[0] if rc.get("kind") == "comcnn_rec" else None
    with staged_dir(data) as stage:  # a data step that stops part-way leaves no folder that looks complete
        count = 0
        for name, frames in sequences(rc):
            inputs = [compact_frame(system, f) for f in frames] if system else frames
            for point in rc.points:
                coded = codec.code(inputs, point)
                for i in range(0, len(frames), rc.every):
                    # What the codec says the decoder knows (ours: per-block counts), else the rate point.
                    cond = (coded.conditioning[i] if coded.conditioning else
                            np.full((1, 1, 1), point * rc.cond_scale, np.float32))
                    decoded = upscale_frame(coded.decoded[i], frames[i].shape[:2]) if system else coded.decoded[i]
                    np.savez(stage / f"{name}_{i:04d}_p{point}.npz", decoded=decoded, original=frames[i], cond=cond)
                    count += 1
            log.info("%s: %d triples so far", name, count)
        write_bytes(stage / "done.json", json.dumps(recipe, indent=2).encode())
    log.info("wrote %d triples to %s", count, data)
    return data


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) through OpenCV's JPEG at ``quality`` and back."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as JPEG")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def train_compact_system(cfg: DictConfig) -> int:
    """``restore.kind=comcnn``: ComCNN + RecCNN around JPEG, trained on the source frames themselves."""
    rc = cfg.restore
    images = [frames[i] for _, frames in sequences(rc) for i in range(0, len(frames), rc.every)]
    log.info("%d training frames", len(images))
    train_cfg = FitConfig(**{f.name: rc.train[f.name] for f in fields(FitConfig)})
    config = ComCNNConfig(**OmegaConf.to_container(rc.net, resolve=True))
    meta = {"codec": rc.codec, "cond_scale": rc.cond_scale}
    last = train_comcnn(config, images, jpeg_roundtrip, list(rc.points), rc.cond_scale, train_cfg, rc.out_dir, meta)
    if rc.get("export"):
        system, saved = load_system(last)
        save_system(system, rc.export, {**meta, **{k: saved[k] for k in ("step", "seconds", "train")},
                                        "sources": list(rc.sources), "exclude": list(rc.exclude)})
        log.info("exported %s (step %d)", rc.export, saved["step"])
    return 0


def main(cfg: DictConfig, args: list[str]) -> int:
    if args:
        raise ValueError(f"train_filter takes no positional arguments, got {args}")
    rc = cfg.restore
    if rc.get("kind") == "comcnn":
        return train_compact_system(cfg)
    data = make_data(cfg)
    if progress(rc.train, 0, 0.0) >= 1.0:  # the training schedule's own rule: no budget left
        log.info("restore.train.max_minutes=0: made the data only (%s)", data)
        return 0
    triples = []
    for path in sorted(data.glob("*.npz")):
        with np.load(path) as arrays:
            triples.append(Triple(arrays["decoded"], arrays["original"], arrays["cond"]))
    log.info("%d training triples from %s", len(triples), data)
    train_cfg = FitConfig(**{f.name: rc.train[f.name] for f in fields(FitConfig)})
    meta = {"codec": rc.codec, "cond_scale": rc.cond_scale}
    if rc.get("kind") == "comcnn_rec":  # RecCNN fine-tuned from the system's; ComCNN kept
        system, _ = load_system(rc.system)
        last = train_restoration(system.config.rec, triples, train_cfg, rc.out_dir, meta, system.rec.state_dict())
        if rc.get("export"):
            rec, saved = load_restoration(last)
            system.rec.load_state_dict(rec.state_dict())
            save_system(system, rc.export, {**meta, **{k: saved[k] for k in ("step", "seconds", "train")},
                                            "comcnn_from": str(rc.system),
                                            "data": json.loads((data / "done.json").read_text())})
            log.info("exported %s (step %d)", rc.export, saved["step"])
        return 0
    net_config = RestorationConfig(**OmegaConf.to_container(rc.net, resolve=True))
    last = train_restoration(net_config, triples, train_cfg, rc.out_dir, meta)
    if rc.get("export"):
        net, saved = load_restoration(last)
        recipe = {k: saved[k] for k in ("step", "seconds", "train")}
        save_restoration(net, rc.export, {**meta, **recipe, "data": json.loads((data / "done.json").read_text())})
        log.info("exported %s (step %d)", rc.export, saved["step"])
    return 0
