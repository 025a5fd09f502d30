"""A pickle reader that cannot run code: the one loader for every pickle hmore reads (pyskl keypoint and action
files, through ``hmore priors --backend file``, ``hmore lift``, ``hmore classify`` and ``hmore train action``).

A pickle names the callables it needs as ``(module, name)`` globals. This reader resolves only the exact pairs that
a pyskl annotation file needs (numpy array reconstruction, dtypes, scalars, and the builtins containers and byte
codec that older pickle protocols name), compares the whole strings, and maps each pair to an object chosen here:
it never imports the named module and never walks a dotted name, so protocol 4's ``STACK_GLOBAL("numpy.dtypes",
"Float64DType.__getattribute__")`` or ``("numpy.dtypes", "_add_dtype_helper.__builtins__")`` cannot reach ``eval``.
Everything else is refused with :class:`hmore.errors.InputError` naming the global, before anything runs.
"""

from __future__ import annotations

import codecs
import collections
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from hmore.errors import InputError

_array = np.zeros(1, np.float32)
# numpy's own reconstruction helpers, taken from what numpy pickles (their module moved from numpy.core to
# numpy._core in numpy 2; files written by either name them by their module of the time)
_RECONSTRUCT = _array.__reduce__()[0]  # numpy.core.multiarray._reconstruct
_SCALAR = np.float32(0).__reduce__()[0]  # numpy.core.multiarray.scalar
_FROMBUFFER = _array.__reduce_ex__(5)[0]  # numpy.core.numeric._frombuffer (protocol 5)


def _dtype(*args: Any) -> np.dtype:
    """``numpy.dtype`` for plain (non-object) dtypes only: an object array could carry any unpickled object on into
    code that expects numbers."""
    dt = np.dtype(*args)
    if dt.hasobject:
        raise _Refused(f"numpy.dtype({dt.str!r}) (arrays of Python objects)")
    return dt


_LATIN1 = frozenset({"latin1", "iso88591", "l1"})


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocols 0-2 use it for bytes (``encode(str, "latin1")``); other codecs refused."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") not in _LATIN1:
        raise pickle.UnpicklingError(f"codec {encoding!r}")
    return codecs.encode(text, encoding, errors)


_ALLOWED: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _RECONSTRUCT
    _ALLOWED[(_mod, "scalar")] = _SCALAR
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _FROMBUFFER
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = _dtype
for _mod in ("builtins", "__builtin__"):  # __builtin__: protocol 0-2 files name builtins by their Python 2 module
    for _name, _obj in (("set", set), ("frozenset", frozenset), ("slice", slice), ("complex", complex),
                        ("bytearray", bytearray), ("bytes", bytes)):
        _ALLOWED[(_mod, _name)] = _obj
_ALLOWED[("collections", "OrderedDict")] = collections.OrderedDict
_ALLOWED[("_codecs", "encode")] = _latin1_encode
ALLOWED_GLOBALS = frozenset(_ALLOWED)


class _Refused(Exception):
    """A global outside the allowed set (kept apart from the errors a broken file raises)."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise _Refused(f"{module}.{name}" if "." not in name else f"{module} {name!r}")
        return obj


def loads_safely(data: bytes, *, where: str = "pickle", what: str = "pyskl pickle") -> object:
    """Unpickle ``data`` allowing only plain containers, numbers, strings and numpy arrays (never arbitrary code);
    ``what`` names the expected kind of file in the error.

    Raises:
        InputError: a refused global (named in the message), or a broken or truncated pickle.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except _Refused as exc:
        raise InputError(f"{where}: refusing to load the global {exc} (a {what} holds only numpy arrays and "
                         f"plain containers; this file could run code)") from None
    except RecursionError:
        raise InputError(f"{where}: not a readable pickle (nested too deeply)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            MemoryError, OverflowError, UnicodeDecodeError, LookupError) as exc:
        raise InputError(f"{where}: not a readable pickle ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def load_pickle_safely(path: str | Path, *, what: str = "pyskl pickle") -> object:
    """Read the pickle file ``path`` with :func:`loads_safely`; :class:`InputError` names the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return loads_safely(data, where=str(path), what=what)
