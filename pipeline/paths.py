"""Where the project's own files are, whatever the working directory; ``${repo:REL}`` in configs resolves here."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

REPO_DIR = Path(__file__).resolve().parent.parent
CONF_DIR = REPO_DIR / "conf"
OmegaConf.register_new_resolver("repo", lambda rel="": str(REPO_DIR / rel), replace=True)
