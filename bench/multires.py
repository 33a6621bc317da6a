"""One stream, several sizes (issue 17): direct decodes at 1/2 and 1/4 size against "full decode, then downscale".

    python -m bench.multires images [--iterations 12] [--weights codec/weights/intra]
    python -m bench.multires sequence [--sequence seq0003] [--frames 30] [key=value ...]
    python -m bench.multires timing [--rounds 3] [--weights codec/weights/intra]
    python -m bench.multires sharpen [--sequence seq0000] [--size 1024x512]

``images``: held-out frames no training source read (KITTI and Sintel, and seq0003 frames the intra model's
training skipped), each coded once at full size with every block for every iteration. Per iteration count:
PSNR and MS-SSIM against the area-downscaled original of the direct decode and of the full decode downscaled
(cv2.INTER_AREA), and the bits a second stream coded at the small size would need for the direct decode's PSNR
(the intra model on the downscaled original, bits interpolated in log scale; at least its first iteration's):
what decoding at reduced size saves against storing that second stream. Decode times on the 2048x1024 frames, same run.

``sequence``: one shared Cityscapes sequence (2048x1024 source, no head's training read it) coded with the
default rate control (``key=value`` overrides the coder config), then decoded in full and directly at 1/2 and
1/4 size (the 1/2 loop, area-downscaled: ``LOOP_FACTOR`` in pipeline/video/coder.py): per-frame quality of both
against the downscaled original (the drift curve over the GOP) and the decode times (full decode + resize
against direct decode), and the drift without the sharpened sampling of the reduced reference
(``motion.reduced_sharpen``) for comparison.

``timing``: only the decode times of ``images`` (full decode + resize against direct decodes, and the floor of any
1/2 head: the entropy decoding and trunk layers with a head that costs nothing), a few rounds on each
held-out 2048x1024 frame; run it alone on a core (``taskset``), as the full bench shares its cores with the coding.

``sharpen``: how ``motion.reduced_sharpen`` was chosen, on a training sequence. The sequence is coded once; then
the reduced-size loop runs with the coder's own residuals, area-downscaled (so only the prediction differs),
for each sharpening, scored against the full decode downscaled.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from bench.eval_cityscapes import DATA
from bench.results import append
from codec.coder import ImageCodec, to_image, to_tensor
from codec.scaled import TRUNK, scaled_size
from codec.zoo import WEIGHTS_DIR
from pipeline.datasets import FolderDataset
from pipeline.frames import Frame
from pipeline.image_quality import MSSSIM_MIN_SIDE, msssim, psnr
from pipeline.imageio import read_image
from pipeline.paths import CONF_DIR, REPO_DIR
from pipeline.video import container
from pipeline.video.build import build_coder
from pipeline.video.coder import LOOP_FACTOR

SHARED = REPO_DIR.parent / "shared" / "data"
SCALES = {0.5: 2, 0.25: 4}
HELD_OUT_CITYSCAPES = (2, 8, 14, 20, 26)  # seq0003 frames; intra training read frames 0, 5, 11, 17, 23, 29


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = scaled_size(image.shape[0], image.shape[1], factor)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def held_out_images() -> list[np.ndarray]:
    paths = [SHARED / "kitti_flow_example" / f"frame{i}.png" for i in (1, 2)]
    paths += sorted((SHARED / "sintel_raft_demo").glob("*.png"))
    frames = sorted((DATA / "seq0003").glob("*.jpg"))
    paths += [frames[i] for i in HELD_OUT_CITYSCAPES]
    missing = [p for p in paths if not p.is_file()]
    if missing or len(frames) < 30:
        raise SystemExit(f"held-out images not found ({missing[:1] or DATA / 'seq0003'}): the shared data lives "
                         "beside the checkout")
    return [read_image(p) for p in paths]


def _prefix_bits(chunks: list[bytes]) -> np.ndarray:
    """Bits of a stream cut after each iteration: its meta chunk plus the iteration chunks so far."""
    return np.cumsum([8 * len(c) for c in chunks[1:]]) + 8 * len(chunks[0])


def _bits_for(psnrs: np.ndarray, bits: np.ndarray, target: float) -> float:
    """Bits a stream needs for ``target`` dB on its (PSNR, bits) curve, log-linear; below the curve its first
    iteration's bits (it needs at least those); NaN above it."""
    if target > psnrs[-1]:
        return float("nan")
    return float(np.exp(np.interp(target, psnrs, np.log(bits))))


