"""``fix-config``: point a config's ``stats_file`` entries at the stats beside it, editing only
those characters so that formatting, comments and the token list stay byte-for-byte."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import FileError, LavanyaError, one_line
from ..modeltree.config import (
    fix_stats_paths_text,
    parse_config,
    read_config_text,
    stats_file_entries,
)
from .problems import FIXED, REFUSED, UNCHANGED, FileFix
from .rewrite import Refused, rewrite_file, writable_target

RESTORE_CONFIG = "restore the config the voice was trained with"


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
