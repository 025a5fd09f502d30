"""An exclusive lock on a run folder, so that two ``hmore train`` runs never write into the same folder at once.

The lock is the kernel's ``flock`` on ``<folder>/train.lock``: it belongs to the process that holds it and dies with
it, even by ``kill -9``, so the lock of a killed run is simply taken over. The file's text says who holds it (PID,
host, start time), for the message that refuses a second run; it is emptied when the run ends normally.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from hmore.errors import BusyError

log = logging.getLogger(__name__)

LOCK_FILE = "train.lock"


@contextlib.contextmanager
def run_folder_lock(out_dir: str | Path) -> Iterator[None]:
    """Hold ``out_dir/train.lock`` exclusively for the block; :class:`BusyError` naming the holder if a live process
    has it. The lock is the kernel's (``flock``): it dies with its process, so a killed run's lock is taken over."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    out_dir = Path(out_dir)
    path = out_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown process"
            raise BusyError(f"run folder {out_dir} is in use by another hmore train ({holder}); wait for it to "
                            "finish, stop it, or train into another --out") from None
        previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if previous:
            log.info("taking over %s from a run that stopped (%s)", path, previous)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                  .encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
