"""Where the check's items run (``check --executor``): this machine's process pool, or a Dask cluster.

Only the coordinating process reads and writes the cache and the baseline (run.py).  An executor
runs items and hands back their results, and a suite's rows as they finish, so that a budget which
cuts a suite short still reports what it reached.  Placing items on a cluster is Dask's job, never a
scheduler of ours: ``--scheduler ADDRESS`` names a running one, and without it the run starts a
``LocalCluster`` of its own and ends it with the run.

A run uses one ``Executor``; each of its phases (the items, then the minimisations) takes a
``Pool`` from it, which it stops (budget, Ctrl-C, SIGTERM) or closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from pcpuverify.check.cache import result_from_json, result_to_json
from pcpuverify.check.config import Config, load_plugin
from pcpuverify.check.environment import difference, environment
from pcpuverify.check.outcomes import CheckError
from pcpuverify.check.workers import Item, RowsFile, SuiteItem, _worker_init, run_item
from pcpuverify.proofs.results import Result

CONNECT_SECONDS = 30.0  # to reach a scheduler, and for it to have a worker
RESTART_SECONDS = 10.0  # for the workers of a cluster we did not start to come back after a stop
STOP_SECONDS = 0.5  # for a busy worker of our LocalCluster to stop before it is terminated


class Pool(Protocol):
    """The workers of one phase of a run."""

    def submit(self, item: Item) -> Future[Any]: ...

    def started(self, future: Future[Any]) -> bool: ...

    def streamed(self, future: Future[Any]) -> list[Result]:
        """The rows a suite item has reported so far (on a cluster they may arrive just after its result)."""
        ...

    def stop(self) -> None:
        """Drop what has not started and end what runs: no result of theirs is used."""
        ...

    def close(self) -> None: ...


class Executor(Protocol):
    """The workers of a whole run: a pool per phase, all ended by ``close`` (also when interrupted)."""

    def pool(self, size: int) -> Pool:
        """A pool for ``size`` items at most (a local pool's size; a cluster has the workers it has)."""
        ...

    def close(self) -> None: ...


def open_executor(config: Config) -> Executor:
    """The executor ``config`` asks for; nothing starts until a phase has items to run."""
    if config.executor == "dask":
        return DaskExecutor(config.scheduler, config.workers, config.plugins)
    return LocalExecutor(config.plugins)


def require_dask() -> ModuleType:
    """``distributed``, or one line saying how to install it (the ``cluster`` extra)."""
    try:
        import distributed
    except ImportError:
        raise CheckError("--executor dask needs Dask distributed, which is not installed:"
                         " pip install 'pcpu-verify[cluster]'") from None
    return distributed


# -- this machine --------------------------------------------------------------------------------------------


class LocalExecutor:
    def __init__(self, plugins: tuple[Path, ...]) -> None:
        self.plugins = plugins

    def pool(self, size: int) -> ProcessPool:
        return ProcessPool(size, self.plugins)

    def close(self) -> None:
        pass  # each pool ends its own processes


class ProcessPool:
    """A process pool that can be stopped mid-task (budget, Ctrl-C): ProcessPoolExecutor cannot, by itself.

    A suite's worker appends its rows to a file of the pool's temporary directory, which the
    coordinator reads while it runs.
    """

    def __init__(self, workers: int, plugins: tuple[Path, ...]) -> None:
        # spawn, not fork: the parent may run a progress thread, and a plugin must load the same way everywhere
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_worker_init, initargs=(plugins, os.getpid()))
        self.folder = tempfile.TemporaryDirectory(prefix="pcpu-verify-check-")
        self.rows_files: dict[Future[Any], Path] = {}

    def submit(self, item: Item) -> Future[Any]:
        rows_file = Path(self.folder.name) / f"item{len(self.rows_files)}.jsonl"
        future = self.executor.submit(run_item, item, RowsFile(str(rows_file)) if isinstance(item, SuiteItem) else None)
        self.rows_files[future] = rows_file
        return future

    def started(self, future: Future[Any]) -> bool:
        return future.running()

    def streamed(self, future: Future[Any]) -> list[Result]:
        """The rows in the item's file (a torn last line, from a worker stopped mid-write, is dropped)."""
        try:
            lines = self.rows_files[future].read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(result_from_json(json.loads(line)))
            except (ValueError, TypeError):
                break
        return out

    def stop(self) -> None:
        """Cancel what has not started and end the workers still running (their entries are never written)."""
        processes = list(getattr(self.executor, "_processes", {}).values())  # no public API ends running tasks
        self.executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=5)
        self.folder.cleanup()

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.folder.cleanup()


