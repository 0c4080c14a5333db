"""Time the text front-end on a real model root: dictionary load, first sentence, warm sentences.

    python scripts/frontend_speed.py [ROOT] [--lang hindi] [--gender male]

ROOT defaults to ../shared/iitm-fs2hs/main. Prints seconds for each stage; no assertions (speed
is measured here, never in unit tests).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lavanya_cli.modeltree.config import read_config
from lavanya_cli.frontend import Frontend, Speech, segment_text
from lavanya_cli.modeltree.layout import ModelRoot

TEXT = (
    "भारत एक विशाल देश है, जिसकी जनसंख्या 1,40,00,00,000 से अधिक है। "
    "आज का तापमान 32.5 डिग्री था और हवा में नमी 65 प्रतिशत थी। "
    "मैंने अपने computer पर एक नया program install किया। "
    "रेलगाड़ी सुबह 7 बजे दिल्ली से चली और शाम को मुंबई पहुँची। "
    "बच्चों ने विद्यालय में स्वतंत्रता दिवस का उत्सव धूमधाम से मनाया।"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs" / "main"
    parser.add_argument("root", nargs="?", type=Path, default=default_root)
    parser.add_argument("--lang", default="hindi")
    parser.add_argument("--gender", default="male")
    args = parser.parse_args()

    start = time.perf_counter()
    voice = ModelRoot(args.root).find(args.lang, args.gender)
    frontend = Frontend.for_voice(voice, read_config(voice.config_path))
    sentences = [item.text for item in segment_text(TEXT) if isinstance(item, Speech)]
    setup = time.perf_counter()
    frontend.dictionary.lookup("")  # the dictionary alone
    loaded = time.perf_counter()
    first = frontend.prepare(sentences[0])
    first_done = time.perf_counter()
    for sentence in sentences:
        frontend.prepare(sentence)
    warm_done = time.perf_counter()
    words = sum(len(s.split()) for s in sentences)
    print(f"voice {voice.name} ({frontend.kind.value}) in {args.root}")
    print(f"config + segmentation: {setup - start:.3f} s")
    print(f"phone_dict/{args.lang} load: {loaded - setup:.3f} s")
    print(f"first sentence (parser import, number table, English dictionary): {first_done - loaded:.3f} s")
    print(f"{len(sentences)} sentences warm: {warm_done - first_done:.3f} s ({words} words)")
    print(f"example: {first.model_input}")


if __name__ == "__main__":
    main()
