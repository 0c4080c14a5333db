"""What lavanya asks of torch, checked first: the device synthesis runs on, and weights files
loaded as plain tensors only (synthesis and ``verify --deep`` load them the same way).

``--device cpu:1`` used to surface as a failure to load ``model.pth`` and ``--device tpu`` as an
internal error; a pickle with code in it was refused by torch with advice to load it with
``weights_only=False``, which is exactly what must never be done with a file from a model tree.
Both now give one line that says what is wrong and what to do.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from ..errors import FileError, LavanyaError, one_line
from ..fileio import NotReadable, open_regular

_DEVICE = re.compile(r"^(?P<kind>cpu|cuda)(?::(?P<index>\d{1,4}))?$")
DEVICE_HINT = "use --device cpu, cuda or cuda:N"
RESTORE_WEIGHTS = "restore the voice's released weights (git checkout, then git lfs pull)"
# torch's refusal names what the pickle asked for on a line like these; the rest of its message
# is advice to unpickle the file anyway.
_REFUSED_ITEM = re.compile(r"(unsupported GLOBAL \S+|Unsupported global: \S+(?: \S+)?|Unsupported operand \S+)",
                           re.IGNORECASE)


def checked_device(device: str) -> str:
    """``device`` when torch can run on it here: ``cpu``, ``cuda`` or ``cuda:N`` with N below the
    number of CUDA devices torch sees; otherwise one LavanyaError."""
    match = _DEVICE.match(device.strip().lower())
    if not match:
        raise LavanyaError(f"--device {device!r} is not a device lavanya runs on; {DEVICE_HINT}")
    if match["kind"] == "cpu":
        if match["index"] is not None:
            raise LavanyaError(f"--device {device}: the CPU takes no index (torch uses every core it is "
                               "given); use --device cpu and --threads N")
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise LavanyaError(f"--device {device}: torch sees no CUDA device here; use --device cpu")
    count = torch.cuda.device_count()
    if match["index"] is not None and int(match["index"]) >= count:
        raise LavanyaError(f"--device {device}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return match.group(0)


def load_weights(path: Path, what: str, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` of a regular file: the one way lavanya loads
    weights (synthesis and ``verify --deep`` alike). A pickle that asks for more than tensors
    (code, arbitrary objects) is refused with a FileError that names the file and the fix, never
    torch's advice to load it unsafely; so is a file that is not PyTorch weights at all."""
    import pickle

    import torch

    try:
        with open_regular(path, what) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols on odd files
            return torch.load(handle, map_location=map_location, weights_only=True)
    except NotReadable:
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
