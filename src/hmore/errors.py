"""Errors that the ``hmore`` command turns into one clear line and a non-zero exit code.

Library code raises these (or plain ``ValueError`` for programming contracts); ``hmore.cli`` catches
:class:`HmoreError` and prints ``hmore: error: <message>`` with the error's ``exit_code``.
"""

from __future__ import annotations


class HmoreError(Exception):
    """Base class of hmore's user-facing errors."""

    exit_code: int = 1


class UsageError(HmoreError, ValueError):
    """Bad arguments or options: unknown names, sizes that are not positive, impossible requests (exit 2)."""

    exit_code = 2


class InputError(HmoreError, ValueError):
    """Bad input data: a missing, unreadable, corrupt or malformed file, NaNs, a wrong keypoint layout (exit 1)."""

    exit_code = 1


class BusyError(HmoreError):
    """A resource another live process holds, e.g. a run folder being trained (exit 1)."""

    exit_code = 1


class ConfigError(UsageError):
    """A config file or override that does not fit its schema (unknown key, wrong type) (exit 2)."""
