"""Batch coding on a Ray cluster: ``RayOptions`` and ``map_in_order``.

``medcode code-batch --ray`` and ``medcode eval --ray`` hand their notes to ``map_in_order``. It starts one Ray
actor per worker; each actor builds its ``MedicalCoder`` once (its own ``Runtime``: code sets, embedder, index,
validators, the LLM client) and then codes one note per task. The driver feeds the notes in input order with a
bounded window (``max_in_flight``: notes submitted but not yet handed back), sends each to the least loaded
worker, and yields the results **in input order** as they complete: a result that finishes before an earlier
one waits in a buffer the window bounds. The caller writes and fsyncs each one, so a results file is always an
input-order prefix plus nothing half-done.

Failures:

- A worker process that dies (killed, out of memory, a crashed node) is restarted by Ray (``max_restarts``),
  builds its coder again, and its unfinished notes are retried (``max_task_retries``). Tasks only compute: they
  write nothing (the caller records and writes in the driver), so a retried note is never recorded twice.
- A note that fails with a ``MedcodeError`` is the work function's business (code-batch and eval turn it into
  an error line). Any other exception in a worker, a worker that cannot start, or one that died more often than
  ``max_restarts`` allows raises ``DistributedError``; what was yielded before stays, and a rerun resumes.
- ``llm_concurrency`` caps the LLM calls in flight over the whole cluster (a remote endpoint shared by every
  worker: vLLM, llama.cpp server, a hosted API): a semaphore actor hands out slots around each
  ``LLMClient.complete``; the client's own transport retries and re-asks run inside the slot. A worker that
  dies holding slots gets them back when Ray restarts it. With the embedded model, workers on one machine share
  the data directory's keep-alive server as separate processes do.

PHI: notes travel to the workers and results back through Ray's object store (in memory, spilled to the
session's temp directory under pressure); keep the cluster inside the boundary that may hold note text. Nothing
here logs note text.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from medcode.agent._coder import MedicalCoder
from medcode.agent._runtime import Runtime
from medcode.agent.llm import LLMClient, LLMResult
from medcode.config import Settings
from medcode.errors import DistributedError, MissingDependencyError

__all__ = ["RayOptions", "map_in_order", "ray_options_from"]

log = logging.getLogger("medcode.agent.distributed")

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
ModelT = TypeVar("ModelT", bound=BaseModel)

# When this process starts the cluster itself: a small object store (notes and results are kilobytes).
_LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024


class RayOptions(BaseModel):
    """How a batch runs on Ray. Every field has a default that suits a one-machine cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str | None = Field(
        default=None,
        description="None: the cluster RAY_ADDRESS names, else a new local one ('local'); 'auto': a cluster "
        "already running on this machine (`ray start --head`); HOST:PORT or ray://HOST:PORT.",
    )
    workers: int | None = Field(default=None, ge=1, description="Actors, one coder each; None: the cluster's CPUs.")
    cpus_per_worker: float = Field(default=1.0, gt=0, description="CPUs Ray reserves for each worker.")
    notes_per_worker: int = Field(
        default=1, ge=1, le=64, description="Notes a worker codes at once (threads; more than 1 helps a remote LLM)."
    )
    max_in_flight: int | None = Field(
        default=None, ge=1, description="Notes submitted but not yet yielded; None: 2 x workers x notes_per_worker."
    )
    max_restarts: int = Field(default=3, ge=0, description="Restarts of a dead worker before the batch fails.")
    max_task_retries: int = Field(default=3, ge=0, description="Retries of a note whose worker died.")
    llm_concurrency: int | None = Field(
        default=None, ge=1, description="LLM calls in flight over all workers; None: no cap."
    )
    num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of a local cluster this process starts (None: the machine's)."
    )


def ray_options_from(settings: Settings, address: str | None, **fields: Any) -> RayOptions:
    """``RayOptions`` for a command: ``address`` ('' for a bare ``--ray``), else ``settings.ray_address``; the
    worker count and LLM cap from the settings unless ``fields`` give them. Raises ``MissingDependencyError``
    when Ray is not installed (checked here, before any note is read)."""
    _ray()
    chosen = address if address is not None else settings.ray_address
    values: dict[str, Any] = {
        "address": chosen or None,
        "workers": settings.ray_workers,
        "llm_concurrency": settings.llm_concurrency,
    }
    values.update({k: v for k, v in fields.items() if v is not None})
    return RayOptions(**values)


def _ray() -> Any:
    """The ``ray`` module, or ``MissingDependencyError`` naming the extra."""
    try:
        return importlib.import_module("ray")
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise MissingDependencyError("--ray needs Ray: pip install 'medcode[ray]'") from None


