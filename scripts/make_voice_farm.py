#!/usr/bin/env python3
"""Build a many-voice deploy root ("voice farm") in the upstream main tree's layout, to benchmark a
server that holds many full-size voices (``lavanya serve --max-memory``) without real weights.

Usage: python scripts/make_voice_farm.py DIR [--voices 31] [--only hindi/male,tamil/female]
           [--own-config urdu] [--shared PATH] [--bench ROOT] [--cache DIR] [--work DIR] [--copies] [--json]

Then, for example:
    lavanya verify DIR
    LAVANYA_CACHE=... lavanya synth --models DIR --lang tamil --gender female --engine onnx --text ... --output x.wav
    python scripts/load_test.py --models DIR --voices all --clients 8 --duration 120 --max-memory 450M

What DIR holds, honestly:

* The voices: the ``<language>/<gender>/model/`` directories of ``--shared`` (upstream main: 31
  voices, bodo female only), or the first ``--voices N`` of them taken round-robin over the four
  vocoders, or those ``--only`` names. Every voice directory but those of ``--own-config``
  languages holds THE SAME acoustic model: the full-size random-weight bench voice (``--bench``,
  scripts/make_bench_voice.py: upstream hindi/male's config, statistics and architecture), its two
  checked fp32 ONNX graphs and its export manifest (which names hindi/male). So those voices have
  hindi/male's 64-token list and statistics, not their own language's (the graphs' embedding is
  sized for that list; a voice's own config would not match them, and a manifest rewritten to
  claim otherwise would lie). Other scripts reach the model through the shared phone characters;
  characters outside hindi's list are dropped with a warning. Urdu cannot go that way (its front
  end passes Urdu letters, which hindi's list lacks: nothing is left to say), so by default each
  urdu voice gets its own upstream config and statistics (88 tokens) with random weights of the
  same full size (seeds 100+), exported and checked like the bench voice (``--own-config``). The
  shared graphs are hard links of one file per kind (``--copies``: separate copies, 148 MB a
  voice), so the server loads each voice from its own path but the page cache holds one copy: a
  "cold" load measures parsing and session set-up, not disk reads. All weights are random: the
  audio is quiet noise (``verify --speak`` calls it silent), with upstream's durations.
* The vocoders: the four of upstream's layout, ``vocoder/{male,female}/{aryan,dravidian}/hifigan``,
  each voice using the one upstream assigns it (``layout.vocoder_family``). They are four
  DISTINCT random HiFi-GAN V1 generators (512 channels, upstream's config.json each): male/aryan is
  the bench voice's own generator (seed 0, so its existing export is reused), the others are seeds
  1-3; each is exported and checked against torch by ``lavanya export``'s code, so each has its
  own ``generator.onnx`` digest and a server that shares vocoders by digest holds four.
* The front-end files each language reads, copied from ``--shared``: ``phone_dict/<language>``
  (where upstream ships it: tamil, telugu, malayalam and marathi are over 4 MB and absent from
  the shared tree, so those languages go through the unified parser), ``phone_dict/english``,
  ``numToText/<language>.csv``, ``multilingualcharmap.json``; also ``charmap/`` for the layout.

How it is built: a source tree under ``--work`` (default ``<parent of DIR>/.voice-farm-build``,
kept so a rebuild or a second farm reuses its exports) holds, per voice, hard links to the bench
voice's ``model.pth``, config and statistics, and the four random generators; its export cache
starts with hard links to the bench voice's existing exports from ``--cache`` (default lavanya's
cache: ``$LAVANYA_CACHE``, else the user cache directory). Then ``export.write_deploy_root`` writes DIR as
``lavanya export --out`` does, one voice at a time, and the graph copies are turned into hard links
(after checking their SHA-256). Needs torch for the three new vocoder exports and the --own-config voices (seconds to a minute
each here); without an acoustic export in ``--cache`` the acoustic model is exported too. Nothing is
written outside DIR and ``--work``; nothing leaves the machine. One build at a time per ``--work``.

``lavanya verify DIR`` then reports only upstream's own config problem, three per voice: the
``stats_file`` entries are absolute paths on the authors' machine (the config is upstream's, kept
byte for byte because the export manifest lists its digest; the statistics beside it are used).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs" / "main"
# Vocoder (gender, family) -> random seed of its generator. male/aryan: the bench voice's own (seed 0).
VOCODER_SEEDS = {("male", "aryan"): 0, ("female", "dravidian"): 1, ("female", "aryan"): 2, ("male", "dravidian"): 3}
MODEL_FILES = ("config.yaml", "feats_type", "feats_stats.npz", "pitch_stats.npz", "energy_stats.npz", "model.pth")
GRAPH_SUFFIX = ".onnx"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def link_or_copy(source: Path, target: Path) -> None:
    """Hard link ``source`` at ``target`` (a copy across filesystems); an existing target is replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        if target.exists() and os.path.samefile(source, target):
            return
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def choose_voices(shared: Path, count: int, only: list[str]) -> list[tuple[str, str]]:
    """The upstream main tree's voices to build: ``only`` as named, else the first ``count`` taken
    round-robin over the four vocoders, so a small farm still has distinct vocoders."""
    from lavanya_cli.modeltree.layout import ModelRoot, vocoder_family

    voices = [(spec.language, spec.gender) for spec in ModelRoot(shared).voices() if not spec.variant]
    if only:
        missing = [name for name in only if tuple(name.split("/")) not in voices]
        if missing:
            raise SystemExit(f"make_voice_farm: not in {shared}: {', '.join(missing)}")
        return [tuple(name.split("/")) for name in only]
    groups = {key: [v for v in voices if (v[1], vocoder_family(v[0])) == key] for key in VOCODER_SEEDS}
    ordered = []
    while any(groups.values()):
        for key in VOCODER_SEEDS:
            if groups[key]:
                ordered.append(groups[key].pop(0))
    return ordered[:count]


