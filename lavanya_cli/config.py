"""A voice's ESPnet ``config.yaml``: reading it, and the runtime copy ESPnet loads.

Upstream configs carry absolute ``stats_file`` paths from the authors' machines. At run time
lavanya points those entries at the stats files beside the config in a temporary copy; the
user's file is never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import LavanyaError

# config key -> kind of statistics (see repository.STATS_NAMES)
STATS_ENTRIES = {
    "normalize_conf": "feats",
    "pitch_normalize_conf": "pitch",
    "energy_normalize_conf": "energy",
}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def read_config(path: Path) -> dict[str, Any]:
    """Parse ``config.yaml``; a broken file is a one-line error naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_Loader)
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
    from .repository import STATS_NAMES

    resolved = dict(config)
    for key, kind in STATS_ENTRIES.items():
        entry = resolved.get(key)
        if isinstance(entry, dict) and "stats_file" in entry:
            resolved[key] = {**entry, "stats_file": str((model_dir / STATS_NAMES[kind]).resolve())}
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / "config.yaml"
    with open(target, "w", encoding="utf-8") as handle:
        yaml.dump(resolved, handle, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
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


@dataclass(frozen=True)
class ConfigFix:
    path: Path
    result: str  # "fixed" (or "would fix" under check_only), "unchanged" or "refused"
    reason: str = ""


def fix_stats_paths_text(text: str) -> str:
    """``text`` with each ``stats_file`` value replaced by the bare file name, nothing else.

    The edit is made on the characters of the value (located through the YAML parser's node
    positions), so key order, comments, indentation, quoting and escapes elsewhere stay
    byte-for-byte. The result is re-parsed and must equal the original apart from those values;
    otherwise ValueError.
    """
    from .repository import STATS_NAMES

    expected = yaml.load(text, Loader=_Loader)
    if not isinstance(expected, dict):
        raise ValueError("config is not a mapping of ESPnet settings")
    for key, kind in STATS_ENTRIES.items():
        if isinstance(expected.get(key), dict) and "stats_file" in expected[key]:
            expected[key]["stats_file"] = STATS_NAMES[kind]
    # libyaml's marks count characters like the pure-Python parser's; should a build count
    # bytes instead, the re-parse check fails and the pure-Python parser is used.
    for loader in dict.fromkeys((_Loader, yaml.SafeLoader)):
        fixed = _replace_stats_values(text, yaml.compose(text, Loader=loader), STATS_NAMES)
        if yaml.load(fixed, Loader=_Loader) == expected:
            return fixed
    raise ValueError("the stats_file lines could not be edited without changing other settings")


def _replace_stats_values(text: str, root: yaml.Node, names: dict[str, str]) -> str:
    edits = []
    for key_node, value_node in root.value:
        kind = STATS_ENTRIES.get(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
        if kind is None or not isinstance(value_node, yaml.MappingNode):
            continue
        for entry_key, entry_value in value_node.value:
            if entry_key.value == "stats_file" and isinstance(entry_value, yaml.ScalarNode) \
                    and entry_value.value != names[kind]:
                edits.append((entry_value.start_mark.index, entry_value.end_mark.index, names[kind]))
    for start, end, name in sorted(edits, reverse=True):
        text = text[:start] + name + text[end:]
    return text


def fix_config(path: Path, *, check_only: bool = False) -> ConfigFix:
    """Point a config's ``stats_file`` entries at the stats beside it, by bare file name."""
    from .atomic import replace_file

    try:
        original = path.read_bytes()
        text = original.decode("utf-8")
        config = read_config(path)
        fixed = fix_stats_paths_text(text)
    except LavanyaError as exc:
        return ConfigFix(path, "refused", exc.message.removeprefix(f"{path}: "))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return ConfigFix(path, "refused", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    absent = [key for key, value in stats_file_entries(config).items() if value is None]
    if absent:
        return ConfigFix(path, "refused", f"no stats_file under {', '.join(absent)}; add one by hand")
    if fixed == text:
        return ConfigFix(path, "unchanged")
    if not check_only:
        replace_file(path, lambda handle: handle.write(fixed.encode("utf-8")))
    return ConfigFix(path, "fixed")
