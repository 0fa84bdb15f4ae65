"""Prompts: the builder's grammar, the examples, and the warning for words a tiny model cannot read
(the word-level tokenizer turns them into <unk>), in the app and from `python -m accvideo generate`."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from accvideo.app.services import prompts
from accvideo.cli.main import main
from accvideo.models.tiny import build_tokenizer, check_prompt_words
from accvideo.world import DIRECTIONS, HELDOUT_COMBOS, SHAPES, parse_prompt


def test_word_level_tokenizer_names_unknown_and_cut_words():
    tok = build_tokenizer(8)
    assert check_prompt_words(tok, "A RED Circle moving left").ok  # normalised as the tokenizer does
    found = check_prompt_words(tok, "a dog running on the red beach dog")
    assert found.unknown == ("dog", "running", "on", "the", "beach")  # prompt order, once each
    assert found.dropped == ("dog",) and found.max_words == 7  # 8 tokens, one of them </s>
    assert "'dog', 'running'" in found.message("tiny-teacher") and "<unk>" in found.message()
    assert "first 7 words" in found.message()
    # punctuation is part of a word here: "left." is not "left"
    assert check_prompt_words(tok, "a red circle moving left.").unknown == ("left.",)


def test_subword_tokenizers_take_free_text():
    """A real model's tokenizer (not word-level) reads any text: no warning."""
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", model_max_length=512)
    assert check_prompt_words(tok, "a dog running on the beach").ok


def test_examples_cover_the_grammar_and_the_builder_makes_prompts():
    combos = [parse_prompt(p) for p in prompts.EXAMPLE_PROMPTS]
    assert {shape for _, shape, _ in combos} == set(SHAPES)
    assert {direction for _, _, direction in combos} == set(DIRECTIONS)
    assert not set(combos) & set(HELDOUT_COMBOS)  # examples are combinations the models trained on
    assert prompts.build_prompt("cyan", "triangle", "down") == "a cyan triangle moving down"
    with pytest.raises(ValueError, match=r"`shape` must be one of \['circle', 'square', 'triangle'\] but is 'dog'"):
        prompts.build_prompt("red", "dog", "left")


def test_prompt_warning_names_the_words_and_the_models():
    models_ = {"tiny-teacher": "tiny-teacher", "tiny-accvideo": "tiny-accvideo"}
    assert prompts.prompt_warning("a red circle moving left", models_) == ""
    assert prompts.prompt_warning("", models_) == ""
    text = prompts.prompt_warning("a purple dog moving left", models_)
    assert "'purple', 'dog'" in text and "tiny-teacher, tiny-accvideo" in text  # one tokenizer: one sentence


def test_generate_cli_warns_on_stderr(tmp_path, capsys):
    assert main(["generate", "--prompt", "a red dog moving sideways", "--steps", "1", "--json"]) == 0
    err = capsys.readouterr().err
    assert "warning: Unknown to model 'tiny-teacher': 'dog', 'sideways'" in err
    assert main(["generate", "--prompt", "a red circle moving left", "--steps", "1", "--json"]) == 0
    assert "warning" not in capsys.readouterr().err
