"""Builds killed at chosen stages: the old site stays whole, no patient row stays on disk.

A real cohort file is a copy of the synthetic one with distinctive patient ids and an extra
`patient_name` column; every file outside the input is searched for those values. The build
runs as a subprocess that pauses at a stage (``BRIDGE_HSCT_PAUSE_AT``) and is killed there.
"""

import hashlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import bridge_hsct.book.build as book_build
from bridge_hsct.book.build import DEFAULT_DATA, BuildError, Parameters, build
from bridge_hsct.book.cli import main
from bridge_hsct.cohort.validate import CohortError
from conftest import path_text

NAMES = [f"Qwzx Patientname{i:02d}" for i in range(36)]
IDS = [f"ZQJ{i:03d}K" for i in range(36)]
# SIGUSR1 prints every thread's stack (the build's and its forked workers'): a build
# that never reaches its stage is shown where it waits, not only timed out
RUNNER = ("import faulthandler, signal, sys; "
          "faulthandler.register(signal.SIGUSR1, all_threads=True); "
          "from bridge_hsct.book.build import build, Parameters; "
          "build(sys.argv[1], Parameters(data_path=sys.argv[2], alpha=float(sys.argv[4])), "
          "cache=sys.argv[3])")


class Lab:
    """The folders of one test module: input, published parent, temp dir and cache."""

    def __init__(self, root: Path):
        self.input = root / "input" / "centre.csv"
        self.out = root / "public" / "site"
        self.tmp = root / "tmp"
        self.cache = root / "cache"
        for folder in (self.input.parent, self.tmp):
            folder.mkdir(parents=True)
        data = pd.read_csv(DEFAULT_DATA)
        data["patient_id"] = IDS[:len(data)]
        data["patient_name"] = NAMES[:len(data)]
        data.to_csv(self.input, index=False)

    def private(self) -> Path:
        return self.tmp / f"bridge-hsct-{os.getuid()}"

    def patient_files(self, skip_private=False) -> list[Path]:
        """Files outside the input holding a patient's id or name."""
        tokens = [t.encode() for t in NAMES[:3] + IDS[:3]]
        found = []
        for root in (self.out.parent, self.tmp, self.cache):
            for path in root.rglob("*"):
                if not path.is_file() or path.is_symlink():
                    continue
                if skip_private and self.private() in path.parents:
                    continue
                data = (path_text(path).encode() if path.suffix == ".xlsx"
                        else path.read_bytes())
                if any(t in data for t in tokens):
                    found.append(path)
        return found

    def leftovers(self) -> list[Path]:
        beside = [p for p in self.out.parent.iterdir() if p.name.startswith(".site.")
                  and not p.name.endswith(".lock")]
        private = list(self.private().iterdir()) if self.private().is_dir() else []
        return beside + private


def snapshot(site: Path) -> dict:
    return {str(p.relative_to(site)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(site.rglob("*")) if p.is_file()}


class Paused:
    """A build subprocess stopped at `stage`."""

    def __init__(self, lab: Lab, stage: str, alpha: float = 0.049):
        env = {**os.environ, "TMPDIR": str(lab.tmp), book_build.PAUSE_VARIABLE: stage}
        self.process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(lab.out), str(lab.input), str(lab.cache),
             str(alpha)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.output = []
        try:
            self._wait_for(stage)
        except BaseException:
            self._end_group()  # a build left running would hold the lock for later tests
            raise

    def _wait_for(self, stage: str, seconds: float = 600) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"build did not reach {stage} in {seconds:.0f} s; "
                                     f"its stacks:\n{self._stacks()}") from None
            if line is None:
                raise AssertionError(f"build ended before {stage}:\n{''.join(self.output)}")
            self.output.append(line)
            if line.startswith(f"paused at {stage}"):
                return

    def _stacks(self) -> str:
        """The output so far, then every process's threads as faulthandler prints them."""
        for pid in running_in_group(self.process.pid):
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
        time.sleep(3)
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self.output.append(line)
        return "".join(self.output)

    def _end_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stop(self, signum: int) -> int:
        os.kill(self.process.pid, signum)  # the build itself, not its workers
        code = self.process.wait(timeout=120)
        for _ in range(100):  # workers and Jupyter Book die with it
            if not running_in_group(self.process.pid):
                break
            threading.Event().wait(0.1)
        assert not running_in_group(self.process.pid), "a child outlived the build"
        return code


