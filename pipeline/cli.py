"""``python -m pipeline COMMAND [positional ...] [hydra overrides]``.

Hydra has no subcommands, so the command word and positional paths are taken off the argument list
here; the rest goes to ``@hydra.main`` unchanged, so ``--cfg job``, ``hydra.run.dir=...`` and
``-m`` sweeps behave as in any Hydra app.
"""

from __future__ import annotations

import importlib
import os
import sys

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from pipeline.errors import UserError
from pipeline.paths import CONF_DIR
from pipeline.threads import set_threads

# name -> (module with `main(cfg, args) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("pipeline.commands.run", "code sequences with motion-compensated RNN residuals (main job)"),
    "preprocess": ("pipeline.commands.preprocess", "code a whole dataset, resumable, local pool or Ray"),
    "evaluate": ("pipeline.commands.evaluate", "flow-quality report against JPEG, WebP, x264, x265, AV1"),
    "train": ("pipeline.commands.train", "train the RNN codec (L1, MS-SSIM, flow-consistency losses)"),
    "train_filter": ("pipeline.commands.train_filter", "train a restoration filter for a codec: restore=jpeg|x264"),
    "train_heads": ("pipeline.commands.train_heads", "train decoder heads for 1/2 and 1/4 size: heads=intra|residual"),
    "encode": ("pipeline.commands.encode", "encode one image: encode IN.png OUT.bin"),
    "decode": ("pipeline.commands.decode", "decode an image or sequence bitstream: decode IN.bin OUT"),
    "flow": ("pipeline.commands.flow", "optical flow of a frame pair: flow FRAME1 FRAME2 OUT.flo"),
    "plot": ("pipeline.commands.plot", "overlay RD curves of evaluate runs: plot A/results.json B/results.json"),
}

# Hydra flags that consume the next argument.
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                "--config-dir", "-cd", "--experimental-rerun"}
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


# Commands that code with torch in this process (train and preprocess have their own thread settings).
THREADED = {"run", "encode", "decode", "evaluate", "flow"}


def usage() -> str:
    lines = ["usage: python -m pipeline COMMAND [ARGS ...] [key=value ...]", "", "commands:"]
    width = max(map(len, COMMANDS))
    lines += [f"  {name:<{width}}  {helptext}" for name, (_, helptext) in COMMANDS.items()]
    lines += ["", "Options are Hydra overrides, e.g. `dataset=cityscapes dataset.root=DIR`;",
              "`python -m pipeline COMMAND --cfg job` prints the composed config."]
    return "\n".join(lines)


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate positional paths from Hydra's flags and ``key=value`` overrides (flags first, as Hydra's parser
    needs the overrides together at the end)."""
    positional: list[str] = []
    flags: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_FLAGS and i + 1 < len(argv):
            flags += argv[i : i + 2]
            i += 2
            continue
        if arg in {"--info", "-i"} and i + 1 < len(argv) and argv[i + 1] in _INFO_TOPICS:
            flags += argv[i : i + 2]
            i += 2
            continue
        if arg.startswith("-"):
            flags.append(arg)
        else:
            (overrides if "=" in arg else positional).append(arg)
        i += 1
    return positional, flags + overrides


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, _ = COMMANDS[command]
    if not CONF_DIR.is_dir():
        print(f"config directory {CONF_DIR} is missing: reinstall the project (`pip install .` or `pip install -e .`)",
              file=sys.stderr)
        return 2
    module = importlib.import_module(module_name)
    positional, hydra_args = split_args(rest)
    result = {"rc": 0}

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def entry(cfg: DictConfig) -> None:
        try:
            if command in THREADED:
                set_threads(cfg.get("threads"))
            result["rc"] = int(module.main(cfg, positional) or 0)
        except (UserError, ValueError, OSError, OmegaConfBaseException, InstantiationException) as err:
            # instantiate() wraps a component's own error; show the component's message.
            cause = err.__cause__ if isinstance(err, InstantiationException) else err
            expected = UserError | ValueError | OSError | OmegaConfBaseException
            if os.environ.get("DRIVECODEC_DEBUG") or not isinstance(cause, expected):
                raise
            print(f"drivecodec {command}: error: {cause}", file=sys.stderr)
            result["rc"] = 2

    saved = sys.argv
    sys.argv = [f"pipeline {command}", *hydra_args, f"command={command}"]
    try:
        entry()
    finally:
        sys.argv = saved
    return result["rc"]
