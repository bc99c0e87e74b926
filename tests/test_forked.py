"""Tasks in forked processes: results, the first failure stops the rest, no helper threads."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bridge_hsct.book.forked import Task, TaskDied, run_forked


def report_pid(name: str, folder: Path, seconds: float = 0.0) -> int:
    (folder / name).write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def kill_myself(name: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_each_task_runs_in_a_process_of_its_own(tmp_path):
    tasks = [Task(f"t{i}", report_pid, (tmp_path,)) for i in range(5)]
    results = list(run_forked(tasks, workers=2))
    assert sorted(name for name, _, _ in results) == [f"t{i}" for i in range(5)]
    pids = {pid for _, pid, _ in results}
    assert len(pids) == 5 and os.getpid() not in pids
    assert all(seconds >= 0 for _, _, seconds in results)


def test_arguments_reach_the_task_through_the_fork_unpickled():
    """The build hands its chapters what it validated this way: objects no pipe could
    carry (a lock, a closure) arrive as they are, and a change in the child stays there."""
    lock, seen = threading.Lock(), {"value": "parent"}

    def mark(name: str, held: threading.Lock, shared: dict, read) -> str:
        shared["value"] = "child"
        return f"{held.locked()} {read()}"

    [(_, value, _)] = run_forked([Task("mark", mark, (lock, seen, lambda: seen["value"]))],
                                 workers=1)
    assert value == "False child" and seen["value"] == "parent"


def fail_once_started(name: str, folder: Path):
    while not (folder / "slow").exists():
        time.sleep(0.01)
    raise ValueError("no data")


def test_the_first_failure_is_raised_and_stops_the_others(tmp_path):
    tasks = [Task("slow", report_pid, (tmp_path, 60)), Task("bad", fail_once_started,
                                                            (tmp_path,))]
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="no data"):
        list(run_forked(tasks, workers=2))
    assert time.monotonic() - t0 < 30
    assert not alive(int((tmp_path / "slow").read_text()))


def test_a_task_that_dies_is_named():
    with pytest.raises(TaskDied, match="dies ended without a result"):
        list(run_forked([Task("dies", kill_myself)], workers=1))


def test_the_parent_forks_with_no_helper_thread(tmp_path):
    # a child forked while another thread of the parent held a lock would inherit it held
    before = threading.active_count()
    during = [threading.active_count()
              for _ in run_forked([Task(f"t{i}", report_pid, (tmp_path,)) for i in range(4)],
                                  workers=2)]
    assert during == [before] * 4


def blocked_signals(name: str) -> set:
    return signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_stop_signals_are_held_while_forking_and_released_in_the_child():
    # a stop signal handled inside fork's callbacks would have its exception printed and lost
    seen = []
    os.register_at_fork(after_in_parent=lambda: seen.append(
        signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    [(_, in_child, _)] = run_forked([Task("mask", blocked_signals)], workers=1)
    assert {signal.SIGINT, signal.SIGTERM, signal.SIGHUP} <= seen[-1]
    assert in_child == signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()
