"""Fit the entropy coder's prior counts on images: ``python -m codec.prior STEM IMAGE ...``.

Encodes each image (uint8 RGB files, read with OpenCV) for ``--iterations``, gathers context statistics of the
bits and writes ``STEM.entropy.safetensors`` (:class:`codec.entropy.Prior`: the channel plan and the initial
counts). For a residual model, ``.npy`` (frame, prediction) pairs (H, W, 6) uint8
(``pipeline.video.closed_loop_data``) are coded as the video coder codes them: the residual times
``--residual-gain``, with the prediction as the condition of a conditional model. The prior changes the
bitstream, so it is part of the stream's model id (:class:`codec.coder.ImageCodec`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.numpy import save_file

from atomic import temporary_path
from codec.coder import to_tensor
from codec.entropy import Prior, fit_prior
from codec.model import RNNCodec
from codec.zoo import load_model


def fit(model: RNNCodec, images: list[np.ndarray], iterations: int, strength: int = 64,
        residual_gain: float = 2.0) -> Prior:
    """The entropy prior of ``model`` from the codes of uint8 (H, W, 3) RGB images or (H, W, 6) (frame,
    prediction) pairs (coded as residuals times ``residual_gain``, the prediction the condition)."""
    codes = []
    for image in images:
        if image.shape[2] == 6:
            frame, prediction = to_tensor(image[..., :3]), to_tensor(image[..., 3:])
            x = ((frame - prediction) * residual_gain).clamp(-0.5, 0.5)
            codes.append(model.encode(x, iterations, cond=prediction if model.config.condition else None))
        else:
            codes.append(model.encode(to_tensor(image), iterations))
    return fit_prior([(c.bits, c.counts) for c in codes], strength)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stem", type=Path, help="weights stem (STEM.safetensors + STEM.json)")
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--max-side", type=int, default=1024, help="downscale larger images to this width")
    parser.add_argument("--strength", type=int, default=64, help="pseudo-counts per context")
    parser.add_argument("--residual-gain", type=float, default=2.0, help="for (frame, prediction) .npy pairs")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    images = []
    for path in args.images:
        if path.suffix == ".npy":
            images.append(np.load(path))
            continue
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read image {path}")
        if bgr.shape[1] > args.max_side:
            scale = args.max_side / bgr.shape[1]
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    prior = fit(load_model(args.stem), images, args.iterations, args.strength, args.residual_gain)
    out = args.stem.with_name(args.stem.name + ".entropy.safetensors")
    with temporary_path(out) as tmp:
        save_file(prior.arrays(), str(tmp))
    print(f"wrote {out} from {len(images)} images")


if __name__ == "__main__":
    main()
