"""The sentence embedder, loaded from an installed package or a local directory. Never downloads."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode.config import Settings
from medcode.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Embedder", "default_threads"]


def _resolve(spec: str) -> tuple[Path, str]:
    """Map the ``embedder`` setting to a model directory and a stable embedder id."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path, f"dir:{path.resolve().name}"
    module = spec.replace("-", "_")
    found = importlib.util.find_spec(module) if module.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        raise ConfigError(f"embedder {spec!r} is neither a directory nor an installed package")
    model_dir = Path(next(iter(found.submodule_search_locations))) / "model"
    if not (model_dir / "modules.json").is_file():
        raise ConfigError(f"package {spec!r} has no sentence-transformers model under {model_dir}")
    try:
        version = metadata.version(spec)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return model_dir, f"{spec}=={version}"


def default_threads() -> int:
    """Torch threads when none are configured: the CPUs this process may use, at most 4.

    On 2 idle cores, 2 threads coded a case report in 1.0 s against 1.4 s with 1 (median of 20 CodiEsp
    dev notes, one run each, same codes)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


class Embedder:
    """L2-normalised sentence embeddings (cosine similarity = dot product).

    Raises ``ConfigError`` when the model cannot be found. The model loads on first use. ``encode(...,
    cache=True)`` remembers the last ``cache_size`` texts it embedded: the validators' quotes are mostly the
    note sentences retrieval has just embedded (103 of 115 on 15 CodiEsp dev notes).
    """

    def __init__(self, spec: str, threads: int | None = None, cache_size: int = 4096) -> None:
        self.model_dir, self.id = _resolve(spec)
        self.threads = threads or default_threads()
        self.cache_size = cache_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._recent_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder:
        """The embedder the settings name (``embedder``, ``embed_threads``); raises ``ConfigError``."""
        return cls(settings.embedder, settings.embed_threads)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # the "Loading weights" bar on every load
                hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

                torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        # sentence-transformers 6 renamed the method (the old name warns); older releases have only the old one.
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: list[str], batch_size: int = 64, *, cache: bool = False) -> NDArray[np.float32]:
        """Embed texts; returns an ``(n, dim)`` float32 array of unit vectors.

        With ``cache`` the texts embedded recently (with ``cache`` too) are not embedded again."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if not cache:
            return self._embed(model, texts, batch_size)
        with self._recent_lock:
            known = {t: self._recent[t] for t in texts if t in self._recent}
            for t in known:
                self._recent.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = dict(zip(missing, self._embed(model, missing, batch_size), strict=True))
            known.update(fresh)
            with self._recent_lock:
                self._recent.update(fresh)
                while len(self._recent) > self.cache_size:
                    self._recent.popitem(last=False)
        return np.stack([known[t] for t in texts])

    @staticmethod
    def _embed(model: Any, texts: list[str], batch_size: int) -> NDArray[np.float32]:
        vectors = model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