def running_in_group(group: int) -> list[int]:
    """Processes of a process group that still run (not zombies)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(stat_file.parent.name))
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The folders, with a complete site already published at `lab.out`."""
    lab = Lab(tmp_path_factory.mktemp("faults"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(lab.tmp))
        build(lab.out, Parameters(data_path=str(lab.input)), log=lambda *a: None,
              cache=lab.cache)
    return lab


@pytest.fixture
def in_lab(lab, monkeypatch):
    """In-process builds of this test use the lab's temp dir."""
    monkeypatch.setattr(tempfile, "tempdir", str(lab.tmp))
    return lab


def next_build_sweeps(lab: Lab) -> None:
    """A build that stops at once on bad data still sweeps what a killed build left."""
    bad = lab.input.with_name("bad.csv")
    bad.write_text("patient_id,arm\np1,A\n")
    with pytest.raises(CohortError):
        build(lab.out, Parameters(data_path=str(bad)), log=lambda *a: None)
    assert not lab.leftovers()
    assert not lab.patient_files()


def test_a_finished_build_leaves_no_patient_row_and_nothing_beside_the_site(in_lab):
    assert (in_lab.out / "index.html").is_file()
    assert not in_lab.leftovers()
    assert not in_lab.patient_files()


@pytest.mark.parametrize("stage, alpha", [("staged", 0.049), ("execute", 0.048),
                                          ("render", 0.049), ("publish", 0.049)])
def test_sigkill_keeps_the_old_site_and_the_next_build_sweeps(in_lab, stage, alpha):
    before = snapshot(in_lab.out)
    paused = Paused(in_lab, stage, alpha)
    assert paused.stop(signal.SIGKILL) == -signal.SIGKILL
    assert snapshot(in_lab.out) == before, "the old site is complete and unchanged"
    # what SIGKILL cannot remove sits only in the private folder, closed to others
    assert not in_lab.patient_files(skip_private=True)
    assert in_lab.private().stat().st_mode & 0o777 == 0o700
    for folder in in_lab.private().iterdir():
        assert folder.stat().st_mode & 0o777 == 0o700
    next_build_sweeps(in_lab)
    assert snapshot(in_lab.out) == before


def test_sigkill_right_after_the_exchange_leaves_the_new_site_whole(in_lab):
    paused = Paused(in_lab, "published", alpha=0.045)  # not the other tests' 0.049
    paused.stop(signal.SIGKILL)
    record = (in_lab.out / "build.json").read_text()
    assert '"alpha": 0.045' in record and (in_lab.out / "iptw.html").is_file()
    next_build_sweeps(in_lab)


@pytest.mark.parametrize("signum, stage, alpha", [
    (signal.SIGTERM, "staged", 0.049), (signal.SIGTERM, "execute", 0.047),
    (signal.SIGINT, "execute", 0.046), (signal.SIGINT, "render", 0.049),
    (signal.SIGTERM, "publish", 0.049)])
def test_sigterm_and_sigint_clean_up_at_once(in_lab, signum, stage, alpha):
    before = snapshot(in_lab.out)
    paused = Paused(in_lab, stage, alpha)
    code = paused.stop(signum)
    assert code != 0
    if signum == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM, "".join(paused.output)
    assert snapshot(in_lab.out) == before
    assert not in_lab.leftovers(), "removed at once, not by the next build"
    assert not in_lab.patient_files()


def test_a_second_build_of_the_same_folder_refuses_at_once(in_lab, capsys):
    paused = Paused(in_lab, "staged")
    try:
        assert main(["build", "--data", str(in_lab.input), "--out", str(in_lab.out)]) == 1
        # the input's extra column is noted as a warning first
        errors = [line for line in capsys.readouterr().err.splitlines()
                  if not line.startswith("warning: ")]
        assert errors == [f"error: {in_lab.out} is being built by another build "
                          f"(PID {paused.process.pid}); wait for it to finish"]
    finally:
        paused.stop(signal.SIGTERM)
    assert not in_lab.leftovers()


def test_an_unwritable_output_folder_is_one_clear_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "site"
    with pytest.raises(BuildError, match=f"cannot write the output folder {out}: "):
        build(out, Parameters(), log=lambda *a: None)
    # the command line refuses it as a bad parameter before building anything
    assert main(["build", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --out {out}: ") and "is a file, not a folder" in error
    assert "Traceback" not in error


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_one_clear_line(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o555)
    with pytest.raises(BuildError, match=f"cannot write the output folder {parent}/site"):
        build(parent / "site", Parameters(), log=lambda *a: None)


def test_the_exchange_is_atomic_and_swaps_both_folders(tmp_path):
    new, out = tmp_path / "new", tmp_path / "site"
    for folder, text in ((new, "new"), (out, "old")):
        folder.mkdir()
        (folder / "index.html").write_text(text)
    if not book_build._exchange(new, out):
        pytest.skip("renameat2(RENAME_EXCHANGE) unsupported here")
    assert (out / "index.html").read_text() == "new"
    assert (new / "index.html").read_text() == "old"


def test_without_exchange_a_cut_publish_is_undone_by_the_next_build(tmp_path, monkeypatch):
    monkeypatch.setattr(book_build, "_exchange", lambda a, b: False)
    new, out = tmp_path / ".site.build-1" / "html", tmp_path / "site"
    for folder, text in ((new, "new"), (out, "old")):
        folder.mkdir(parents=True)
        (folder / "index.html").write_text(text)
    book_build._publish(new, out)
    assert (out / "index.html").read_text() == "new"
    assert (new / "index.html").read_text() == "old"
    # a kill between the two renames: the old site waits beside, nothing at `out`
    out.rename(tmp_path / ".site.old-1700000000000000000")
    book_build._sweep_beside(out, log=lambda *a: None)
    assert (out / "index.html").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_workers_do_not_remove_the_private_folder(in_lab):
    context = book_build._private_folder(lambda *a: None)
    folder = context.__enter__()
    pid = os.fork()
    if pid == 0:  # a forked worker leaving the build's block must not remove the data
        try:
            context.__exit__(None, None, None)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert folder.is_dir()
    context.__exit__(None, None, None)
    assert not folder.exists()


def test_the_sweep_removes_folders_of_dead_or_replaced_processes_only(in_lab):
    parent = book_build.private_parent()
    me = os.getpid()
    live = parent / f"build-{me}-{book_build._process_start(me)}-live"
    dead = parent / "build-999999999-5-dead"  # above any pid_max
    reused = parent / f"build-{me}-1-reused"  # this pid, but an earlier process's
    for folder in (live, dead, reused):
        folder.mkdir()
    book_build.sweep_private(lambda *a: None)
    assert sorted(parent.iterdir()) == [live]
    live.rmdir()
