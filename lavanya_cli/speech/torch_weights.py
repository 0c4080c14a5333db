"""Weights files loaded by torch as plain tensors only (the torch engine, exports and ``verify
--deep`` load them the same way): a pickle with code in it was refused by torch with advice to
load it with ``weights_only=False``, which is exactly what must never be done with a file from a
model tree; here it is one line that says what is wrong and what to do."""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import FileError, one_line
from ..fileio import HASHED_MAX_BYTES, MIB, NotReadable, open_regular

RESTORE_WEIGHTS = "restore the voice's released weights (git checkout, then git lfs pull)"
# Bounds on a weights file: its size (real ones are under 200 MB), the records of its zip
# archive (a real model.pth has about 230) and the archive's directory of them.
WEIGHTS_MAX_BYTES = HASHED_MAX_BYTES
CHECKPOINT_RECORDS_MAX = 100_000
CENTRAL_DIRECTORY_MAX_BYTES = 16 * MIB
# torch's refusal names what the pickle asked for on a line like these; the rest of its message
# is advice to unpickle the file anyway.
_REFUSED_ITEM = re.compile(r"(unsupported GLOBAL \S+|Unsupported global: \S+(?: \S+)?|Unsupported operand \S+)",
                           re.IGNORECASE)


def _refuse_expansion(handle: BinaryIO, path: Path, what: str) -> None:
    """Refuse weights that would take more memory than their size on disk: PyTorch writes its
    zip records stored, never compressed, so a deflated record (a small file once expanded far
    beyond its size; docs/safety.md) or a central directory larger than any real one is not a
    checkpoint of a voice. The file is left at its start."""
    size = os.fstat(handle.fileno()).st_size
    if size > WEIGHTS_MAX_BYTES:
        raise FileError(path, f"{what} is larger than {WEIGHTS_MAX_BYTES >> 30} GiB, far beyond any voice",
                        RESTORE_WEIGHTS)
    end = zipfile._EndRecData(handle)  # the end record, or None for PyTorch's older, non-zip format
    if end is not None:
        records, directory = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
        if records > CHECKPOINT_RECORDS_MAX or directory > CENTRAL_DIRECTORY_MAX_BYTES:
            raise FileError(path, f"{what} lists {records} records in {directory} bytes, far beyond any voice",
                            RESTORE_WEIGHTS)
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            packed = [info for info in archive.infolist()
                      if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size]
        if packed:
            raise FileError(path, f"{what} holds a compressed record ({packed[0].filename}), which PyTorch never "
                                  "writes and which could expand far beyond the file's size", RESTORE_WEIGHTS)
    handle.seek(0)


def load_weights(path: Path, what: str, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` of a regular file: the one way lavanya loads
    weights (synthesis and ``verify --deep`` alike). A pickle that asks for more than tensors
    (code, arbitrary objects) is refused with a FileError that names the file and the fix, never
    torch's advice to load it unsafely; so is a file that is not PyTorch weights at all."""
    import pickle

    import torch

    try:
        with open_regular(path, what) as handle, warnings.catch_warnings():
            _refuse_expansion(handle, path, what)
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
