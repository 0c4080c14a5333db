"""Weights files loaded by torch as plain tensors only (the torch engine, exports and ``verify
--deep`` load them the same way): a pickle with code in it was refused by torch with advice to
load it with ``weights_only=False``, which is exactly what must never be done with a file from a
model tree; here it is one line that says what is wrong and what to do."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from ..errors import FileError, one_line
from ..fileio import NotReadable, open_regular
from ..modeltree.checkpoint import RESTORE_WEIGHTS, refuse_unsafe_archive

# torch's refusal names what the pickle asked for on a line like these; the rest of its message
# is advice to unpickle the file anyway.
_REFUSED_ITEM = re.compile(r"(unsupported GLOBAL \S+|Unsupported global: \S+(?: \S+)?|Unsupported operand \S+)",
                           re.IGNORECASE)


def load_weights(path: Path, what: str, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` of a regular file: the one way lavanya loads
    weights (synthesis and ``verify --deep`` alike). A pickle that asks for more than tensors
    (code, arbitrary objects) is refused with a FileError that names the file and the fix, never
    torch's advice to load it unsafely; so is a file that is not PyTorch weights at all."""
    import pickle

    import torch

    try:
        with open_regular(path, what) as handle, warnings.catch_warnings():
            archive = refuse_unsafe_archive(handle, path, what)
            if archive is not None:
                archive.close()
            warnings.simplefilter("ignore")  # torch warns about pickle protocols on odd files
            return torch.load(handle, map_location=map_location, weights_only=True)
    except (NotReadable, FileError):
        raise
    except FileNotFoundError:
        raise FileError(path, f"{what} is missing") from None
    except pickle.UnpicklingError as exc:
        found = _REFUSED_ITEM.search(str(exc))
        detail = f" ({found.group(1)})" if found else ""
        raise FileError(path, f"refused: {what} is a pickle that asks for more than tensors{detail}, so "
                              "loading it could run code", RESTORE_WEIGHTS) from None
    except Exception as exc:  # a truncated download, a foreign file: torch reports these many ways
        reason = one_line(exc, 160)
        if "weights_only" in reason:
            reason = type(exc).__name__
        raise FileError(path, f"{what} is not a PyTorch weights file ({reason})", RESTORE_WEIGHTS) from None
