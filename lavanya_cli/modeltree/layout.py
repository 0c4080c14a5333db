"""A Fastspeech2_HS model root: where it is, which voices it holds, and each voice's files.

Two real layouts are recognised, both from the upstream repository:

* ``main``: ``<language>/<gender>/model/`` with vocoders at
  ``vocoder/<gender>/{aryan,dravidian}/hifigan/``;
* ``New-Models``: ``<language>_latest/<gender>/model[_mono]/`` and
  ``bilingual_models/<Language>_<gender>_bilingual/{model,output_model}/``, vocoders at
  ``vocoder/<gender>/<language>_latest/``.

Everything here is cheap (directory listings, no parsing of weights) so that maintenance
commands stay fast; synthesis and verification build on the same ``VoiceSpec``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LavanyaError, one_line, option
from .paths import exists, is_directory, is_regular, relative_path, require_inside, split_listing

ENV_VAR = "LAVANYA_MODELS"


def _bundled_root() -> Path:
    """The demo tree lavanya carries: inside the installed package (a wheel puts it there), else
    the repository's own ``Fastspeech2_HS/`` beside the package (a source checkout)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "Fastspeech2_HS"
    checkout = package.parent / "Fastspeech2_HS"
    if not installed.is_dir() and (package.parent / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return installed


BUNDLED_ROOT = _bundled_root()
GENDERS = ("male", "female")
DRAVIDIAN_LANGUAGES = frozenset({"tamil", "telugu", "kannada", "malayalam"})
VOCODER_FAMILIES = ("aryan", "dravidian")
# Misspellings in upstream directory names, mapped to the language they mean.
LANGUAGE_ALIASES = {"malyalam": "malayalam"}

CONFIG_NAME = "config.yaml"
STATS_NAMES = {"feats": "feats_stats.npz", "pitch": "pitch_stats.npz", "energy": "energy_stats.npz"}
WEIGHTS_NAME = "model.pth"
VOCODER_CONFIG_NAME = "config.json"
VOCODER_WEIGHTS_NAME = "generator"
# Where the real voices are (the bundled tree holds only a demo voice).
UPSTREAM_URL = "https://github.com/smtiitm/Fastspeech2_HS"
# The voices upstream publishes: the <language>/<gender>/model/ directories of
# https://github.com/smtiitm/Fastspeech2_HS, main branch (every language both genders, bodo
# female only). A voice the bundled demo lacks gets the git lfs pull for it only if it is one.
UPSTREAM_VOICES = frozenset(
    [(language, gender)
     for language in ("assamese", "bengali", "english", "gujarati", "hindi", "kannada", "malayalam", "manipuri",
                      "marathi", "odia", "punjabi", "rajasthani", "tamil", "telugu", "urdu")
     for gender in GENDERS]
    + [("bodo", "female")])
# What lavanya export writes beside config.yaml (or config.json): the graphs and their manifest.
EXPORT_MANIFEST_NAME = "lavanya-export.json"
ENCODER_GRAPH_NAME = "acoustic_encoder.onnx"
DECODER_GRAPH_NAME = "acoustic_decoder.onnx"
GENERATOR_GRAPH_NAME = "generator.onnx"
# A directory holding this file carries small demo weights that belong in plain git, not LFS.
DEMO_MARKER = "DEMO"

_MODEL_DIR = re.compile(r"^(model(_\w+)?|output_model)\Z")
_LATEST_DIR = re.compile(r"^(?P<language>[a-z]+)_latest\Z")
_BILINGUAL_DIR = re.compile(r"^(?P<language>[A-Za-z]+)_(?P<gender>male|female)_biling\w*\Z")
_EPOCH_WEIGHTS = re.compile(r"^(\d+)epoch\.pth\Z")


def vocoder_family(language: str) -> str:
    """The HiFi-GAN family a language's voices use: dravidian for the four southern languages."""
    return "dravidian" if language in DRAVIDIAN_LANGUAGES else "aryan"


@dataclass(frozen=True)
class VocoderSpec:
    """A HiFi-GAN vocoder directory: ``config.json`` plus an extension-less ``generator``."""

    directory: Path
    name: str

    @property
    def config_path(self) -> Path:
        return self.directory / VOCODER_CONFIG_NAME

    @property
    def generator_path(self) -> Path:
        return self.directory / VOCODER_WEIGHTS_NAME

    @property
    def demo(self) -> bool:
        return is_regular(self.directory / DEMO_MARKER)


@dataclass(frozen=True)
class VoiceSpec:
    """One voice's files in a model root. Nothing is read until a caller asks."""

    root: Path
    language: str
    gender: str
    variant: str
    model_dir: Path
    vocoder: VocoderSpec
    bundled: bool = False

    @property
    def name(self) -> str:
        base = f"{self.language}/{self.gender}"
        return f"{base} ({self.variant})" if self.variant else base

    @property
    def config_path(self) -> Path:
        return self.model_dir / CONFIG_NAME

    @property
    def demo(self) -> bool:
        """True for the small demo voice kept in plain git (its model directory holds ``DEMO``)."""
        return is_regular(self.model_dir / DEMO_MARKER)

    def stats_path(self, kind: str) -> Path:
        """Path of the ``feats``, ``pitch`` or ``energy`` statistics beside the config."""
        return self.model_dir / STATS_NAMES[kind]

    @property
    def stats_paths(self) -> dict[str, Path]:
        return {kind: self.stats_path(kind) for kind in STATS_NAMES}

    @property
    def weights_path(self) -> Path | None:
        """``model.pth``, else the latest ``<N>epoch.pth``, else None (no weights shipped).

        Whatever is at ``model.pth`` (a FIFO, a dangling link) is the weights path: callers probe
        it and report what it is, rather than silently falling back to another file."""
        plain = self.model_dir / WEIGHTS_NAME
        if exists(plain):
            return plain
        epochs = []
        try:
            for entry in os.scandir(self.model_dir):
                if match := _EPOCH_WEIGHTS.match(entry.name):
                    epochs.append((int(match.group(1)), Path(entry.path)))
        except OSError:
            return None
        return max(epochs)[1] if epochs else None

    def relative(self, path: Path) -> str:
        """``path`` relative to the model root, as problems and tables print it."""
        return relative_path(path, self.root)

    def require_inside(self) -> None:
        """A one-line FileError where the voice's model or vocoder directory, or anything in
        them, is a link out of the model root: a voice reads its files only inside its root."""
        for directory in (self.model_dir, self.vocoder.directory):
            require_inside(self.root, directory)
            try:
                _, escaping = split_listing(directory, self.root)
            except OSError as exc:
                raise LavanyaError(f"{directory}: cannot be listed ({one_line(exc)})") from None
            if escaping:
                require_inside(self.root, escaping[0])


@dataclass
class ModelRoot:
    """A directory of voices. ``vocoder_override`` forces one vocoder family for every voice.

    ``unreadable`` lists, after ``voices()``, each directory the scan could not list with the
    reason: voices inside it are unknown, and every command says so rather than skip them."""

    path: Path
    vocoder_override: str | None = None
    _voices: list[VoiceSpec] | None = field(default=None, repr=False)
    unreadable: list[tuple[Path, str]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def bundled(self) -> bool:
        try:
            return self.path.resolve() == BUNDLED_ROOT
        except OSError:
            return False

    def resource(self, *parts: str) -> Path:
        """A shared front-end resource (``phone_dict/<language>``, ``numToText/...``)."""
        return self.path.joinpath(*parts)

    def voices(self) -> list[VoiceSpec]:
        """Every voice under the root, sorted by language, gender and variant."""
        if self._voices is None:
            self.unreadable = []
            found = [self.voice_spec(*entry) for entry in _scan(self.path, self.unreadable)]
            self._voices = sorted(found, key=lambda v: (v.language, v.gender, v.variant))
        return self._voices

    def find(self, language: str, gender: str, variant: str | None = None) -> VoiceSpec:
        """The voice for ``language``/``gender``; the plain one unless ``variant`` is given."""
        found = pick_voice(self.voices(), language, gender, variant)
        if found is None:
            language, gender = LANGUAGE_ALIASES.get(language.lower(), language.lower()), gender.lower()
            wanted = f"{language}/{gender}{f' ({variant})' if variant else ''}"
            available = ", ".join(v.name for v in self.voices()) or "none"
            if self.bundled and variant is None and (language, gender) in UPSTREAM_VOICES:
                raise LavanyaError(
                    f"no voice {wanted} here: the bundled tree is a small demo with {available} only; for the "
                    f"real voices run: git clone {UPSTREAM_URL} && (cd Fastspeech2_HS && git lfs pull "
                    f"--include=\"{language}/{gender}/**,vocoder/{gender}/**\"), then add {option('models')} Fastspeech2_HS"
                )
            if self.bundled:
                raise LavanyaError(
                    f"no voice {wanted} here: the bundled tree is a small demo with {available} only, and "
                    f"{UPSTREAM_URL} has no {wanted} on its main branch either; its voices there: "
                    f"{_upstream_voice_list()}"
                )
            raise LavanyaError(f"no voice {wanted} in {self.path}; voices there: {available}")
        return found

    def require_voices(self) -> list[VoiceSpec]:
        """The voices; a root with none (and no directory that could not be listed, which the
        caller reports) is a usage error: almost always a wrong path, and a CI job that checked
        nothing must not stay green."""
        voices = self.voices()
        if not voices and not self.unreadable:
            raise LavanyaError(f"{self.path}: no voices found (expected <language>/<gender>/model/ "
                               f"directories); pass the model root with {option('models')} or as ROOT")
        return voices

    def voice_spec(self, language: str, gender: str, variant: str, model_dir: Path) -> VoiceSpec:
        """The voice in ``model_dir`` as this root describes it, its vocoder included (also for
        a directory the scan has not seen yet, such as add-voice's staging copy)."""
        return VoiceSpec(
            root=self.path,
            language=language,
            gender=gender,
            variant=variant,
            model_dir=model_dir,
            vocoder=self._vocoder_for(language, gender),
            bundled=self.bundled,
        )

    def _vocoder_for(self, language: str, gender: str) -> VocoderSpec:
        base = self.path / "vocoder" / gender
        if self.vocoder_override is None:
            latest = base / f"{language}_latest"
            if is_directory(latest):
                return VocoderSpec(latest, latest.name)
        family = self.vocoder_override or vocoder_family(language)
        return VocoderSpec(base / family / "hifigan", family)


def _upstream_voice_list() -> str:
    """UPSTREAM_VOICES in one short phrase: the languages with both genders, then the others."""
    both = sorted(language for language, gender in UPSTREAM_VOICES
                  if gender == GENDERS[0] and (language, GENDERS[1]) in UPSTREAM_VOICES)
    one = sorted((language, gender) for language, gender in UPSTREAM_VOICES if language not in both)
    return ", ".join(both) + " (female and male)" + "".join(f", {language} ({gender} only)" for language, gender in one)


# Which voice a language/gender means when several variants exist: the plain one first.
VARIANT_PREFERENCE = {"": 0, "latest": 1, "bilingual": 2}


def pick_voice(voices: Iterable[VoiceSpec], language: str, gender: str, variant: str | None = None) -> VoiceSpec | None:
    """The voice a request for ``language``/``gender`` means among ``voices`` (a root's, or the
    ones a server holds): case and misspelt language names folded, the plain voice preferred
    (``VARIANT_PREFERENCE``) unless ``variant`` asks for one. None where none fits."""
    language = LANGUAGE_ALIASES.get(language.lower(), language.lower())
    gender = gender.lower()
    matches = [v for v in voices if v.language == language and v.gender == gender
               and (variant is None or v.variant == variant)]
    return min(matches, key=lambda v: variant_rank(v.variant)) if matches else None


def variant_rank(variant: str) -> int:
    """Sort key for variants: VARIANT_PREFERENCE's order, any other variant after those."""
    return VARIANT_PREFERENCE.get(variant, len(VARIANT_PREFERENCE))


def _list_subdirs(path: Path, unreadable: list[tuple[Path, str]]) -> list[os.DirEntry]:
    """The directories (or links to directories) in ``path``; a directory that cannot be listed
    is added to ``unreadable`` with the reason."""
    try:
        with os.scandir(path) as entries:
            listed = list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        unreadable.append((Path(path), f"cannot list this directory ({one_line(exc)})"))
        return []
    return [entry for entry in listed if is_directory(entry.path)]


def _scan(root: Path, unreadable: list[tuple[Path, str]]):
    """Yield ``(language, gender, variant, model_dir)`` for every model directory under root."""

    def subdirs(path):
        return _list_subdirs(path, unreadable)

    for top in subdirs(root):
        if top.name == "vocoder" or top.name.startswith("."):
            continue
        if top.name == "bilingual_models":
            for voice_dir in subdirs(Path(top.path)):
                if match := _BILINGUAL_DIR.match(voice_dir.name):
                    language = match.group("language").lower()
                    for model in subdirs(Path(voice_dir.path)):
                        if _MODEL_DIR.match(model.name):
                            yield (LANGUAGE_ALIASES.get(language, language), match.group("gender"),
                                   "bilingual", Path(model.path))
            continue
        latest = _LATEST_DIR.match(top.name)
        language = latest.group("language") if latest else top.name
        for gender_dir in subdirs(Path(top.path)):
            if gender_dir.name not in GENDERS:
                continue
            for model in subdirs(Path(gender_dir.path)):
                if not _MODEL_DIR.match(model.name):
                    continue
                suffix = model.name.removeprefix("model").lstrip("_")
                variant = "-".join(part for part in ("latest" if latest else "", suffix) if part)
                yield LANGUAGE_ALIASES.get(language, language), gender_dir.name, variant, Path(model.path)


def candidate_roots(models: Path | None = None, *, source: str | None = None) -> list[Path]:
    """Model roots to look in, in order: ``--models``, ``$LAVANYA_MODELS``, ``./Fastspeech2_HS``,
    the bundled tree. An explicit ``--models`` is the only candidate: the user asked for it.

    A root the user named (``models``, called ``source`` in messages, by default ``option("models")``
    as the message is made, or the environment variable) that is not a directory is an error
    naming it, never a silent fall-back."""
    if models is not None:
        return [_named_root(Path(models), source or option("models"))]
    roots: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        roots.append(_named_root(Path(env), f"${ENV_VAR}"))
    local = Path("Fastspeech2_HS")
    if is_directory(local):
        roots.append(local)
    if is_directory(BUNDLED_ROOT):
        roots.append(BUNDLED_ROOT)
    unique: list[Path] = []
    for root in roots:
        if not any(_same(root, seen) for seen in unique):
            unique.append(root)
    return unique


def _named_root(path: Path, source: str) -> Path:
    if is_directory(path):
        return path
    if exists(path):
        raise LavanyaError(f"{path}: not a directory ({source}); name the model root, the directory "
                           "that holds <language>/<gender>/model/")
    fix = "point it at a model root or unset it" if source.startswith("$") else "check the path"
    raise LavanyaError(f"{path}: no such directory ({source}); {fix}")


def resolve_root(models: Path | None = None, *, source: str | None = None) -> Path:
    """The one model root a maintenance command works on (``source`` names where ``models``
    came from, for the message when it is no directory)."""
    roots = candidate_roots(models, source=source)
    if not roots:
        raise _no_root()
    return roots[0]


def _no_root() -> LavanyaError:
    """The one error for "nowhere to look", shared by maintenance commands and synthesis."""
    return LavanyaError(f"no model root: pass {option('models')} PATH or set ${ENV_VAR} (no ./Fastspeech2_HS here)")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def find_voice(
    language: str,
    gender: str,
    variant: str | None = None,
    models: Path | None = None,
    *,
    vocoder: str | None = None,
    require: Callable[[VoiceSpec], object] | None = None,
    passed_over: list[str] | None = None,
) -> VoiceSpec:
    """The voice from the first candidate root that has it (see ``candidate_roots``), so a real
    voice found at ``--models``, ``$LAVANYA_MODELS`` or ``./Fastspeech2_HS`` wins over the demo.

    ``require`` (raising LavanyaError) narrows "has it": synthesis passes a check for real weights,
    so a tree of LFS pointers earlier in the chain does not hide the bundled demo; why each such
    voice was passed over is appended to ``passed_over``, for the user who expected it to speak.
    ``vocoder`` forces a vocoder family, as ``ModelRoot.vocoder_override``."""
    roots = candidate_roots(models)
    if not roots:
        raise _no_root()
    failures, unusable = [], []
    for root in roots:
        try:
            voice = ModelRoot(root, vocoder_override=vocoder).find(language, gender, variant)
        except LavanyaError as exc:
            failures.append(exc.message)
            continue
        try:
            if require is not None:
                require(voice)
        except LavanyaError as exc:
            failures.append(exc.message)
            unusable.append(exc.message)
            continue
        if passed_over is not None:
            passed_over.extend(unusable)
        return voice
    raise LavanyaError(failures[0] if len(failures) == 1 else "; ".join(failures))


def only_voice(models: Path | None, language: str | None, gender: str | None) -> tuple[str, str, Path]:
    """``(language, gender, root)`` where a language or gender was left out: the one voice that
    fits in the first root holding any voice, in the order voices are looked for (``models``,
    ``$LAVANYA_MODELS``, ``./Fastspeech2_HS``, the bundled demo). Several voices, or none that
    fits: one line listing the voices there."""
    asked = " ".join(f"{option(name, flag)} {value}"
                     for name, flag, value in (("language", "--lang", language), ("gender", None, gender)) if value)
    wanted = (LANGUAGE_ALIASES.get(language.lower(), language.lower()) if language else None,
              gender.lower() if gender else None)
    roots = candidate_roots(models) or [resolve_root(models)]  # none at all: resolve_root's one line
    for root in roots:
        tree = ModelRoot(root)
        names = sorted({(voice.language, voice.gender) for voice in tree.voices()})
        if not names:
            continue
        fits = [name for name in names if all(want in (None, have) for want, have in zip(wanted, name))]
        if len(fits) == 1 and not tree.unreadable:
            return fits[0][0], fits[0][1], root
        listing = ", ".join(f"{lang}/{sex}" for lang, sex in fits or names)
        found = (f"no voice in {root} fits {asked}; voices there: {listing}" if not fits
                 else f"voices in {root}{f' for {asked}' if asked else ''}: {listing}")
        if tree.unreadable:
            found += f" (and directories that cannot be listed: see lavanya voices {root})"
        raise LavanyaError(f"give {option('language', '--lang')} and {option('gender')}: {found}")
    raise LavanyaError(f"{roots[0]}: no voices found (expected <language>/<gender>/model/ directories); "
                       f"pass the model root with {option('models')}")
