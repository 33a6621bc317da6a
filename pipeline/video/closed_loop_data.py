"""Training pairs for the residual model from the closed loop: each P-frame and the prediction the coder made of it.

The real coder (shipped weights, ``rate.mode=rdo``) codes each sequence at every given quality, so the
predictions come from *decoded* references at the rates the coder runs. Each P-frame is stored as one
``.npy`` array (H, W, 6) uint8: the frame's RGB, then the prediction's RGB (``train.residual_gain`` reads them).
With ``--codes``, each P-frame's residual codes as the stream holds them instead (``.npz``: ``bits`` (T, C, h, w)
int8, ``counts`` (h, w)), the training data of the learned context model (``codec.context_train``); with
``--counts-prior`` the coder prices and codes them with the prior's adaptive counts, not its context net, so the
data do not depend on the net they will train. With ``--vectors``, each P-frame's motion-vector field as the stream
holds it (``.npy`` (rows, cols, 2) float32 pixels), the data of the vector coder's initial probabilities
(``pipeline.video.vector_prior``).

    python -m pipeline.video.closed_loop_data --out DIR [--quality 30 40] [--size 1024x512] [--frames 30]
        [--exclude seq0003 ...] [--codes [--counts-prior] | --vectors] [--residual STEM] SOURCE ...

A SOURCE is a folder of sequences (or of frames), a Cityscapes-layout root (e.g. the synthetic renderer's
output) or a video file.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from atomic import write_bytes
from codec.coder import ImageCodec
from codec.zoo import WEIGHTS_DIR
from flow.motion import BlockMotion
from pipeline.datasets import CityscapesDataset, FolderDataset, VideoDataset
from pipeline.video.coder import VideoCoder
from pipeline.video.rate import RateControl

MOTION = Path(__file__).resolve().parents[2] / "conf" / "motion" / "block.yaml"


def pair(frame: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """(H, W, 6) uint8: frame RGB then prediction RGB."""
    return np.ascontiguousarray(np.concatenate([frame, prediction], axis=-1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quality", type=float, nargs="+", default=[30.0, 40.0])
    parser.add_argument("--size", default="1024x512", help="WIDTHxHEIGHT every frame is resized to")
    parser.add_argument("--frames", type=int, default=30, help="frames per sequence (one GOP)")
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME",
                        help="a sequence name to leave out (held-out data); repeat for more")
    parser.add_argument("--max-iterations", type=int, default=6)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--codes", action="store_true", help="write the residual codes instead of the pairs")
    what.add_argument("--vectors", action="store_true", help="write the motion-vector fields instead of the pairs")
    parser.add_argument("--counts-prior", action="store_true",
                        help="code the residual with the prior's adaptive counts, without its context net")
    parser.add_argument("--residual", type=Path, default=WEIGHTS_DIR / "residual",
                        help="the residual model's weights stem (a candidate before it ships)")
    args = parser.parse_args(argv)
    intra, residual = ImageCodec.load(WEIGHTS_DIR / "intra"), ImageCodec.load(args.residual)
    if args.counts_prior and residual.prior is not None:
        residual = ImageCodec(residual.model, replace(residual.prior, net=None), residual.heads)
    motion = BlockMotion(**{k: v for k, v in OmegaConf.load(MOTION).items() if k != "_target_"})
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for source in args.sources:
        if source.is_file():
            dataset = VideoDataset(source, frames_per_sequence=args.frames, resize=args.size)
        elif (source / "leftImg8bit_sequence").is_dir():  # Cityscapes layout, e.g. the synthetic renderer's
            dataset = CityscapesDataset(source, frames_per_sequence=args.frames, resize=args.size)
        else:
            dataset = FolderDataset(source, frames_per_sequence=args.frames, resize=args.size)
        for seq in dataset:
            if seq.name in args.exclude:
                print(f"left out {seq.name} ({seq.source})")
                continue
            frames = [f.image for f in seq]
            for quality in args.quality:
                rate = RateControl(quality=quality, max_iterations=args.max_iterations)
                coder = VideoCoder(intra, residual, motion, gop=len(frames), rate=rate)
                for index, coded in enumerate(coder.encode(iter(seq))):
                    if coded.prediction is None:
                        continue
                    name = f"{source.stem}_{seq.name}_{index:04d}_q{quality:g}"
                    if args.vectors:
                        buffer = _npy(motion.decode(coded.record.blobs[0], frames[index].shape))
                    elif args.codes:
                        codes = residual.chunks_to_codes(coded.record.blobs[1:])  # after the motion vectors
                        buffer = _npz(bits=codes.bits, counts=codes.counts)
                    else:
                        buffer = _npy(pair(frames[index], coded.prediction))
                    write_bytes(args.out / (name + (".npz" if args.codes else ".npy")), buffer)
                    written += 1
                print(f"{seq.name} quality {quality:g}: {written} P-frames so far", flush=True)
    what = "motion-vector fields" if args.vectors else "residual codes" if args.codes else "(frame, prediction) pairs"
    print(f"wrote {written} P-frames' {what} to {args.out}")
    return 0


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main())
