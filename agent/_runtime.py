"""``Runtime``: the heavy parts of one process, owned in one place.

Like an httpx ``Client`` owns its transport and connection pool, a ``Runtime`` owns the code-set
registry, the embedder, one retriever per code-set release, the validator pipeline, the procedure
proposer (with its small procedure index) and the LLM client. The embedded LLM server is the one thing that may outlive it: by default the client uses the
data directory's shared keep-alive server, which later processes reuse until it is idle for
``llm_keep_alive_s``; with ``llm_keep_alive_s = 0`` the server is private and stops on ``close``.
Everything else loads on first use and is shared by
every coder, the copilot's worker and the evaluation harness that use the runtime; ``close``
releases it all. There are no module-level caches: two runtimes share nothing, and closing a
``MedicalCoder`` that was given a runtime leaves the runtime open for its other users.
"""

from __future__ import annotations

import datetime as dt
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from medcode.agent._acceptance import AcceptanceModel, load_acceptance_model
from medcode.agent._procedure_proposer import ProcedureProposer, open_procedure_index
from medcode.codesets import CodeSetRegistry
from medcode.config import Settings
from medcode.errors import ConfigError
from medcode.retrieval import Embedder, HybridRetriever
from medcode.retrieval._ranker import CandidateRanker, load_ranker, settings_ranker
from medcode.validators import ValidatorPipeline

if TYPE_CHECKING:
    from medcode.agent.llm import LLMClient

__all__ = ["Runtime"]


class Runtime:
    """Code sets, embedder, retrievers, validators and the LLM of one process. Thread-safe.

    Nothing is loaded until asked for. ``retriever`` raises ``IndexNotBuiltError`` /
    ``IndexMismatchError`` when the index cannot be opened and ``auto_build_index`` is off;
    ``llm`` raises ``ModelWeightsError`` when the embedded model is missing and ``ConfigError``
    for bad LLM settings. Using a closed runtime raises ``RuntimeError``.

    The retrievers re-order candidates with the candidate ranker the acceptance model was trained on,
    when it names one (``AcceptanceModel.candidate_ranker``), else as the settings say;
    ``model_ranker=False`` (for training a new model) always follows the settings.
    """

    def __init__(self, settings: Settings, *, auto_build_index: bool = True, model_ranker: bool = True) -> None:
        self.settings = settings
        self.auto_build_index = auto_build_index
        self.model_ranker = model_ranker
        self.registry = CodeSetRegistry(settings)
        self._lock = threading.RLock()
        self._embedder: Embedder | None = None
        self._retrievers: dict[str, HybridRetriever] = {}
        self._validators: ValidatorPipeline | None = None
        self._llm: LLMClient | None = None
        self._acceptance: AcceptanceModel | None = None
        self._ranker: CandidateRanker | None = None  # resolved once, shared by every release's retriever
        self._ranker_resolved = False
        self._procedure_proposer: ProcedureProposer | None = None
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this medcode Runtime is closed")

    @property
    def embedder(self) -> Embedder:
        """The sentence embedder shared by retrieval and the validators (loads on first encode)."""
        with self._lock:
            self._check_open()
            if self._embedder is None:
                self._embedder = Embedder.from_settings(self.settings)
            return self._embedder

    def retriever(self, date_of_service: dt.date | None = None) -> HybridRetriever:
        """The retriever for the code-set release in force on ``date_of_service`` (opened once).

        Raises ``ConfigError`` when the acceptance model's candidate ranker is missing or conflicts with
        the one the settings name.
        """
        codeset = self.registry.get(date_of_service)
        with self._lock:
            self._check_open()
            retriever = self._retrievers.get(codeset.version)
            if retriever is None:
                retriever = HybridRetriever(
                    self.settings,
                    codeset,
                    auto_build=self.auto_build_index,
                    embedder=self.embedder,
                    ranker=self._candidate_ranker(),
                )
                self._retrievers[codeset.version] = retriever
            return retriever

    def _candidate_ranker(self) -> CandidateRanker | None:
        """The acceptance model's ranker, else the settings' (loaded once: call with the lock held)."""
        if not self._ranker_resolved:
            trained_on = self.acceptance_model.candidate_ranker() if self.model_ranker else None
            named = self.settings.candidate_ranker_file
            if trained_on is None:
                self._ranker = settings_ranker(self.settings)
            elif (
                self.settings.candidate_ranker
                and named is not None
                and load_ranker(named).version != trained_on.version
            ):
                raise ConfigError(
                    f"candidate_ranker_file {named} is not the candidate ranker acceptance model "
                    f"{self.acceptance_model.version} was trained on ({trained_on.version}): unset it or retrain the model"
                )
            else:
                self._ranker = trained_on
            self._ranker_resolved = True
        return self._ranker

    @property
    def validators(self) -> ValidatorPipeline:
        """The validator pipeline (ConText and the relatedness model load on first use)."""
        with self._lock:
            self._check_open()
            if self._validators is None:
                self._validators = ValidatorPipeline(self.settings, registry=self.registry, embedder=self.embedder)
            return self._validators

    @property
    def acceptance_model(self) -> AcceptanceModel:
        """The acceptance model: the site's promoted one, else the packaged one. Raises ``ConfigError``."""
        with self._lock:
            self._check_open()
            if self._acceptance is None:
                model = load_acceptance_model(self.settings)
                if model is None:
                    raise ConfigError("no acceptance model: the package's agent/data/acceptance.json is missing")
                self._acceptance = model
            return self._acceptance

    @property
    def procedure_proposer(self) -> ProcedureProposer:
        """The procedure proposer over the procedure index (built on first use under the data dir, a few seconds).

        Raises ``CodeSetBuildError`` when the ICD-10-PCS or HCPCS data is not installed, ``ConfigError`` when the
        index cannot be written.
        """
        systems = self.validators.systems  # the validators' code systems: PCS and HCPCS load once per process
        with self._lock:
            self._check_open()
            if self._procedure_proposer is None:
                self._procedure_proposer = ProcedureProposer(open_procedure_index(self.settings, systems))
            return self._procedure_proposer

    def llm(self) -> LLMClient:
        """The LLM client; for the embedded model, the server is found or started on the first request."""
        with self._lock:
            self._check_open()
            if self._llm is None:
                from medcode.agent.llm import LLMClient

                self._llm = LLMClient(self.settings)
            return self._llm

    def close(self) -> None:
        """Close retrievers, validators and the LLM client. Idempotent.

        A private embedded server (``llm_keep_alive_s = 0``) stops here; the shared keep-alive server keeps
        running for the next process (``medcode llm stop`` stops it).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            retrievers, self._retrievers = list(self._retrievers.values()), {}
            validators, self._validators = self._validators, None
            llm, self._llm = self._llm, None
            procedures, self._procedure_proposer = self._procedure_proposer, None
        if procedures is not None:
            procedures.index.close()
        for retriever in retrievers:
            retriever.close()
        if validators is not None:
            validators.close()
        if llm is not None:
            llm.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