# -- a Dask cluster ------------------------------------------------------------------------------------------


class DaskExecutor:
    """Items as Dask tasks: on the cluster at ``address``, or on a LocalCluster of ``workers`` processes.

    Every worker runs one item at a time (one thread: Z3's context and Hypothesis's state are per
    process) and must have the coordinator's sources, solvers and plug-in files (environment.py).
    A task reports its start and each finished row as events on a topic of this run.
    """

    def __init__(self, address: str | None, workers: int, plugins: tuple[Path, ...]) -> None:
        self.address, self.workers, self.plugins = address, workers, plugins
        self.environment = environment(plugins)
        self.topic = f"pcpu-verify-{uuid.uuid4().hex}"
        self.client: Any = None
        self.cluster: Any = None
        self.lock = threading.Lock()
        self.running: dict[str, str] = {}  # task -> the address of the worker it runs on, once it started
        self.rows: dict[str, list[dict[str, Any]]] = {}  # task -> the rows it finished, as JSON

    def pool(self, size: int) -> DaskPool:
        return DaskPool(self, self._connect())

    def _connect(self) -> Any:
        if self.client is not None:
            return self.client
        distributed = require_dask()
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # its notices are not ours to print
        if self.address is None:
            with _cluster_starting():
                # The scheduler's HTTP server starts even with no dashboard, on 8787 unless told otherwise: on a
                # free port, so that a second check or the user's own cluster is no conflict (and no warning).
                self.cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                        processes=True, silence_logs=logging.CRITICAL,
                                                        dashboard_address=":0")
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(self.address, timeout=CONNECT_SECONDS)
                self.client.wait_for_workers(1, timeout=CONNECT_SECONDS)
            except (OSError, TimeoutError, ValueError) as e:
                raise CheckError(f"Dask scheduler {self.address}: none with a worker answered there within"
                                 f" {CONNECT_SECONDS:.0f} s ({type(e).__name__}: {e})") from None
        self.client.subscribe_topic(self.topic, self._event)
        self._check_workers()
        return self.client

    def _check_workers(self) -> None:
        """Refuse a worker that runs several items at once or runs other code than ours, before any runs."""
        for address, info in self.client.scheduler_info(n_workers=-1)["workers"].items():
            if info["nthreads"] != 1:
                raise CheckError(f"Dask worker {address} runs {info['nthreads']} threads: pcpu-verify needs one"
                                 " item per worker process (start the workers with --nthreads 1)")
        for address, theirs in self.client.run(_own_environment, self.plugins).items():
            _refuse_difference(address, self.environment, theirs)

    def _event(self, event: tuple[float, dict[str, Any]]) -> None:
        """A task's event (on the client's thread): it started on a worker, or it finished a row."""
        _, message = event
        with self.lock:
            if message["event"] == "start":
                self.running[message["task"]] = message["worker"]
            else:
                self.rows.setdefault(message["task"], []).append(json.loads(message["row"]))

    def end(self, tasks: list[str]) -> None:
        """End ``tasks`` where they run: a running Dask task cannot be cancelled, only its worker restarted.

        A LocalCluster of ours is left as it is: ``close``, which follows every stop, ends its workers.
        Another's cluster keeps its workers, but the nannies of those that ran our tasks restart them.
        """
        with self.lock:
            addresses = sorted({self.running[t] for t in tasks if t in self.running})
        if addresses and self.cluster is None:
            self.client.restart_workers(addresses, timeout=RESTART_SECONDS, raise_for_error=False)

    def close(self) -> None:
        """Leave the cluster; a LocalCluster of ours ends at once, its workers stopped in well under a second."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            # closed nannies first, so that none restarts its worker; a busy worker is terminated, not awaited
            self.cluster.sync(_close_nannies, list(self.cluster.workers.values()))
            self.cluster.close()
            self.cluster = None


class DaskPool:
    """One phase's tasks on the executor's cluster; the cluster itself outlives the phase."""

    def __init__(self, owner: DaskExecutor, client: Any) -> None:
        self.owner = owner
        self.executor = client.get_executor(pure=False)  # Dask's own concurrent.futures bridge
        self.tasks: dict[Future[Any], str] = {}

    def submit(self, item: Item) -> Future[Any]:
        task = f"{item.label} {uuid.uuid4().hex[:8]}"  # the task's name on the cluster's dashboard
        future = self.executor.submit(run_on_worker, item, self.owner.topic, task, self.owner.environment,
                                      self.owner.plugins, key=task)
        self.tasks[future] = task
        return future

    def started(self, future: Future[Any]) -> bool:
        with self.owner.lock:
            return self.tasks[future] in self.owner.running

    def streamed(self, future: Future[Any]) -> list[Result]:
        with self.owner.lock:
            rows = list(self.owner.rows.get(self.tasks[future], []))
        return [result_from_json(r) for r in rows]

    def stop(self) -> None:
        unfinished = [task for future, task in self.tasks.items() if not future.done()]
        for future in self.tasks:
            future.cancel()  # and so the Dask task: one not yet started never starts
        self.owner.end(unfinished)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


@contextmanager
def _cluster_starting() -> Iterator[None]:
    """While a LocalCluster starts: ignore SIGINT, and hold SIGTERM back until the cluster can be closed.

    A terminal sends Ctrl-C to every process of the job; the coordinator owns it and stops the
    workers itself, as the local pool's workers ignore it too (workers.py).  A spawned process
    inherits an ignored signal (not a handler, nor a blocked mask), and Python leaves an ignored
    SIGINT ignored: so the worker processes ignore it for life.  The price is that a Ctrl-C in the
    second or two the cluster takes to start is lost.  A SIGTERM then would leave a half-started
    cluster nobody closes: it is raised again once the cluster exists.
    """
    if threading.current_thread() is not threading.main_thread():  # no signal handler runs on another thread
        yield
        return
    held: list[int] = []
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    if held:
        signal.raise_signal(signal.SIGTERM)


async def _close_nannies(nannies: list[Any]) -> None:
    await asyncio.gather(*(nanny.close(timeout=STOP_SECONDS) for nanny in nannies))


# -- on a Dask worker ----------------------------------------------------------------------------------------




@cache
def _own_environment(plugins: tuple[Path, ...]) -> dict[str, str]:
    """The worker's environment as it was when it first ran our code, which it has loaded since.

    A worker's tree edited after that no longer says what the worker runs: once computed, the
    answer stays, and such a worker is refused until it is restarted.
    """
    return environment(plugins)


def _refuse_difference(worker: str, ours: dict[str, str], theirs: dict[str, str]) -> None:
    differs = difference(ours, theirs)
    if differs is not None:
        raise CheckError(f"Dask worker {worker} differs from this machine: {differs}; install the same"
                         " pcpu-verify and put the same plug-in files on every worker")


def run_on_worker(item: Item, topic: str, task: str, expected: dict[str, str], plugins: tuple[Path, ...]) -> Any:
    """Run ``item`` on this Dask worker, if it has the coordinator's environment; rows and start as events."""
    from distributed import get_worker

    worker = get_worker()
    _refuse_difference(worker.address, expected, _own_environment(plugins))  # a worker that joined late
    for plugin in plugins:
        load_plugin(plugin)
    # Hypothesis warns when the global `random` state moves while it draws.  On a Dask worker, Dask's
    # own code moves it from the worker's other threads (jittered retries and timers, in distributed and
    # tornado); our strategies and models use Random instances of their own.  Not a warning for the user.
    warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies")
    worker.log_event(topic, {"event": "start", "task": task})  # the scheduler adds the worker's address

    def row(r: Result) -> None:
        # as JSON text: an event must be msgpack, which holds no integer past 64 bits
        worker.log_event(topic, {"event": "row", "task": task, "row": json.dumps(result_to_json(r))})

    return run_item(item, row if isinstance(item, SuiteItem) else None)
