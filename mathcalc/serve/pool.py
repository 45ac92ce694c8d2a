"""A bounded pool of worker processes that can be killed: the page's derivations run here.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one
running task. A derivation past the time limit must stop *now*, so that a
pathological expression costs one worker for at most ``timeout`` seconds and
the server goes on serving; here that worker is killed (SIGKILL) and a fresh
one takes its place. A thread could not be stopped at all.

Bounds, so that load never grows memory without limit:

- ``workers`` processes, each running one task at a time;
- at most ``queue`` requests wait for a free worker, each for at most
  ``wait`` seconds; beyond that ``Busy`` is raised at once (the server answers 503);
- a task runs for at most ``timeout`` seconds (``TimedOut``) and, where
  ``/proc`` shows it, with at most ``memory`` bytes resident (``TooLarge``).

The pool knows nothing of mathcalc: ``handler(task, payload)`` is any
module-level function (it is pickled by reference into the workers). Workers
are started by a fork server that has imported the handler's module (and the
``preload`` modules, which may warm it up) already, so replacing a killed
worker takes milliseconds, not an interpreter start.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import signal
import time
from contextlib import suppress

POLL_S = 0.05  # how often a running task's deadline and memory are looked at


class PoolError(Exception):
    """A task that did not give an answer; ``str(err)`` says why, in plain words."""


class Busy(PoolError):
    """Every worker is taken and the waiting line is full (or the wait ran out)."""


class TimedOut(PoolError):
    """The task ran past the time limit; its worker was killed and replaced."""


class TooLarge(PoolError):
    """The task's worker used more memory than allowed; it was killed and replaced."""


class WorkerDied(PoolError):
    """The worker stopped without answering (killed from outside, crashed); it was replaced."""


def _worker_main(conn, handler) -> None:
    """A worker: answer ("ok", value) or ("raised", repr) to each (task, payload) until None."""
    # Ctrl-C in a terminal reaches the whole process group: the server shuts its
    # workers down itself, so a worker does not die of it mid-task with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task, payload = message
        try:
            reply = ("ok", handler(task, payload))
        except BaseException as err:  # the handler's own bug: report it, keep the worker
            reply = ("raised", f"{type(err).__name__}: {err}")
        conn.send(reply)


def _resident_bytes(pid: int) -> int | None:
    """Resident memory of a process from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _context():
    """The fork server where there is one (quick replacements), else spawn (Windows).

    Not plain fork: the server process runs an event loop and threads, and
    forking those is unsafe (Python 3.12 warns about it).
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class _Worker:
    def __init__(self, ctx, handler):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, handler), daemon=True,
                                   name="mathcalc-serve-worker")
        self.process.start()
        child.close()

    def wait_ready(self, limit: float) -> None:
        if not self.conn.poll(limit):
            raise PoolError("a worker did not start in time")
        tag, _ = self.conn.recv()
        if tag != "ready":
            raise PoolError(f"a worker started badly: {tag!r}")

    def kill(self) -> None:
        with suppress(Exception):
            self.process.kill()
        with suppress(Exception):
            self.process.join(5)
        with suppress(Exception):
            self.conn.close()

    def stop(self) -> None:
        """Ask an idle worker to exit; kill it if it does not."""
        with suppress(Exception):
            self.conn.send(None)
        with suppress(Exception):
            self.process.join(2)
        self.kill()


