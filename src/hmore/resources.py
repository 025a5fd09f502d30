"""What the machine can give: a check that a request fits in the memory available, made before the work starts, so
that an absurd ``--frames`` or ``--size`` is refused with one line naming the size instead of failing (or swapping)
halfway through."""

from __future__ import annotations

from hmore.errors import UsageError


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 kB"`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def require_memory(nbytes: int, what: str) -> None:
    """:class:`UsageError` when ``what`` (e.g. ``"a clip of 10000 frames of 4000x4000"``) needs more than the memory
    available; nothing when the available memory is unknown."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise UsageError(f"{what} needs about {format_bytes(nbytes)} of memory, more than the "
                         f"{format_bytes(free)} available: ask for fewer frames or a smaller size")
