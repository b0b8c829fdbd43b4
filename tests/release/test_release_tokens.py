"""The controller's prompts in the released vocabulary: every id where the release puts it."""
from __future__ import annotations

import pytest

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.text_tokenizer import HFTokenizer

from .tiny_release import hf_tokenizer, release_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return HFTokenizer(hf_tokenizer(release_tokenizer()))


@pytest.mark.parametrize("mode", ["quality", "performance", "direct"])
def test_release_prompt_ids_follow_the_released_layout(tokenizer, mode):
    speaker = [0, 1, 4095, 17] + list(range(100, 128))
    content = [0, 16383, 42, 7]
    prompt = U.build_prompt(mode, U.PromptInputs(speaker, content, "zh", "en"))
    ids = tokenizer.convert_tokens_to_ids(prompt)
    start = prompt.index(U.START_GLOBAL)
    assert ids[start + 1: start + 33] == [151665 + n for n in speaker]
    glm_at = start + 34
    assert ids[glm_at: glm_at + 4] == [163953 + n for n in content]
    assert ids[prompt.index(U.speed_token(1.0))] == 180337 + 9
    for name, i in zip(prompt, ids):
        if name in U.CONTROL_TOKENS:
            assert 180372 <= i <= 180406, name
    assert len(ids) == len(prompt) and all(i < U.RELEASE_VOCAB_SIZE for i in ids)


def test_release_semantic_ids_and_decoding_keep_speech_tokens(tokenizer):
    ids = tokenizer.convert_tokens_to_ids([U.semantic_token(0), U.semantic_token(8191), U.IM_END])
    assert ids == [155761, 155761 + 8191, 151645]
    text = tokenizer.decode(tokenizer.convert_tokens_to_ids(
        ["hello", U.END_CONTENT, U.START_SEMANTIC, U.semantic_token(5), U.semantic_token(9), U.END_SEMANTIC, U.IM_END,
         "<|endoftext|>", "<|fim_prefix|>"]))
    assert "<|im_end|>" not in text and "<|endoftext|>" not in text   # special: dropped
    assert "<|fim_prefix|>" in text                                     # one of the 8 non-special Qwen tokens
    parsed = U.parse_output(text, "performance")
    assert parsed.semantic == [5, 9] and parsed.translation == "hello"