def images(args: argparse.Namespace) -> int:
    codec = ImageCodec.load(args.weights)
    n = args.iterations
    rows = {f: {k: np.zeros(n) for k in ("psnr", "psnr_ref", "ms", "ms_ref", "ms_count", "saved", "saved_n")}
            for f in SCALES.values()}
    bpp = np.zeros(n)
    timings = {f: [] for f in (1, *SCALES.values())}
    pictures = held_out_images()
    for image in pictures:
        codes = codec.encode(to_tensor(image), n)
        cumulative = _prefix_bits(codec.codes_to_chunks(codes))
        bpp += cumulative / (image.shape[0] * image.shape[1])
        full = [to_image(x) for x in codec.model.iter_decode(codes)]
        for factor in SCALES.values():
            target = downscale(image, factor)
            small_codes = codec.encode(to_tensor(target), n)  # the second stream this decode makes unnecessary
            small_bits = _prefix_bits(codec.codes_to_chunks(small_codes))
            small_psnr = np.maximum.accumulate([psnr(target, to_image(x))
                                                for x in codec.model.iter_decode(small_codes)])
            direct = codec.model.iter_decode(codes, head=codec.heads[factor])
            for t, (x, reference) in enumerate(zip(direct, full, strict=True)):
                row, decoded, ref = rows[factor], to_image(x), downscale(reference, factor)
                quality = psnr(target, decoded)
                row["psnr"][t] += quality
                row["psnr_ref"][t] += psnr(target, ref)
                if min(target.shape[:2]) >= MSSSIM_MIN_SIDE:
                    row["ms"][t] += msssim(target, decoded)
                    row["ms_ref"][t] += msssim(target, ref)
                    row["ms_count"][t] += 1
                saved = _bits_for(small_psnr, small_bits, quality)
                if np.isfinite(saved):
                    row["saved"][t] += saved / cumulative[t]
                    row["saved_n"][t] += 1
        if image.shape[1] >= 2048:
            _time_decodes(codec, codec.compress(image, 8), 2, timings)
    count = len(pictures)
    lines = [f"{count} held-out images (KITTI frame1-2, Sintel frames 16-25, seq0003 frames "
             f"{', '.join(map(str, HELD_OUT_CITYSCAPES))}), each coded once at full size, every block for every "
             f"iteration; means over images. *direct*: decoded at the small size by the head; *full+down*: full "
             f"decode, then INTER_AREA. Both against the INTER_AREA-downscaled original. *second stream*: bits a "
             f"stream coded at the small size needs for the direct decode's PSNR, as a share of the full-size "
             f"stream's bits (what the direct decode saves; at least the second stream's first iteration; n/a where "
             f"the direct decode beats its last one; in brackets the images counted). MS-SSIM over the images at "
             f"least {MSSSIM_MIN_SIDE} px high at that size. Load average {os.getloadavg()[0]:.1f}.", ""]
    for scale, factor in SCALES.items():
        row = rows[factor]
        lines += [f"Scale {scale}:", "",
                  "| iterations | bpp (full stream) | PSNR direct | PSNR full+down | gap dB | MS-SSIM direct | "
                  "MS-SSIM full+down | second stream / full stream |", "|---|---|---|---|---|---|---|---|"]
        for t in range(n):
            ms = row["ms_count"][t]
            saved = f"{row['saved'][t] / row['saved_n'][t]:.0%} ({int(row['saved_n'][t])})" if row["saved_n"][t] \
                else "n/a"
            lines.append(f"| {t + 1} | {bpp[t] / count:.3f} | {row['psnr'][t] / count:.2f} | "
                         f"{row['psnr_ref'][t] / count:.2f} | {(row['psnr'][t] - row['psnr_ref'][t]) / count:+.2f} | "
                         f"{row['ms'][t] / ms:.4f} | {row['ms_ref'][t] / ms:.4f} | {saved} |")
        lines.append("")
    lines.append(_timing_line(timings))
    append("Multi-resolution decoding: image streams", "\n".join(lines))
    return 0


def _time_decodes(codec: ImageCodec, data: bytes, rounds: int, timings: dict[int, list[float]]) -> None:
    """Append to ``timings`` the seconds of full decode + resize to 1/2 (key 1) and of each direct decode (key
    factor) of the stream ``data``, ``rounds`` times."""
    for _ in range(rounds):
        start = time.perf_counter()
        downscale(codec.decompress(data), 2)
        timings[1].append(time.perf_counter() - start)
        for factor in SCALES.values():
            start = time.perf_counter()
            codec.decompress(data, scale=1 / factor)
            timings[factor].append(time.perf_counter() - start)


class FreeHead(nn.Module):
    """A 1/2-size head that costs nothing (zeros): what a direct decode takes whatever its head, the entropy
    decoding and the trunk layers the bits need at any size."""

    trunk, factor = TRUNK, 2

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, state: tuple | None = None,
                positions: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return x.new_zeros(x.shape[0], 3, 2 * x.shape[2], 2 * x.shape[3]), None