# -- the LLM slots -------------------------------------------------------------------------------------------


class _LLMSlots:
    """A Ray actor (asyncio): at most ``limit`` LLM calls hold a slot at once over the cluster.

    Slots are counted per holder (a worker's index, which survives its restarts), so a restarted worker hands
    back what its previous life held (``release_all``).
    """

    def __init__(self, limit: int) -> None:
        self._semaphore = asyncio.Semaphore(limit)
        self._held: Counter[str] = Counter()
        self._peak = 0
        self._limit = limit

    async def acquire(self, holder: str) -> None:
        await self._semaphore.acquire()
        self._held[holder] += 1
        self._peak = max(self._peak, sum(self._held.values()))

    async def release(self, holder: str) -> None:
        if self._held[holder] > 0:
            self._held[holder] -= 1
            self._semaphore.release()

    async def release_all(self, holder: str) -> int:
        count = self._held.pop(holder, 0)
        for _ in range(count):
            self._semaphore.release()
        return count

    async def stats(self) -> dict[str, int]:
        return {"limit": self._limit, "in_use": sum(self._held.values()), "peak": self._peak}


class _SlottedLLMClient(LLMClient):
    """An ``LLMClient`` whose every ``complete`` (retries and re-asks included) holds one cluster-wide slot."""

    def __init__(self, settings: Settings, *, slots: Any, holder: str) -> None:
        super().__init__(settings)
        self._slots = slots
        self._holder = holder

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        response_model: type[ModelT],
        *,
        validation_context: Mapping[str, Any] | None = None,
        max_reasks: int | None = None,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        seed: int | None = 0,
    ) -> LLMResult[ModelT]:
        ray = _ray()
        ray.get(self._slots.acquire.remote(self._holder))
        try:
            return super().complete(
                messages,
                response_model,
                validation_context=validation_context,
                max_reasks=max_reasks,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
            )
        finally:
            ray.get(self._slots.release.remote(self._holder))


class _WorkerRuntime(Runtime):
    """A worker's runtime: it never builds the index (the driver made sure it exists) and, with a slot actor,
    its LLM client waits for a cluster-wide slot around every call."""

    def __init__(self, settings: Settings, *, slots: Any, holder: str) -> None:
        super().__init__(settings, auto_build_index=False)
        self._slots = slots
        self._holder = holder
        self._slotted: _SlottedLLMClient | None = None
        self._slotted_lock = threading.Lock()

    def llm(self) -> LLMClient:
        if self._slots is None:
            return super().llm()
        with self._slotted_lock:
            self._check_open()
            if self._slotted is None:
                self._slotted = _SlottedLLMClient(self.settings, slots=self._slots, holder=self._holder)
            return self._slotted

    def close(self) -> None:
        with self._slotted_lock:
            slotted, self._slotted = self._slotted, None
        if slotted is not None:
            slotted.close()
        super().close()


# -- the workers ----------------------------------------------------------------------------------------------


class _CodingWorker(Generic[ItemT, ResultT]):
    """A Ray actor: one coder, built once (again after a restart), coding one item per ``run``."""

    def __init__(
        self,
        settings: Settings,
        make_coder: Callable[[Runtime], MedicalCoder],
        work: Callable[[MedicalCoder, ItemT], ResultT],
        slots: Any,
        index: int,
    ) -> None:
        holder = f"worker-{index}"
        if slots is not None:
            returned = _ray().get(slots.release_all.remote(holder))
            if returned:
                log.warning("worker %d restarted: %d LLM slot(s) of its previous life returned", index, returned)
        self._runtime = _WorkerRuntime(settings, slots=slots, holder=holder)
        try:
            self._coder = make_coder(self._runtime)
            self._coder.warm_up()
        except BaseException:
            self._runtime.close()
            raise
        self._work = work

    def ready(self) -> int:
        """The worker's process id, once its coder is loaded."""
        return os.getpid()

    def run(self, item: ItemT) -> ResultT:
        return self._work(self._coder, item)

    def close(self) -> None:
        self._coder.close()
        self._runtime.close()


