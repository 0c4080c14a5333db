"""Time the front-end's start on its tables: a phone dictionary parsed from text (as before the
cache) against its cached table (``lavanya_cli.frontend.tables``), each opened and asked the
twenty words of a sentence; and the number table's parse, to show whether it would pay to cache.

    python scripts/frontend_tables_speed.py [DICTIONARY] [--numbers CSV] [--repeat 7]

DICTIONARY defaults to ../shared/iitm-fs2hs/main/phone_dict/hindi (read in place, never copied).
The cache is a temporary directory, removed at the end. Prints the median of ``--repeat`` runs
in milliseconds, and how much each start raises the peak resident memory of a fresh process
(``VmHWM``; tracemalloc would count the bounded reader's 128 MiB request, which the kernel
never backs). No assertions: speed is measured here, never in unit tests.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lavanya_cli.fileio import PHONE_DICT_MAX_BYTES, read_regular, read_regular_text
from lavanya_cli.frontend import tables
from lavanya_cli.frontend.numbers import NumberTable
from lavanya_cli.frontend.phones import look_up

SHARED = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs" / "main"
# About twenty words of a sentence, as a start looks them up.
SENTENCES = {
    False: "भारत एक विशाल देश है जिसकी जनसंख्या एक सौ चालीस करोड़ से अधिक है और आज का तापमान बत्तीस डिग्री था",
    True: "India is a vast country and today the temperature in Delhi was thirty two degrees with a cool "
          "breeze from the river",
}


def sentence(fold_case: bool) -> list[str]:
    return SENTENCES[fold_case].split()


def parsed_start(path: Path, fold_case: bool) -> list[str | None]:
    """The start before the cache: the text read and parsed into a dict, then the sentence."""
    entries = tables.parse_dictionary(read_regular_text(path, PHONE_DICT_MAX_BYTES), fold_case)
    return [look_up(entries.get, word, fold_case) for word in sentence(fold_case)]


def cached_start(path: Path, fold_case: bool, cache: Path) -> list[str | None]:
    """The start now: the source hashed, its cached table read, then the sentence."""
    table = tables.load_table(path, fold_case, cache)
    return [look_up(table.get, word, fold_case) for word in sentence(fold_case)]


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def peak_rise_mb(mode: str, path: Path, fold_case: bool, cache: Path) -> float:
    """How far one start raises the peak resident memory of a fresh process (MB)."""
    command = [sys.executable, __file__, str(path), "--child", mode, "--cache", str(cache)]
    if fold_case:
        command.append("--fold-case")
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def peak_resident_mb() -> float:
    """This process's peak resident memory: ``VmHWM`` where Linux gives it (``ru_maxrss`` keeps
    the parent's peak across fork and exec), else ``ru_maxrss``."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) * 1024 / 1e6


def child(mode: str, path: Path, fold_case: bool, cache: Path) -> None:
    before = peak_resident_mb()
    result = parsed_start(path, fold_case) if mode == "parsed" else cached_start(path, fold_case, cache)
    after = peak_resident_mb()
    assert len(result) == len(sentence(fold_case))
    print(after - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dictionary", nargs="?", type=Path, default=SHARED / "phone_dict" / "hindi")
    parser.add_argument("--numbers", type=Path, default=SHARED / "numToText" / "hindi.csv")
    parser.add_argument("--fold-case", action="store_true", help="as for phone_dict/english")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--child", choices=("parsed", "cached"), help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    path, fold = args.dictionary, args.fold_case
    if args.child:
        child(args.child, path, fold, args.cache)
        return

    with tempfile.TemporaryDirectory(prefix="lavanya-tables-") as temporary:
        cache = Path(temporary)
        source = read_regular(path, PHONE_DICT_MAX_BYTES)
        hashing = median_ms(lambda: hashlib.sha256(source).digest(), args.repeat)
        started = time.perf_counter()
        first = cached_start(path, fold, cache)  # the first start: parsed, then written
        first_ms = (time.perf_counter() - started) * 1000
        assert first == parsed_start(path, fold), "the table and the text disagree"
        parsed = median_ms(lambda: parsed_start(path, fold), args.repeat)
        cached = median_ms(lambda: cached_start(path, fold, cache), args.repeat)
        parsed_peak = peak_rise_mb("parsed", path, fold, cache)
        cached_peak = peak_rise_mb("cached", path, fold, cache)
        size = sum(entry.stat().st_size for entry in (cache / tables.CACHE_DIR).iterdir())
        numbers = median_ms(lambda: NumberTable.load(args.numbers), args.repeat) if args.numbers.is_file() else None

    found = sum(phones is not None for phones in first)
    print(f"{path} ({len(source) / 1e6:.1f} MB), {len(first)} words looked up, {found} found; "
          f"median of {args.repeat}")
    print(f"SHA-256 of the source:             {hashing:7.1f} ms")
    print(f"parsed from text + lookups:        {parsed:7.1f} ms, peak RSS +{parsed_peak:5.1f} MB")
    print(f"cached table + lookups:            {cached:7.1f} ms, peak RSS +{cached_peak:5.1f} MB "
          f"({parsed / cached:.0f}x faster)")
    print(f"first start (parse, build, write): {first_ms:7.1f} ms; table {size / 1e6:.1f} MB")
    if numbers is not None:
        print(f"number table {args.numbers.name} parsed:  {numbers:7.2f} ms")


if __name__ == "__main__":
    main()
