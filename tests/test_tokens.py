"""lavanya_cli.speech.tokens against ESPnet's CharTokenizer + TokenIDConverter: the same ids for
every upstream token list (main and New-Models) and for the awkward inputs."""

from __future__ import annotations

import random

import pytest

from lavanya_cli.errors import LavanyaError
from lavanya_cli.modeltree.config import token_list
from lavanya_cli.modeltree.config import read_config
from lavanya_cli.modeltree.layout import BUNDLED_ROOT, ModelRoot
from lavanya_cli.speech.tokens import Tokenizer

char_tokenizer = pytest.importorskip("espnet2.text.char_tokenizer")
token_id_converter = pytest.importorskip("espnet2.text.token_id_converter")

EDGE_CASES = ["", " ", "  a  b ", "a b", "<unk>", "a<unk>b", "<space>", "<sos/eos>", "✓ unknown ✓", "\t\n",
              "$namastE. $ApkऐsEhऐq.", "ठीक Hello है.", "a" * 300]


def _espnet_ids(config: dict, text: str) -> list[int]:
    tokenizer = char_tokenizer.CharTokenizer(non_linguistic_symbols=config.get("non_linguistic_symbols"))
    converter = token_id_converter.TokenIDConverter(list(config["token_list"]))
    return converter.tokens2ids(tokenizer.text2tokens(text))


def _texts(tokens: list[str], seed: int) -> list[str]:
    """Edge cases plus random strings of the voice's own characters, spaces and strangers."""
    alphabet = [t for t in tokens if len(t) == 1] + [" ", " ", "✓", "x", "<", ">"]
    chooser = random.Random(seed)
    return EDGE_CASES + ["".join(chooser.choice(alphabet) for _ in range(chooser.randint(1, 80))) for _ in range(30)]


def _configs(root) -> list[dict]:
    configs = []
    for spec in ModelRoot(root).voices():
        config = read_config(spec.config_path)
        config["token_list"] = token_list(config, spec.model_dir)
        configs.append(config)
    return configs


@pytest.mark.slow  # ESPnet's tokenizer on every real token list
def test_same_ids_as_espnet_on_every_upstream_token_list(shared_tree):
    configs = _configs(shared_tree / "main") + _configs(shared_tree / "new-models")
    assert len(configs) >= 60
    for index, config in enumerate(configs):
        ours = Tokenizer.from_config(config)
        for text in _texts(config["token_list"], index):
            assert ours.ids(text).tolist() == _espnet_ids(config, text), (index, text)


def test_same_ids_as_espnet_on_the_bundled_voice():
    (config,) = _configs(BUNDLED_ROOT)
    ours = Tokenizer.from_config(config)
    for text in _texts(config["token_list"], 0):
        ids = ours.ids(text)
        assert ids.dtype.name == "int64"
        assert ids.tolist() == _espnet_ids(config, text)
    assert ours.ids("").size == 0
    assert ours.ids("a a").tolist()[1] == config["token_list"].index("<unk>")  # no <space> token: unknown


def test_non_linguistic_symbols_are_one_token_each(tmp_path):
    tokens = ["<blank>", "<unk>", "a", "b", "<space>", "<laugh>", "<sil>", "<sos/eos>"]
    config = {"token_list": tokens, "non_linguistic_symbols": ["<laugh>", "<sil>"]}
    for text in ["a<laugh> b<sil>", "<laugh><laugh>", "<lau", "<sil >"]:
        assert Tokenizer.from_config(config).ids(text).tolist() == _espnet_ids(config, text)
    symbols = tmp_path / "symbols.txt"
    symbols.write_text("<laugh>\r\n<sil>  \n")
    config["non_linguistic_symbols"] = str(symbols)
    assert Tokenizer.from_config(config).ids("a<sil>b").tolist() == _espnet_ids(config, "a<sil>b") == [2, 6, 3]


def test_token_lists_espnet_would_refuse_are_refused():
    with pytest.raises(LavanyaError, match="<unk>"):
        Tokenizer(["<blank>", "a"])
    with pytest.raises(LavanyaError, match="twice"):
        Tokenizer(["<blank>", "<unk>", "a", "a"])
