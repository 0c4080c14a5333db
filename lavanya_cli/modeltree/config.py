"""A voice's ESPnet ``config.yaml``: reading it (bounded, safe YAML), its ``stats_file``
entries, and a copy with those entries resolved for code that loads through ESPnet's own task.

Upstream configs carry absolute ``stats_file`` paths from the authors' machines. Synthesis never
follows them: it reads the statistics beside the config. ESPnet's ``Text2Speech`` does follow
them, so the upstream-way benchmark and the test tooling that drive it write a resolved copy
with ``write_runtime_config``; the user's file is never written. ``fix_stats_paths_text`` gives a
config's text with bare names instead (``fix-config`` writes it back; a deploy root holds it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import LavanyaError, one_line
from ..fileio import RESOURCE_MAX_BYTES, read_regular_text
from .paths import require_inside

# config key -> kind of statistics (see layout.STATS_NAMES)
STATS_ENTRIES = {
    "normalize_conf": "feats",
    "pitch_normalize_conf": "pitch",
    "energy_normalize_conf": "energy",
}

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# ESPnet configs nest four levels deep; far deeper nesting only serves to exhaust the stack.
YAML_MAX_DEPTH = 64


class YamlRefused(ValueError):
    """YAML that lavanya will not load: anchors or aliases, or nesting beyond YAML_MAX_DEPTH."""


def load_yaml(text: str, loader: type = YAML_LOADER) -> Any:
    """The one way lavanya loads YAML: safe constructors only, and the text is first checked, event
    by event, for anchors and aliases (refused: a few kB of aliases expand into gigabytes and
    minutes of work, and ESPnet configs have none) and for nesting beyond YAML_MAX_DEPTH.

    Raises YamlRefused, yaml.YAMLError, or ValueError (an integer too long to convert).
    """
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlRefused("uses YAML anchors or aliases (& or *), which lavanya does not expand; "
                              "write the values out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > YAML_MAX_DEPTH:
                raise YamlRefused(f"nests deeper than {YAML_MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return yaml.load(text, Loader=loader)


def read_config(path: Path) -> dict[str, Any]:
    """Parse ``config.yaml`` (a regular file of at most CONFIG_MAX_BYTES, through ``load_yaml``);
    a broken file is a one-line error naming it."""
    return parse_config(read_config_text(path), path)


def read_config_text(path: Path) -> str:
    """The text of ``config.yaml``, read only from a regular file of at most CONFIG_MAX_BYTES."""
    from ..fileio import CONFIG_MAX_BYTES, read_regular_text

    try:
        return read_regular_text(path, CONFIG_MAX_BYTES, "config.yaml")
    except FileNotFoundError:
        raise LavanyaError(f"{path}: config.yaml is missing") from None
    except OSError as exc:
        raise LavanyaError(f"{path}: config.yaml cannot be read ({one_line(exc)})") from None


def parse_config(text: str, path: Path) -> dict[str, Any]:
    """The settings in a config's ``text``; a broken one is a one-line error naming ``path``."""
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:  # YamlRefused, and ints beyond Python's digit limit
        raise LavanyaError(f"{path}: config.yaml does not parse ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise LavanyaError(f"{path}: config.yaml is not a mapping of ESPnet settings")
    return data


def sample_rate(config: dict[str, Any]) -> int | None:
    """The voice's output sample rate, from the feature extractor settings (None when the config
    does not give a positive whole number)."""
    conf = config.get("feats_extract_conf")
    rate = conf.get("fs") if isinstance(conf, dict) else None
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)
    return rate if isinstance(rate, int) and not isinstance(rate, bool) and rate > 0 else None


def output_rate(config: dict[str, Any]) -> int:
    """The rate a voice's audio is written at: its config's ``sample_rate``, else 22,050 Hz (the
    rate of upstream's 22 kHz voices) for a config that does not give one."""
    return sample_rate(config) or 22050


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


def fix_stats_paths_text(text: str) -> str:
    """``text`` with each ``stats_file`` value replaced by the bare file name, nothing else.

    The edit is made on the characters of the value (located through the YAML parser's node
    positions), so key order, comments, indentation, quoting and escapes elsewhere stay
    byte-for-byte; a config whose values are already bare comes back unchanged. The result is
    re-parsed and must equal the original apart from those values; otherwise ValueError (and
    YamlRefused or yaml.YAMLError for text ``load_yaml`` refuses).
    """
    from .layout import STATS_NAMES

    expected = load_yaml(text)
    if not isinstance(expected, dict):
        raise ValueError("config is not a mapping of ESPnet settings")
    for key, kind in STATS_ENTRIES.items():
        if isinstance(expected.get(key), dict) and "stats_file" in expected[key]:
            expected[key]["stats_file"] = STATS_NAMES[kind]
    # libyaml's marks count characters like the pure-Python parser's; should a build count
    # bytes instead, the re-parse check fails and the pure-Python parser is used. Composing is
    # safe here: load_yaml above has refused anchors, aliases and deep nesting in this text.
    for loader in dict.fromkeys((YAML_LOADER, yaml.SafeLoader)):
        fixed = _replace_stats_values(text, yaml.compose(text, Loader=loader), STATS_NAMES)
        if load_yaml(fixed) == expected:
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


def token_list(config: dict[str, Any], model_dir: Path | None = None) -> list[str] | None:
    """The config's ``token_list``: inline, or a tokens file inside ``model_dir`` (a path in the
    config is only looked up there, so a hostile config cannot point at files elsewhere)."""
    tokens = config.get("token_list")
    if isinstance(tokens, list):
        return [str(token) for token in tokens]
    if isinstance(tokens, str) and tokens and model_dir is not None:
        path = Path(tokens)
        inside = [] if path.is_absolute() or ".." in path.parts else [model_dir / path]
        for candidate in (*inside, model_dir / path.name):
            if candidate.exists():
                require_inside(model_dir, candidate)
                try:
                    return read_regular_text(candidate, RESOURCE_MAX_BYTES, "the token list").split()
                except OSError as exc:
                    raise LavanyaError(f"{candidate}: cannot read the token list ({one_line(exc)})") from None
    return None
