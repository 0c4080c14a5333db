"""A voice's ESPnet ``config.yaml``: reading it, and the runtime copy ESPnet loads.

Upstream configs carry absolute ``stats_file`` paths from the authors' machines. At run time
lavanya points those entries at the stats files beside the config in a temporary copy; the
user's file is never written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import LavanyaError

# config key -> kind of statistics (see repository.STATS_NAMES)
STATS_ENTRIES = {
    "normalize_conf": "feats",
    "pitch_normalize_conf": "pitch",
    "energy_normalize_conf": "energy",
}

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def read_config(path: Path) -> dict[str, Any]:
    """Parse ``config.yaml``; a broken file is a one-line error naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=YAML_LOADER)
    except FileNotFoundError:
        raise LavanyaError(f"{path}: config.yaml is missing") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LavanyaError(f"{path}: config.yaml does not parse ({reason})") from None
    if not isinstance(data, dict):
        raise LavanyaError(f"{path}: config.yaml is not a mapping of ESPnet settings")
    return data


def sample_rate(config: dict[str, Any]) -> int | None:
    """The voice's output sample rate, from the feature extractor settings."""
    rate = (config.get("feats_extract_conf") or {}).get("fs")
    return int(rate) if rate is not None else None


def write_runtime_config(config: dict[str, Any], model_dir: Path, destination: Path) -> Path:
    """Write a copy of ``config`` with every ``stats_file`` resolved to ``model_dir``.

    Returns the path of the copy (``destination/config.yaml``).
    """
    from .layout import STATS_NAMES

    resolved = dict(config)
    for key, kind in STATS_ENTRIES.items():
        entry = resolved.get(key)
        if isinstance(entry, dict) and "stats_file" in entry:
            resolved[key] = {**entry, "stats_file": str((model_dir / STATS_NAMES[kind]).resolve())}
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / "config.yaml"
    with open(target, "w", encoding="utf-8") as handle:
        yaml.dump(resolved, handle, Dumper=YAML_DUMPER, allow_unicode=True, sort_keys=False)
    return target


def stats_file_entries(config: dict[str, Any]) -> dict[str, Any]:
    """``{config key: stats_file value}`` for every normaliser the config switches on.

    A normaliser is on when its ``normalize``/``pitch_normalize``/``energy_normalize`` setting
    is not null, or is absent while its ``_conf`` is present; the value is None when the config
    gives no ``stats_file``.
    """
    entries = {}
    for key in STATS_ENTRIES:
        setting = key.removesuffix("_conf")
        if config.get(setting) is None and (setting in config or key not in config):
            continue
        conf = config.get(key)
        entries[key] = conf.get("stats_file") if isinstance(conf, dict) else None
    return entries
