"""Dataset readers. Each returns a sized iterable of :class:`pipeline.frames.Sequence`.

Built from config with ``hydra.utils.instantiate(cfg.dataset)`` (see ``conf/dataset/``).
"""

from pipeline.datasets.base import SequenceDataset
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.datasets.folder import FolderDataset
from pipeline.datasets.video import VideoDataset

__all__ = ["CityscapesDataset", "FolderDataset", "SequenceDataset", "VideoDataset"]