def _time_floor(codec: ImageCodec, data: bytes, rounds: int) -> list[float]:
    """Seconds of ``rounds`` 1/2-size decodes of the stream ``data`` with :class:`FreeHead`."""
    head = codec.heads[2]
    codec.heads[2] = FreeHead()
    try:
        seconds = []
        for _ in range(rounds):
            start = time.perf_counter()
            codec.decompress(data, scale=0.5)
            seconds.append(time.perf_counter() - start)
        return seconds
    finally:
        codec.heads[2] = head


def _timing_line(timings: dict[int, list[float]]) -> str:
    full_time = float(np.median(timings[1]))
    return (f"Decode time of a 2048x1024 seq0003 frame at 8 iterations (median of {len(timings[1])}, 1 torch "
            f"thread): full decode + resize to 1/2 {full_time:.2f} s; direct 1/2 "
            f"{np.median(timings[2]):.2f} s ({np.median(timings[2]) / full_time:.0%}); direct 1/4 "
            f"{np.median(timings[4]):.2f} s ({np.median(timings[4]) / full_time:.0%}).")


def timing(args: argparse.Namespace) -> int:
    """Only the decode times of ``images``, ``--rounds`` rounds on each held-out 2048x1024 frame (to be run alone
    on a core: the full bench shares its cores with the coding)."""
    codec = ImageCodec.load(args.weights)
    timings: dict[int, list[float]] = {f: [] for f in (1, *SCALES.values())}
    load = os.getloadavg()[0]
    floor: list[float] = []
    for image in (im for im in held_out_images() if im.shape[1] >= 2048):
        data = codec.compress(image, 8)
        _time_decodes(codec, data, args.rounds, timings)
        floor += _time_floor(codec, data, args.rounds)
    share = np.median(floor) / np.median(timings[1])
    append("Multi-resolution decoding: decode time", f"`{args.weights}` and its heads; load average {load:.1f} -> "
           f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n\n" + _timing_line(timings) +
           f" The floor of any 1/2 head (entropy decoding and the {TRUNK} trunk layers, a head that costs nothing): "
           f"{np.median(floor):.2f} s ({share:.0%}).")
    return 0


def sequence(args: argparse.Namespace) -> int:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=args.overrides)
    seq = next(iter(FolderDataset(DATA / args.sequence, frames_per_sequence=args.frames)))
    originals = [f.image for f in seq]
    names = [f.name for f in seq]
    coder = build_coder(cfg)
    start = time.perf_counter()
    coded = list(coder.encode(Frame(image, name, i) for i, (image, name) in enumerate(zip(originals, names,
                                                                                          strict=True))))
    encode_s = time.perf_counter() - start
    data = container.encode_header(coder.header(names, *originals[0].shape[:2]))
    data += b"".join(container.encode_record(c.record) for c in coded)
    bpp = 8 * len(data) / (len(originals) * originals[0].shape[0] * originals[0].shape[1])
    start = time.perf_counter()
    for _, image in coder.decode(data):
        downscale(image, 2)
    full_s = time.perf_counter() - start
    decoded, seconds = {}, {}
    for scale, factor in SCALES.items():
        start = time.perf_counter()
        decoded[factor] = [image for _, image in coder.decode(data, scale=scale)]
        seconds[factor] = time.perf_counter() - start
    sharpen, coder.motion.reduced_sharpen = coder.motion.reduced_sharpen, {}
    bilinear = {f: [image for _, image in coder.decode(data, scale=s)] for s, f in SCALES.items()}  # the ablation
    coder.motion.reduced_sharpen = sharpen
    full_frames = [c.decoded for c in coded]
    lines = [f"`{args.sequence}` ({len(originals)} frames, {originals[0].shape[1]}x{originals[0].shape[0]}, one GOP; "
             f"no head's training read it), coded once with the default coder (rate.quality "
             f"{cfg.rate.quality}, mode {cfg.mode}): {bpp:.4f} bpp, encode {encode_s:.0f} s. Each frame decoded "
             f"directly at the small size (*direct*, P-frames predicted from the previous small frame; at 1/4 the "
             f"1/2 loop, area-downscaled) and in full, "
             f"then INTER_AREA (*full+down*); both against the downscaled original. Load average "
             f"{os.getloadavg()[0]:.1f}, {torch.get_num_threads()} torch threads.", "",
             "| frame | type | PSNR 1/2 direct | 1/2 full+down | gap dB | MS-SSIM 1/2 direct | 1/2 full+down | "
             "PSNR 1/4 direct | 1/4 full+down | gap dB |", "|---|---|---|---|---|---|---|---|---|---|"]
    gaps = {f: [] for f in SCALES.values()}
    for i, original in enumerate(originals):
        cells = []
        for factor in SCALES.values():
            target = downscale(original, factor)
            direct, ref = psnr(target, decoded[factor][i]), psnr(target, downscale(full_frames[i], factor))
            gaps[factor].append(direct - ref)
            cells += [f"{direct:.2f}", f"{ref:.2f}", f"{direct - ref:+.2f}"]
            if factor == 2:
                cells += [f"{msssim(target, decoded[2][i]):.4f}", f"{msssim(target, downscale(full_frames[i], 2)):.4f}"]
        lines.append(f"| {i} | {coded[i].record.type} | " + " | ".join(cells) + " |")
    plain = {f: [psnr(downscale(o, f), bilinear[f][i]) - psnr(downscale(o, f), downscale(full_frames[i], f))
                 for i, o in enumerate(originals)] for f in SCALES.values()}
    lines += ["", "Mean gap (direct - full+down) over the GOP: " + ", ".join(
        f"1/{f} {np.mean(g):+.2f} dB (I-frame {g[0]:+.2f}, last P-frame {g[-1]:+.2f})" for f, g in gaps.items()),
        "", f"The same with plain bilinear sampling of the reduced reference (`motion.reduced_sharpen` "
        f"{dict(sharpen)} off): " + ", ".join(
        f"1/{f} {np.mean(g):+.2f} dB (last P-frame {g[-1]:+.2f})" for f, g in plain.items()),
        "", f"Decode time of the {len(originals)} frames: full decode + resize to 1/2 {full_s:.1f} s; direct 1/2 "
        f"{seconds[2]:.1f} s ({seconds[2] / full_s:.0%}); direct 1/4 {seconds[4]:.1f} s ({seconds[4] / full_s:.0%})."]
    append(f"Multi-resolution decoding: sequence {args.sequence}", "\n".join(lines))
    return 0


