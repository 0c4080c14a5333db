"""Build the bundled demo voice, Fastspeech2_HS/hindi/male, from eSpeak NG on a CPU.

    python scripts/demo_voice/build.py                 # everything, about 55 minutes on 2 cores
    python scripts/demo_voice/build.py --limit 8 --acoustic-steps 20 --vocoder-steps 10 \
        --work build/demo_tiny --no-install            # a quick check of the whole pipeline

Stages, each resumable (a finished data stage is kept, training resumes from its checkpoint):
``data`` (teacher audio, durations, features, statistics), ``train`` (FastSpeech2 and HiFi-GAN
at the same time, one thread each), ``finetune`` (the vocoder on the acoustic model's own
frames), ``install`` (the voice's files into the bundled tree) and ``evaluate`` (held-out figures
into Fastspeech2_HS/README.md). Needs the ``espeakng-loader`` wheel (``pip install -e .[demo]``).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from lavanya_cli.modeltree.layout import BUNDLED_ROOT  # noqa: E402

log = logging.getLogger("demo_voice")
STAGES = ("data", "train", "finetune", "install", "evaluate")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "build" / "demo_voice",
                        help="scratch directory for data and checkpoints")
    parser.add_argument("--root", type=Path, default=BUNDLED_ROOT,
                        help="model root the voice is installed into (its numToText is used)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N sentences")
    parser.add_argument("--acoustic-steps", type=int, default=3000)
    parser.add_argument("--vocoder-steps", type=int, default=4500)
    parser.add_argument("--finetune-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-install", action="store_true",
                        help="install into WORK/tree instead of the repository's tree")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    setup_logging()
    args.work.mkdir(parents=True, exist_ok=True)
    timings_path = args.work / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    target = args.work / "tree" if args.no_install else args.root
    for stage in STAGES:
        if stage not in args.stages:
            continue
        started = time.monotonic()
        STAGE_FUNCTIONS[stage](args, target)
        timings[stage] = round(time.monotonic() - started, 1)
        timings_path.write_text(json.dumps(timings, indent=1))
        log.info("stage %s: %.0f s", stage, timings[stage])


def setup_logging() -> None:
    """This build's progress at INFO; ESPnet's chatter (it logs every initialised layer) off."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    logging.getLogger().setLevel(logging.WARNING)
    from lavanya_cli.speech.espnet_import import text2speech_class

    text2speech_class()  # imports ESPnet once without its offline NLTK download attempt


def stage_data(args, target: Path) -> None:
    import data
    from voice_config import acoustic_config

    if (args.work / "data" / "heldout.npz").exists():
        log.info("data: already built in %s", args.work / "data")
        return
    config = _runtime_config(acoustic_config(args.seed), args.work)
    summary = data.build_data(HERE / "corpus", args.work, args.root, config, args.limit)
    (args.work / "data" / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))


def stage_train(args, target: Path) -> None:
    """Acoustic model and vocoder side by side, one process and one thread each."""
    common = [sys.executable, str(HERE / "training.py"), "--work", str(args.work), "--seed", str(args.seed)]
    jobs = [
        subprocess.Popen(common + ["acoustic", "--steps", str(args.acoustic_steps)]),
        subprocess.Popen(common + ["vocoder", "--steps", str(args.vocoder_steps)]),
    ]
    codes = [job.wait() for job in jobs]
    if any(codes):
        raise SystemExit(f"training failed (exit codes {codes})")


def stage_finetune(args, target: Path) -> None:
    """The vocoder once more, on the trained acoustic model's own frames, both cores."""
    command = [sys.executable, str(HERE / "training.py"), "finetune", "--work", str(args.work),
               "--seed", str(args.seed), "--steps", str(args.finetune_steps), "--threads", "2"]
    if subprocess.call(command):
        raise SystemExit("vocoder fine-tuning failed")


def stage_install(args, target: Path) -> None:
    """The voice in upstream's formats, its ONNX graphs beside its weights (checked against
    torch: a light install speaks them), and an MD5SUMS in each directory."""
    import install
    from lavanya_cli.checks.verify import write_manifests
    from lavanya_cli.modeltree.layout import ModelRoot
    from lavanya_cli.speech.export import place_beside_weights

    install.install(args.work, target, args.seed)
    if target != args.root:
        install.copy_frontend_resources(args.root, target)
    place_beside_weights(ModelRoot(target).find("hindi", "male"), cache=args.work / "onnx")
    written, refused = write_manifests(target)
    if refused:
        raise SystemExit(f"manifests refused: {'; '.join(problem.line() for problem in refused)}")


def stage_evaluate(args, target: Path) -> None:
    import evaluate

    evaluate.evaluate(args.work, target, args.seed, readme=None if args.no_install else target / "README.md")


STAGE_FUNCTIONS = {"data": stage_data, "train": stage_train, "finetune": stage_finetune, "install": stage_install,
                   "evaluate": stage_evaluate}


def _runtime_config(config: dict, work: Path) -> dict:
    """``config`` with its stats files resolved into ``work/stats`` (the shipped one keeps bare names)."""
    from lavanya_cli.modeltree.config import STATS_ENTRIES
    from lavanya_cli.modeltree.layout import STATS_NAMES

    resolved = dict(config)
    for key, kind in STATS_ENTRIES.items():
        resolved[key] = {"stats_file": str(work / "stats" / STATS_NAMES[kind])}
    return resolved


if __name__ == "__main__":
    main()
