"""Tasks run in processes forked from the build, one process per task.

Each task gets a process of its own, forked from the build's main thread after the analysis
stack is imported: no task sees another's state, none pays for the imports again, and what
the build holds (the validated cohorts) reaches it by fork, not through a pipe.

Why not :class:`multiprocessing.pool.Pool`: a pool forks its replacement workers from a
helper thread, so a worker can start with a lock that another thread of the build held at
that instant (the standard streams' among them) and wait for it forever; and a pool's shutdown
waits for a queue lock that a killed idle worker never releases. Here no thread but the main
one ever runs in the build while it forks, and each task has its own pipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1
#: The signals that stop a build (its handlers raise, see
#: :func:`bridge_hsct.book.build._signals_end_the_build`)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class Task:
    """`function(name, *args)` to run in a process of its own."""

    name: str
    function: Callable
    args: tuple = ()


class TaskDied(RuntimeError):
    """A task's process ended without a result (killed, or it exited)."""


def die_with_parent(parent: int | None) -> None:
    """In a child of the build: be killed when the build dies, even by SIGKILL (Linux), so
    that no orphan goes on reading the staged data or writing beside the site.
    None: no longer."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(
            _PR_SET_PDEATHSIG, signal.SIGKILL if parent is not None else 0)
    if parent is not None and os.getppid() != parent:  # the build died before the request
        os._exit(1)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[set]:
    """Hold back the stop signals meanwhile (one that comes arrives after); yields the
    signal mask before. Around cleaning up, and around a fork: fork's callbacks (logging's
    among them) would print a handler's exception and so lose the stop."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield before
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def run_forked(tasks: list[Task], workers: int) -> Iterator[tuple[str, object, float]]:
    """Run `tasks`, at most `workers` at a time, each in a process forked from this one
    (which its arguments reach through the fork, unpickled); yield
    ``(name, result, seconds)`` as each ends.

    The first task that raises stops the others (they are killed) and its exception is
    raised here, as is a stop signal the build receives meanwhile.

    Raises
    ------
    TaskDied
        If a task's process ended without sending its result.
    """
    context = multiprocessing.get_context("fork")
    waiting, running = list(tasks), {}
    parent = os.getpid()
    try:
        while waiting or running:
            while waiting and len(running) < max(1, workers):
                task = waiting.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                # held during the fork: a handler run inside fork's callbacks (logging's
                # among them) would have its exception printed and the stop lost
                with stop_signals_held() as mask:
                    process = context.Process(target=_child, name=task.name, daemon=True,
                                              args=(sender, parent, task, mask))
                    process.start()
                sender.close()
                running[receiver] = (task.name, process)
            # short waits: a stop signal that comes just before the wait blocks would
            # reach Python's handler only when the wait ends
            for receiver in multiprocessing.connection.wait(list(running), timeout=0.2):
                name, process = running.pop(receiver)
                try:
                    outcome, value, seconds = receiver.recv()
                except EOFError:
                    process.join()
                    raise TaskDied(f"{name} ended without a result (exit code "
                                   f"{process.exitcode})") from None
                finally:
                    receiver.close()
                process.join()
                if outcome == "error":
                    raise value
                yield name, value, seconds
    finally:
        for receiver, (_, process) in running.items():
            process.kill()
            process.join()
            receiver.close()


def _child(sender, parent: int, task: Task, mask: set) -> None:
    """In the forked process: run `task` and send its outcome to the build."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # as the build had it before the fork
    die_with_parent(parent)
    t0 = time.perf_counter()
    try:
        message = ("done", task.function(task.name, *task.args), time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - sent to the build, which raises it
        message = ("error", exc, time.perf_counter() - t0)
    try:
        sender.send(message)
    except (pickle.PicklingError, TypeError, AttributeError):
        error = message[1] if message[0] == "error" else None
        sender.send(("error", RuntimeError(f"{task.name}: {type(error).__name__}: {error}"
                                           if error else f"{task.name}: result not "
                                           "picklable"), message[2]))
    sender.close()
