"""What keeps a run folder whole: one trainer per folder (a lock file), and SIGINT / SIGTERM turned into a
checkpoint at the end of the step instead of a lost run."""

import os
import signal
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

from . import dist
from .errors import UnnoiseError


class Stopped(Exception):
    """Training stopped by a signal after writing a checkpoint; code is the shell's exit status (130, 143)."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def alive(pid):
    """Whether a process of this machine with that pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """folder/.lock holds "pid host" while a process trains there: a second trainer is refused, and a lock left
    by a process that no longer exists on this machine is taken over."""

    def __init__(self, folder):
        self.path = Path(folder) / ".lock"
        self.held = False

    def owner(self):
        try:
            pid, host = self.path.read_text().split()
            return int(pid), host
        except (OSError, ValueError):
            return None, None  # unreadable or half-written: treat as stale

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid, host = self.owner()
                if pid is not None and (host != socket.gethostname() or alive(pid)):
                    raise UnnoiseError(
                        f"{self.path.parent} is being trained by process {pid} on {host}; wait for it "
                        f"to finish, or train into another --out (if that process is gone, delete "
                        f"{self.path})"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            self.held = True
            return self
        raise UnnoiseError(f"could not take the lock {self.path}; another process keeps replacing it")

    def release(self):
        if self.held and self.owner()[0] == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


class StopSignals:
    """While active, SIGINT and SIGTERM only set `caught`: the loop writes a checkpoint after the step and stops.
    A second SIGINT interrupts at once (the last checkpoint is kept)."""

    CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}

    def __init__(self):
        self.caught, self.saved = None, {}

    def handle(self, signum, frame):
        if self.caught is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.caught = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self.saved = {s: signal.signal(s, self.handle) for s in self.CODES}
        return self

    def __exit__(self, *exc):
        for s, old in self.saved.items():
            signal.signal(s, old)
        self.saved = {}

    def stopped(self, step, folder):
        """The exception to raise once the checkpoint of `step` is written."""
        name = signal.Signals(self.caught).name if self.caught else "another process"
        return Stopped(
            f"stopped by {name} after step {step}: the checkpoint is written in {folder}; continue with "
            f"unnoise train --out {folder} --resume",
            self.CODES.get(self.caught, 143),
        )


@contextmanager
def hold_lock(folder):
    """Rank 0 holds folder's lock while the loop runs; every process learns whether it could (one decision)."""
    lock, error = RunLock(folder), None
    if dist.is_main():
        try:
            lock.acquire()
        except UnnoiseError as err:
            error = err
    if dist.total([error is not None])[0]:
        raise error or UnnoiseError(f"rank 0 could not lock {folder} (see its message)")
    try:
        yield lock
    finally:
        lock.release()