class Pool:
    """``await pool.run(task, payload)`` runs ``handler(task, payload)`` in a worker process."""

    def __init__(self, handler, *, workers: int = 2, timeout: float = 10.0, queue: int = 64,
                 wait: float | None = None, memory: int | None = 2 << 30, start_timeout: float = 60.0,
                 preload: tuple[str, ...] = ()):
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.handler = handler
        self.workers = workers
        self.timeout = float(timeout)
        self.queue = queue
        self.wait = self.timeout if wait is None else float(wait)
        self.memory = memory
        self.start_timeout = start_timeout
        self._ctx = _context()
        self.preload = (handler.__module__, *preload)
        if self._ctx.get_start_method() == "forkserver":
            # The fork server imports these once (the handler's module, and any that
            # warm it up); every worker forked from it starts with them loaded.
            self._ctx.set_forkserver_preload(list(self.preload))
        self._idle: asyncio.Queue | None = None
        self._all: set[_Worker] = set()
        self._waiting = 0
        self._tasks: set[asyncio.Future] = set()  # replacements under way
        self._closed = False
        self.replaced = 0  # workers killed and replaced (time limit, memory, crash)

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        importlib.import_module(self.handler.__module__)  # fail here, not in every worker
        self._idle = asyncio.Queue()
        loop = asyncio.get_running_loop()
        started = await asyncio.gather(*(loop.run_in_executor(None, self._new_worker)
                                         for _ in range(self.workers)))
        for worker in started:
            self._all.add(worker)
            self._idle.put_nowait(worker)

    def _new_worker(self) -> _Worker:
        """A started worker (run in a thread: starting blocks); the caller, on the
        event loop, records it, so that the set of workers is only touched there."""
        worker = _Worker(self._ctx, self.handler)
        try:
            worker.wait_ready(self.start_timeout)
        except BaseException:
            worker.kill()
            raise
        return worker

    async def close(self) -> None:
        self._closed = True
        loop = asyncio.get_running_loop()
        workers, self._all = list(self._all), set()
        await asyncio.gather(*(loop.run_in_executor(None, w.stop) for w in workers),
                             return_exceptions=True)

    # -- running a task ------------------------------------------------------

    async def run(self, task: str, payload):
        """The handler's value; raises a ``PoolError`` subclass when there is none."""
        if self._idle is None or self._closed:
            raise Busy("the server is not running")
        if self._waiting >= self.queue:
            raise Busy(f"the server is busy ({self.workers} derivations running, "
                       f"{self._waiting} waiting); try again in a moment")
        self._waiting += 1
        try:
            worker = await asyncio.wait_for(self._idle.get(), self.wait)
        except asyncio.TimeoutError:
            raise Busy(f"the server is busy: no worker was free within {self.wait:g} s; "
                       "try again in a moment") from None
        finally:
            self._waiting -= 1
        healthy = False
        try:
            reply = await self._exchange(worker, task, payload)
            healthy = True
        finally:
            if healthy:
                self._idle.put_nowait(worker)
            else:  # timed out, too large, died, or the request was cancelled mid-task
                # Held until done: the event loop keeps only a weak reference to a task.
                task_ = asyncio.ensure_future(self._replace(worker))
                self._tasks.add(task_)
                task_.add_done_callback(self._tasks.discard)
        tag, value = reply
        if tag == "raised":
            raise PoolError(f"the derivation failed inside its worker: {value}")
        return value

    async def _exchange(self, worker: _Worker, task: str, payload):
        loop = asyncio.get_running_loop()
        try:
            worker.conn.send((task, payload))
        except (OSError, ValueError):
            raise WorkerDied("the derivation's worker had stopped; it is being replaced") from None
        ready = loop.create_future()
        fd = worker.conn.fileno()
        try:
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            poll_ready = None
        except (NotImplementedError, RuntimeError):  # an event loop without add_reader
            poll_ready = worker.conn
        deadline = time.monotonic() + self.timeout
        try:
            # A bounded loop: at most timeout / POLL_S turns, each looking at the
            # deadline and the worker's memory.
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimedOut(f"the derivation ran past the time limit of {self.timeout:g} s "
                                   "and was stopped")
                step = min(POLL_S, left)
                if poll_ready is not None:
                    if await loop.run_in_executor(None, poll_ready.poll, step):
                        break
                else:
                    done, _ = await asyncio.wait({ready}, timeout=step)
                    if done:
                        break
                if self.memory is not None:
                    used = _resident_bytes(worker.process.pid)
                    if used is not None and used > self.memory:
                        raise TooLarge(f"the derivation needed more than {self.memory >> 20} MiB "
                                       "of memory and was stopped")
        finally:
            if poll_ready is None:
                loop.remove_reader(fd)
        try:
            return worker.conn.recv()
        except (EOFError, OSError):
            raise WorkerDied("the derivation's worker stopped without answering "
                             "(out of memory?)") from None

    async def _replace(self, worker: _Worker) -> None:
        """Kill a worker that gave no answer and start a fresh one in its place."""
        self._all.discard(worker)
        await asyncio.get_running_loop().run_in_executor(None, worker.kill)
        self.replaced += 1
        await self._refill()

    async def _refill(self, attempts: int = 60) -> None:
        """Start one worker for the idle line; where that fails, retry once a second
        (a bounded number of times), so the pool does not shrink for good."""
        loop = asyncio.get_running_loop()
        for _ in range(attempts):
            if self._closed:
                return
            try:
                fresh = await loop.run_in_executor(None, self._new_worker)
            except Exception:
                await asyncio.sleep(1.0)
                continue
            if self._closed:
                await loop.run_in_executor(None, fresh.stop)
            else:
                self._all.add(fresh)
                self._idle.put_nowait(fresh)
            return

    @property
    def alive(self) -> int:
        """Workers whose process is running (idle or busy)."""
        return sum(1 for w in self._all if w.process.is_alive())