def _connect(ray: Any, options: RayOptions) -> bool:
    """Connect to (or start) the cluster; True when this call started the connection (and must shut it down)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "configure_logging": False,
    }
    address = options.address or os.environ.get("RAY_ADDRESS") or "local"
    if address == "local":
        kwargs["object_store_memory"] = _LOCAL_OBJECT_STORE_BYTES
        if options.num_cpus is not None:
            kwargs["num_cpus"] = options.num_cpus
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise DistributedError(f"cannot connect to the Ray cluster at {address}: {_cause(exc)}") from None
    return True


def _ensure_index(settings: Settings) -> None:
    """Build (or finish) the index of the current code-set release in the driver, as a first ``medcode code``
    would: the workers only open it, so N of them never build it at once."""
    from medcode.codesets import CodeSetRegistry
    from medcode.retrieval import build_index, index_info

    codeset = CodeSetRegistry(settings).get()
    if index_info(settings, codeset.version).status != "complete":
        log.warning("building the retrieval index for %s before starting the Ray workers", codeset.version)
        build_index(settings, codeset)


def _cause(exc: BaseException) -> str:
    """A one-line description of a Ray failure (type and first line, no traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def map_in_order(
    settings: Settings,
    items: Sequence[ItemT],
    work: Callable[[MedicalCoder, ItemT], ResultT],
    *,
    make_coder: Callable[[Runtime], MedicalCoder],
    options: RayOptions | None = None,
    on_ready: Callable[[list[int]], None] | None = None,
) -> Iterator[ResultT]:
    """Yield ``work(coder, item)`` for every item, in input order, computed by Ray workers.

    ``make_coder`` builds a worker's coder on the runtime it is given (and must not close that runtime);
    ``work`` codes one item with it. Both run in the workers, so they must pickle (module-level functions,
    ``functools.partial`` of them, or instances of module-level classes). ``on_ready`` gets the workers'
    process ids once every coder is loaded. Closing the iterator early stops the workers. Raises
    ``MissingDependencyError`` without Ray and ``DistributedError`` as the module docstring says.
    """
    options = options or RayOptions()
    if not items:
        return
    ray = _ray()
    _ensure_index(settings)
    started = _connect(ray, options)
    actors: list[Any] = []
    slots: Any = None
    completed = False
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        count = options.workers or max(1, int(cpus // options.cpus_per_worker))
        count = min(count, len(items))
        if options.llm_concurrency is not None:
            slots = ray.remote(_LLMSlots).options(num_cpus=0, max_concurrency=1000).remote(options.llm_concurrency)
        worker_class = ray.remote(_CodingWorker).options(
            num_cpus=options.cpus_per_worker,
            max_restarts=options.max_restarts,
            max_task_retries=options.max_task_retries,
            max_concurrency=options.notes_per_worker,
        )
        if settings.embed_threads is None:  # a worker embeds on the CPUs Ray reserved for it, not on all of them
            settings = settings.model_copy(update={"embed_threads": max(1, int(options.cpus_per_worker))})
        actors = [worker_class.remote(settings, make_coder, work, slots, i) for i in range(count)]
        try:
            pids = ray.get([actor.ready.remote() for actor in actors])
        except ray.exceptions.RayError as exc:
            raise DistributedError(f"a Ray worker could not load its coder: {_cause(exc)}") from None
        log.info("%d Ray worker(s) ready (pids %s)", count, pids)
        if on_ready is not None:
            on_ready(list(pids))
        yield from _stream(ray, actors, items, options.max_in_flight or 2 * count * options.notes_per_worker, options)
        completed = True
    finally:
        if completed:  # let the coders close (LLM client, stores); a failed or abandoned batch just stops them
            ray.wait([actor.close.remote() for actor in actors], num_returns=len(actors), timeout=60)
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if slots is not None:
            ray.kill(slots, no_restart=True)
        if started:
            ray.shutdown()


def _stream(ray: Any, actors: list[Any], items: Sequence[ItemT], window: int, options: RayOptions) -> Iterator[ResultT]:
    pending: dict[Any, tuple[int, int]] = {}  # object ref -> (item position, worker)
    load = [0] * len(actors)
    finished: dict[int, ResultT] = {}
    next_submit = next_yield = 0
    while next_yield < len(items):
        while next_submit < len(items) and next_submit - next_yield < window:
            worker = min(range(len(actors)), key=load.__getitem__)
            pending[actors[worker].run.remote(items[next_submit])] = (next_submit, worker)
            load[worker] += 1
            next_submit += 1
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            position, worker = pending.pop(ref)
            load[worker] -= 1
            try:
                finished[position] = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                raise DistributedError(
                    f"Ray worker {worker} died more often than max_restarts={options.max_restarts} allows "
                    f"(item {position + 1} of {len(items)}): {_cause(exc)}"
                ) from None
            except ray.exceptions.RayError as exc:
                raise DistributedError(
                    f"Ray worker {worker} failed on item {position + 1} of {len(items)}: {_cause(exc)}"
                ) from None
        while next_yield in finished:
            yield finished.pop(next_yield)
            next_yield += 1
