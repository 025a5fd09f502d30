"""Reading a JSON file with one-line errors (:class:`~hmore.errors.InputError`) that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hmore.errors import InputError


def read_json(path: str | Path, *, what: str = "JSON file") -> Any:
    """The parsed content of ``path``.

    Raises:
        InputError: ``"<what> not found: <path>"`` when the file is missing, ``"corrupt <what> <path>: ..."`` when it
            is not valid UTF-8 JSON.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"corrupt {what} {path}: not valid JSON ({exc})") from None


__all__ = ["read_json"]