def sharpen(args: argparse.Namespace) -> int:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config")
    seq = next(iter(FolderDataset(DATA / args.sequence, frames_per_sequence=30, resize=args.size)))
    coder = build_coder(cfg)
    coded = list(coder.encode(seq))
    shape = coded[0].decoded.shape
    levels = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
    lines = [f"`{args.sequence}` ({len(coded)} frames at {args.size}; a training sequence), coded once with the "
             f"default coder; the reduced-size loop with the coder's own residuals area-downscaled, so only the "
             f"prediction differs. PSNR against the full decode downscaled, mean over the P-frames / last P-frame. "
             f"Load average {os.getloadavg()[0]:.1f}.", "",
             "| sharpen | " + " | ".join(map(str, levels)) + " |", "|---|" + "---|" * len(levels)]
    for factor in (LOOP_FACTOR,):  # the only size a reduced loop runs at
        cells = []
        for level in levels:
            coder.motion.reduced_sharpen = {factor: level}
            small, scores = downscale(coded[0].decoded, factor), []
            for frame in coded[1:]:
                vectors = coder.motion.decode(frame.record.blobs[0], shape)
                residual = frame.decoded.astype(np.float32) - frame.prediction.astype(np.float32)
                prediction = coder.motion.compensate(small, vectors, factor).astype(np.float32)
                residual = cv2.resize(residual, small.shape[1::-1], interpolation=cv2.INTER_AREA)
                small = np.clip(np.round(prediction + residual), 0, 255).astype(np.uint8)
                scores.append(psnr(downscale(frame.decoded, factor), small))
            cells.append(f"{np.mean(scores):.2f} / {scores[-1]:.2f}")
        lines.append(f"| 1/{factor} | " + " | ".join(cells) + " |")
    append(f"Multi-resolution decoding: reduced-reference sharpening, {args.sequence}", "\n".join(lines))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("images")
    one.add_argument("--iterations", type=int, default=12)
    one.add_argument("--weights", default=str(WEIGHTS_DIR / "intra"), help="model stem, heads beside it")
    seq = sub.add_parser("sequence")
    seq.add_argument("--sequence", default="seq0003")
    seq.add_argument("--frames", type=int, default=30)
    seq.add_argument("overrides", nargs="*")
    clock = sub.add_parser("timing")
    clock.add_argument("--rounds", type=int, default=3)
    clock.add_argument("--weights", default=str(WEIGHTS_DIR / "intra"), help="model stem, heads beside it")
    tune = sub.add_parser("sharpen")
    tune.add_argument("--sequence", default="seq0000")
    tune.add_argument("--size", default="1024x512")
    args = parser.parse_args()
    torch.set_num_threads(1)
    return {"images": images, "sequence": sequence, "timing": timing, "sharpen": sharpen}[args.what](args)


if __name__ == "__main__":
    raise SystemExit(main())
