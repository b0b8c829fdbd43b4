"""Prompts, speed tokens and output parsing against DESIGN §5 / UNISS_RELEASE items 5 and 16."""
import pytest

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.errors import DragomanError

P = U.PromptInputs(speaker_tokens=[5, 4095], content_tokens=[0, 16383, 7], source_lang="zh", target_lang="en")
HEAD = "<|task_s2s_translation|>{mode}<|eng|><|start_global_token|><|bicodec_global_5|><|bicodec_global_4095|><|end_global_token|><|glm_semantic_0|><|glm_semantic_16383|><|glm_semantic_7|><|write_generate|>"


@pytest.mark.parametrize("mode, mode_token, tail", [
    ("quality", "<|slow_mode|>", "<|task_asr|><|cmn|><|speed_9|><|start_content|>"),
    ("performance", "<|balance_mode|>", "<|task_s2t_translation|><|eng|><|speed_9|><|start_content|>"),
    ("direct", "<|fast_mode|>", "<|fast_mode|><|eng|><|speed_9|><|start_semantic_token|>"),
])
def test_prompt_matches_design_token_for_token(mode, mode_token, tail):
    assert "".join(U.build_prompt(mode, P)) == HEAD.format(mode=mode_token) + tail


def test_emotion_tokens_follow_the_speaker_tokens():
    p = U.PromptInputs([1], [2], "en", "zh", emotion_tokens=[3, 0])
    names = U.build_prompt("performance", p)
    i = names.index(U.END_GLOBAL)
    assert names[i + 1 : i + 4] == ["<|emotion_3|>", "<|emotion_0|>", "<|glm_semantic_2|>"]
    assert names[-4:] == [U.TASK_S2TT, "<|cmn|>", "<|speed_9|>", U.START_CONTENT]


@pytest.mark.parametrize("speed, n", [(1.0, 9), (0.1, 0), (0.3, 2), (0.7, 6), (1.5, 14), (3.5, 34)])
def test_speed_token_mapping(speed, n):
    assert U.speed_token(speed) == f"<|speed_{n}|>"


@pytest.mark.parametrize("bad", [0.05, 3.6, -1])
def test_speed_out_of_range(bad):
    with pytest.raises(DragomanError, match="speed"):
        U.speed_token(bad)


def test_parse_quality_with_two_end_contents():
    text = ("今天 很好<|end_content|><|task_s2t_translation|><|eng|><|speed_9|><|start_content|>"
            " today is good <|end_content|><|start_semantic_token|><|bicodec_semantic_3|><|bicodec_semantic_8191|>"
            "<|end_semantic_token|>")
    out = U.parse_output(text, "quality")
    assert out == U.ParsedOutput("今天 很好", "today is good", [3, 8191])


def test_parse_quality_with_one_end_content_puts_everything_in_translation():
    out = U.parse_output("hello<|end_content|><|bicodec_semantic_1|> there", "quality")
    assert out.transcript == "" and out.translation == "hello there" and out.semantic == [1]


def test_parse_quality_with_no_end_content():
    out = U.parse_output("only words<tool_call>", "quality")
    assert out.transcript == "" and out.translation == "only words<tool_call>" and out.semantic == []


def test_parse_collects_semantic_ids_anywhere():
    out = U.parse_output("<|bicodec_semantic_4|>hi<|end_content|><|start_semantic_token|><|bicodec_semantic_5|>", "performance")
    assert out.translation == "hi" and out.semantic == [4, 5]


def test_parse_direct_mode_reads_only_speech():
    assert U.parse_output("<|bicodec_semantic_2|><|bicodec_semantic_2|><|end_semantic_token|>", "direct").semantic == [2, 2]


def test_bad_mode_and_language():
    with pytest.raises(DragomanError, match="mode"):
        U.build_prompt("fast", P)
    with pytest.raises(DragomanError, match="language"):
        U.build_prompt("quality", U.PromptInputs([1], [1], "fr", "en"))
