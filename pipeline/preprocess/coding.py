"""The real per-sequence job: the closed-loop video coder of ``pipeline.video``, built once per worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

from pipeline.frames import Sequence


class CodecJob:
    """``CodecJob(cfg)(sequence, stream_path, frames_dir, on_frame) -> summary``; a :data:`worker.CoderFactory`.

    The summary holds per-sequence averages (bpp, psnr, msssim, flow_consistency, ...), as
    :meth:`pipeline.video.sequence.SequenceResult.summary` returns them.
    """

    def __init__(self, cfg: DictConfig) -> None:
        # Imported here so that planning and the engines do not load the model stack in the driver.
        from pipeline.video.build import build_coder, build_flow_score

        self.coder = build_coder(cfg)
        self.flow_score = build_flow_score(cfg)
        self.verify = bool(cfg.preprocess.verify)
        self.scales = [float(s) for s in cfg.preprocess.frame_scales]
        for scale in self.scales:
            self.coder.check_scale(scale)  # fails before any coding

    def __call__(self, sequence: Sequence, stream_path: Path, frames_dir: Path | None,
                 on_frame: Callable[[], None] | None = None) -> dict:
        from pipeline.imageio import write_image
        from pipeline.preprocess.jobs import frame_subdirs
        from pipeline.video.sequence import code_sequence, png_name

        full = frames_dir if 1.0 in self.scales else None
        result = code_sequence(self.coder, sequence, stream_path, full, flow_score=self.flow_score,
                               verify=self.verify, on_frame=None if on_frame is None else lambda _row: on_frame())
        if frames_dir is not None:
            data = stream_path.read_bytes()
            for scale, subdir in zip(self.scales, frame_subdirs(self.scales), strict=True):
                if subdir:  # the same stream decoded directly at the smaller size
                    (frames_dir / subdir).mkdir(parents=True, exist_ok=True)
                    for name, image in self.coder.decode(data, str(stream_path), scale):
                        write_image(frames_dir / subdir / png_name(name), image)
        return result.summary()
