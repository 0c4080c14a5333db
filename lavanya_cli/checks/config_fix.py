"""``fix-config``: point a config's ``stats_file`` entries at the stats beside it, editing only
those characters so that formatting, comments and the token list stay byte-for-byte."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import FileError, LavanyaError, one_line
from ..modeltree.config import STATS_ENTRIES, YAML_LOADER, load_yaml, parse_config, read_config_text, stats_file_entries
from .problems import FIXED, REFUSED, UNCHANGED, FileFix
from .rewrite import Refused, rewrite_file, writable_target

RESTORE_CONFIG = "restore the config the voice was trained with"

def fix_stats_paths_text(text: str) -> str:
    """``text`` with each ``stats_file`` value replaced by the bare file name, nothing else.

    The edit is made on the characters of the value (located through the YAML parser's node
    positions), so key order, comments, indentation, quoting and escapes elsewhere stay
    byte-for-byte. The result is re-parsed and must equal the original apart from those values;
    otherwise ValueError.
    """
    from ..modeltree.layout import STATS_NAMES

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


def fix_config(path: Path, *, check_only: bool = False, root: Path | None = None) -> FileFix:
    """Point a config's ``stats_file`` entries at the stats beside it, by bare file name.

    A config outside ``root`` (default: the directory ``path`` is named in), one that is not a
    regular file, one that does not parse (anchors and aliases included, see ``load_yaml``) and
    one that cannot be written is ``refused`` and left as it is.
    """
    try:
        writable_target(path, root)
        text = read_config_text(path)
        config = parse_config(text, path)
        fixed = fix_stats_paths_text(text)
    except Refused as exc:
        return FileFix(path, REFUSED, exc.reason, exc.fix)
    except FileError as exc:
        return FileFix(path, REFUSED, exc.reason, exc.fix)
    except LavanyaError as exc:
        return FileFix(path, REFUSED, exc.message.removeprefix(f"{path}: "), RESTORE_CONFIG)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return FileFix(path, REFUSED, one_line(exc), RESTORE_CONFIG)
    absent = [key for key, value in stats_file_entries(config).items() if value is None]
    if absent:
        return FileFix(path, REFUSED, f"no stats_file under {', '.join(absent)}", "add one by hand")
    if fixed == text:
        return FileFix(path, UNCHANGED)
    note = ""
    if not check_only:
        try:
            note = rewrite_file(path, lambda handle: handle.write(fixed.encode("utf-8")), root)
        except Refused as exc:
            return FileFix(path, REFUSED, exc.reason, exc.fix)
    return FileFix(path, FIXED, note)
