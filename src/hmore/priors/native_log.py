"""Keep MediaPipe's native start-up chatter off the user's terminal.

MediaPipe's C++ graphs print benign INFO / WARNING lines straight to file descriptor 2 (absl's
``W0000 00:00:... file.cc:114] ...`` lines, TensorFlow Lite's ``INFO: Created TensorFlow Lite XNNPACK delegate``),
and no environment variable of ``mediapipe==0.10.21`` turns them off. :func:`filter_native_stderr` points fd 2 at
a temporary file while a block runs and then passes on everything except those lines: errors (absl ``E`` / ``F``
lines) and anything Python or another thread wrote meanwhile reach the terminal, only later.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# absl's INFO / WARNING line prefix, and TensorFlow Lite's two start-up lines
_NOISE = re.compile(rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] |INFO: Created TensorFlow Lite |"
                    rb"WARNING: All log messages before absl::InitializeLog\(\) is called)")
_lock = threading.RLock()
_depth = 0
_active: tuple[int, object] | None = None  # (saved fd 2, capture file) while a block holds fd 2


def is_native_noise(line: bytes) -> bool:
    """Whether one line written to fd 2 is MediaPipe's benign native INFO / WARNING output."""
    return bool(_NOISE.match(line))


def filter_lines(data: bytes) -> bytes:
    """``data`` without the native INFO / WARNING lines (other lines kept, in order, byte for byte)."""
    return b"".join(line for line in data.splitlines(keepends=True) if not is_native_noise(line))


@contextmanager
def filter_native_stderr() -> Iterator[None]:
    """Run the block with fd 2 captured; afterwards write what it received, minus native INFO / WARNING lines.

    Nested or concurrent uses share one capture (the outermost block owns it). Where fd 2 cannot be redirected
    (no file descriptor, e.g. under some test runners), the block runs unchanged.
    """
    global _depth, _active
    with _lock:
        outer = _depth == 0
        _depth += 1
        if outer:
            saved = tmp = None
            try:
                sys.stderr.flush()
                saved = os.dup(2)
                tmp = tempfile.TemporaryFile()
                os.dup2(tmp.fileno(), 2)
                _active = (saved, tmp)
            except (OSError, ValueError, AttributeError):
                if saved is not None:
                    os.close(saved)
                if tmp is not None:
                    tmp.close()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if outer:
                release()


def release() -> None:
    """Give fd 2 back and pass on what was captured (minus the native noise). Runs at interpreter exit too, so a
    message written while a thread still held fd 2 (e.g. the one-line error of a failing command) is not lost."""
    global _active
    with _lock:
        if _active is None:
            return
        saved, tmp = _active
        _active = None
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        tmp.seek(0)  # type: ignore[attr-defined]
        kept = filter_lines(tmp.read())  # type: ignore[attr-defined]
        tmp.close()  # type: ignore[attr-defined]
        while kept:
            kept = kept[os.write(2, kept):]


atexit.register(release)
