"""Which ICD-10-CM release applies to a date of service, and where its store lives."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import threading
from importlib import resources
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from medcode.codesets._build import build_store
from medcode.codesets._icd10cm import ICD10CMCodeSet
from medcode.codesets._models import Release
from medcode.config import Settings
from medcode.errors import CodeSetBuildError, ConfigError, DateOutOfRangeError

__all__ = ["CodeSetRegistry", "packaged_releases"]

log = logging.getLogger(__name__)

_RELEASES = TypeAdapter(list[Release])


def packaged_releases() -> list[Release]:
    """Releases medcode ships definitions for (``codesets/data/releases.json``)."""
    text = resources.files("medcode.codesets").joinpath("data/releases.json").read_text(encoding="utf-8")
    return _RELEASES.validate_json(text)


def _read_releases_file(path: Path) -> list[Release]:
    try:
        return _RELEASES.validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read code-set releases file {path}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"invalid code-set releases file {path}: {exc.errors()[0]['msg']}") from None


class CodeSetRegistry:
    """All loaded ICD-10-CM releases; picks one by date of service.

    Adding a release (say October 2026) is data: list it in the file named by
    ``MEDCODE_CODESET_RELEASES_FILE`` with a ``files`` source. Stores are built on first use
    under ``<data_dir>/codesets/``.
    """

    def __init__(self, settings: Settings) -> None:
        releases = packaged_releases()
        if settings.codeset_releases_file is not None:
            releases += _read_releases_file(settings.codeset_releases_file)
        ids = [r.id for r in releases]
        if len(ids) != len(set(ids)):
            raise ConfigError(f"duplicate code-set release ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        releases.sort(key=lambda r: r.effective_from)
        for earlier, later in itertools.pairwise(releases):
            if later.effective_from <= earlier.effective_to:
                raise ConfigError(f"code-set releases {earlier.id} and {later.id} overlap in effective dates")
        self.releases = releases
        self.store_dir = settings.data_dir / "codesets"
        self._open: dict[str, ICD10CMCodeSet] = {}
        self._lock = threading.Lock()

    def release_for(self, date_of_service: dt.date | None = None) -> Release:
        """The release covering ``date_of_service``; the newest release when it is None.

        Raises ``DateOutOfRangeError`` when no release covers the date (never a silent fallback).
        """
        if date_of_service is None:
            return self.releases[-1]
        for release in self.releases:
            if release.covers(date_of_service):
                return release
        spans = ", ".join(f"{r.id} ({r.effective_from}..{r.effective_to})" for r in self.releases)
        raise DateOutOfRangeError(
            f"no loaded ICD-10-CM release covers date of service {date_of_service.isoformat()}; loaded: {spans}"
        )

    def get(self, date_of_service: dt.date | None = None) -> ICD10CMCodeSet:
        """Open (building on first use) the code set for a date of service."""
        return self.open(self.release_for(date_of_service))

    def open(self, release: Release) -> ICD10CMCodeSet:
        """Open a release's store, building it if missing or stale. Raises ``CodeSetBuildError``."""
        with self._lock:
            cached = self._open.get(release.id)
            if cached is not None:
                return cached
            path = self.store_dir / f"{release.id}.sqlite"
            codeset: ICD10CMCodeSet | None = None
            if path.is_file():
                try:
                    codeset = ICD10CMCodeSet(path)
                except CodeSetBuildError as exc:
                    log.warning("rebuilding the code-set store of %s: %s", release.id, exc)
                    codeset = None
                if codeset is not None and codeset.release != release:
                    log.warning(
                        "rebuilding the code-set store %s: it was built from another definition of %s", path, release.id
                    )
                    codeset.close()
                    codeset = None
            if codeset is None:
                build_store(release, path)
                codeset = ICD10CMCodeSet(path)
            self._open[release.id] = codeset
            return codeset

    def describe(self) -> list[dict[str, str]]:
        """The loaded releases as plain dicts (for ``--json`` output)."""
        return [json.loads(r.model_dump_json()) for r in self.releases]