def prepare_bench(bench: Path | None, work: Path, shared: Path) -> Path:
    """The bench voice's model root: ``bench`` where it exists, else one built under ``work``."""
    if bench is not None and (bench / "hindi" / "male" / "model" / "model.pth").is_file():
        return bench
    built = work / "benchvoice"
    if not (built / "hindi" / "male" / "model" / "model.pth").is_file():
        from lavanya_cli.bench.bench_voice import build_bench_voice

        shutil.rmtree(built, ignore_errors=True)
        print(f"building the bench voice in {built} (no {bench})", flush=True)
        build_bench_voice(built, shared if shared.is_dir() else None)
    return built


def copy_fresh(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` as a new inode (never writing through a hard link there)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    shutil.copyfile(source, target)


def prepare_sources(voices, bench: Path, shared: Path, source: Path, own_config: set[str]) -> None:
    """The source tree: per voice, hard links to the bench model (or, for ``own_config``
    languages, the voice's own upstream config and statistics with random weights); the random
    vocoders; front-end files."""
    from lavanya_cli.modeltree.layout import vocoder_family
    from lavanya_cli.testing.random_weights import (
        write_random_acoustic_model,
        write_random_vocoder,
    )

    bench_model = bench / "hindi" / "male" / "model"
    bench_vocoder = bench / "vocoder" / "male" / "aryan" / "hifigan"
    for number, (language, gender) in enumerate(voices):
        model_dir = source / language / gender / "model"
        if language in own_config:
            upstream = shared / language / gender / "model"
            marker = model_dir / ".own-config"
            if not marker.is_file() or not (model_dir / "model.pth").is_file():
                for name in MODEL_FILES[:-1]:
                    if (upstream / name).is_file():
                        copy_fresh(upstream / name, model_dir / name)
                if (model_dir / "model.pth").exists():
                    (model_dir / "model.pth").unlink()
                print(f"random acoustic model for {language}/{gender} with its own upstream config", flush=True)
                write_random_acoustic_model(model_dir, seed=100 + number)
                marker.write_text("own upstream config, random weights\n")
            continue
        (model_dir / ".own-config").unlink(missing_ok=True)
        for name in MODEL_FILES:
            if (bench_model / name).is_file():
                link_or_copy(bench_model / name, model_dir / name)
    for gender, family in sorted({(g, vocoder_family(lang)) for lang, g in voices}):
        directory = source / "vocoder" / gender / family / "hifigan"
        seed = VOCODER_SEEDS[(gender, family)]
        if seed == 0:
            for name in ("config.json", "generator"):
                link_or_copy(bench_vocoder / name, directory / name)
        elif not (directory / "generator").is_file():
            config = json.loads((shared / "vocoder" / gender / family / "hifigan" / "config.json").read_text())
            print(f"random vocoder {gender}/{family} (seed {seed})", flush=True)
            write_random_vocoder(directory, config, seed=seed)
    for relative in ("multilingualcharmap.json", "LICENSE"):
        if (shared / relative).is_file():
            shutil.copyfile(shared / relative, source / relative)
    for folder in ("phone_dict", "numToText", "charmap"):
        if (shared / folder).is_dir():
            (source / folder).mkdir(parents=True, exist_ok=True)
            for path in (shared / folder).iterdir():
                if path.is_file() and not (source / folder / path.name).is_file():
                    shutil.copyfile(path, source / folder / path.name)


def seed_cache(old: Path, cache: Path) -> list[str]:
    """Hard links to ``old``'s exports in ``cache`` (a key is a digest of the sources: the bench
    voice's exports are found for its hard-linked files without exporting again)."""
    linked = []
    for kind in ("acoustic", "vocoder"):
        if not (old / kind).is_dir():
            continue
        for export in (old / kind).iterdir():
            if (export / "lavanya-export.json").is_file() and not export.name.startswith("."):
                target = cache / kind / export.name
                if not (target / "lavanya-export.json").is_file():
                    for path in export.iterdir():
                        if path.is_file():
                            link_or_copy(path, target / path.name)
                    linked.append(f"{kind}/{export.name}")
    return linked


def deduplicate(directory: Path, canonical: dict[str, Path]) -> int:
    """Replace each graph in ``directory`` by a hard link to the first one with the same SHA-256
    (checked, not taken from the manifest); the bytes saved."""
    saved = 0
    for path in sorted(directory.glob(f"*{GRAPH_SUFFIX}")):
        digest = sha256(path)
        first = canonical.setdefault(digest, path)
        if first == path or os.path.samefile(first, path):
            continue
        temporary = path.with_name(f".{path.name}.link")
        if temporary.exists():
            temporary.unlink()
        os.link(first, temporary)
        os.replace(temporary, path)
        saved += path.stat().st_size
    return saved


def tree_bytes(root: Path) -> tuple[int, int]:
    """(apparent bytes, bytes on disk counting each inode once) under ``root``."""
    apparent, seen, unique = 0, set(), 0
    for folder, _, files in os.walk(root):
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            apparent += info.st_size
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                unique += info.st_blocks * 512
    return apparent, unique


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="deploy root to write (created; an earlier farm is replaced)")
    parser.add_argument("--voices", type=int, default=31, help="how many of upstream's voices (default all 31)")
    parser.add_argument("--only", default="", help="comma-separated voices instead, e.g. hindi/male,tamil/female")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the upstream main tree (no weights)")
    parser.add_argument("--bench", type=Path, default=None,
                        help="the random-weight bench voice's root (scripts/make_bench_voice.py; default: built "
                             "under --work)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="export cache holding the bench voice's exports (default: lavanya's, $LAVANYA_CACHE)")
    parser.add_argument("--work", type=Path, default=None, help="build directory (default <parent>/.voice-farm-build)")
    parser.add_argument("--copies", action="store_true", help="copy the acoustic graphs per voice instead of hard links")
    parser.add_argument("--own-config", default="urdu", metavar="LANGS",
                        help="languages whose voices get their own upstream config and statistics with random "
                             "weights, exported each (slow; default urdu, whose front end needs its own tokens; "
                             "'none' for no language, 'all' for every one)")
    parser.add_argument("--precision", choices=("f32", "int8"), default="f32",
                        help="the acoustic graphs deployed: f32, or int8 where its guard passes")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    if not 1 <= args.voices <= 64:
        parser.error("--voices must be from 1 to 64")
    if not (args.shared / "multilingualcharmap.json").is_file():
        parser.error(f"--shared {args.shared}: not the upstream main tree (no multilingualcharmap.json)")

    from lavanya_cli.modeltree.layout import ModelRoot
    from lavanya_cli.speech.export import write_deploy_root
    from lavanya_cli.speech.quantize import ensure_int8_exports

    prepare = {"prepare": ensure_int8_exports} if args.precision == "int8" else {}

    started = time.monotonic()
    out = args.directory.resolve()
    work = (args.work or out.parent / ".voice-farm-build").resolve()
    source, cache = work / "src", work / "cache"
    if out == work or work.is_relative_to(out) or out.is_relative_to(work):
        parser.error("DIR and --work must be separate directories")
    voices = choose_voices(args.shared, args.voices, [n.strip() for n in args.only.split(",") if n.strip()])
    source.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    from lavanya_cli.speech.export_store import cache_root

    args.cache = args.cache or cache_root()
    bench = prepare_bench(args.bench, work, args.shared)
    linked = seed_cache(args.cache, cache) if args.cache.is_dir() else []
    own = {n.strip() for n in args.own_config.split(",") if n.strip()} - {"none"}
    own_config = {language for language, _ in voices} if "all" in own else own
    prepare_sources(voices, bench, args.shared, source, own_config)

    wanted = set(voices)
    specs = [spec for spec in ModelRoot(source).voices() if (spec.language, spec.gender) in wanted]
    canonical: dict[str, Path] = {}
    made, saved = [], 0
    for number, spec in enumerate(specs, 1):
        (entry,) = write_deploy_root([spec], out, cache, **prepare)
        made += entry["made"]
        for folder in (entry["model_dir"], entry["vocoder_dir"]):
            if not args.copies or folder == entry["vocoder_dir"]:
                saved += deduplicate(Path(folder), canonical)
        print(f"[{number}/{len(specs)}] {spec.name} -> {spec.vocoder.directory.relative_to(source)}"
              + (f" (exported now: {', '.join(entry['made'])})" if entry["made"] else ""), flush=True)
    for folder in ("charmap",):
        if (source / folder).is_dir():
            (out / folder).mkdir(exist_ok=True)
            for path in (source / folder).iterdir():
                shutil.copyfile(path, out / folder / path.name)
    if (source / "LICENSE").is_file():
        shutil.copyfile(source / "LICENSE", out / "LICENSE")

    generators = {}
    for gender, family in VOCODER_SEEDS:
        graph = out / "vocoder" / gender / family / "hifigan" / "generator.onnx"
        if graph.is_file():
            generators[f"{gender}/{family}"] = sha256(graph)[:16]
    apparent, on_disk = tree_bytes(out)
    summary = {
        "farm": str(out), "voices": len(specs), "own_config_languages": sorted(own_config & {v[0] for v in voices}), "seconds": round(time.monotonic() - started, 1),
        "exported_now": made, "cache_seeded_from": [str(args.cache / name) for name in linked],
        "generator_digests": generators, "distinct_generators": len(set(generators.values())),
        "apparent_mb": round(apparent / 1e6), "on_disk_mb": round(on_disk / 1e6),
        "hard_link_saving_mb": round(saved / 1e6), "work": str(work), "work_on_disk_mb": round(tree_bytes(work)[1] / 1e6),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{out}: {len(specs)} voices, {summary['distinct_generators']} distinct vocoders "
              f"{generators}; {summary['on_disk_mb']} MB on disk ({summary['apparent_mb']} MB counting each link), "
              f"built in {summary['seconds']} s; build directory {work} ({summary['work_on_disk_mb']} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
