"""Interleaved speech (nodes/speech_units.py): units, their CTC bounds, the interleaved training
sequences, and the decode loop that copies the text back in."""
import random

import pytest
import torch

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.generation import ControlledDecoder, GenerationRequest, Sampling
from dragoman.nodes.speech_units import SpokenText, interleave, split_units, unit_bounds
from dragoman.nodes.translator import Translator
from dragoman.nodes.translator_data import build_sequence, collate_rows, pack

TINY_LM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 1024}
COUNTS = {"num_global": 16, "num_semantic": 24, "num_glm": 20, "num_emotion": 6}


@pytest.mark.parametrize("text, units", [
    ("Hi, it's me.", ["Hi,", " it's", " me."]),
    ("你好，世界。", ["你", "好，", "世", "界。"]),
    ("“Go!” he said", ["“Go!”", " he", " said"]),
    ("我有3个apple", ["我", "有", "3", "个", "apple"]),
    ("  ", ["  "]),
    ("", []),
])
def test_units_cover_the_text(text, units):
    assert split_units(text) == units
    assert "".join(split_units(text)) == text


def spiky_log_probs(frames: int, spikes: list[tuple[int, int]], vocab: int = 6) -> torch.Tensor:
    """CTC posteriors: blank everywhere except token k at frame t for each (t, k)."""
    probs = torch.full((frames, vocab), 0.01)
    probs[:, 0] = 1.0
    for t, k in spikes:
        probs[t] = 0.01
        probs[t, k] = 1.0
    return (probs / probs.sum(-1, keepdim=True)).log()


def test_bounds_fall_midway_between_units():
    # unit 0 says tokens 1, 2 (frames 3, 5); unit 1 says 3 (frame 11); unit 2 says 4, 5 (frames 20, 22)
    lp = spiky_log_probs(30, [(3, 1), (5, 2), (11, 3), (20, 4), (22, 5)])
    bounds, ok = unit_bounds([[1, 2], [3], [4, 5]], lp)
    assert ok and bounds == [0, (6 + 11) // 2, (12 + 20) // 2]


def test_a_unit_without_sounds_starts_where_the_last_did_and_too_few_frames_fall_back():
    lp = spiky_log_probs(30, [(4, 1), (16, 2)])
    bounds, ok = unit_bounds([[1], [], [2]], lp)
    assert ok and bounds[1] == 0 and bounds[2] == (5 + 16) // 2
    bounds, ok = unit_bounds([[1, 2, 3], [4]], spiky_log_probs(3, []))
    assert not ok and bounds == [0, 2]  # proportional: 3 of 4 characters before unit 1


def test_interleaving_keeps_every_speech_token_in_order():
    units, speech = [[101, 102], [103], [104]], list(range(10))
    out = interleave(units, speech, [0, 4, 9])
    assert out == [101, 102, 0, 1, 2, 3, 103, 4, 5, 6, 7, 8, 104, 9]
    assert [t for t in out if t < 100] == speech
    with pytest.raises(ValueError):
        interleave(units, speech, [0, 4])


def test_spoken_text_copies_units_and_ends_once_all_are_said():
    spoken = SpokenText([[7, 8], [9]], semantic_ids={1, 2}, end_ids=[50, 51])
    assert spoken.start() == [7, 8] and spoken.needs_speech
    assert spoken.replace(1) == [1] and not spoken.needs_speech
    assert spoken.replace(50) == [9] and spoken.needs_speech  # an early end is the next unit: no word is skipped
    assert spoken.replace(2) == [2]
    assert spoken.done and spoken.replace(3) == [50, 51]


def tiny(seed=0, text_chars="red flowersabc"):
    torch.manual_seed(seed)
    return Translator({"lm": TINY_LM, "tokens": COUNTS, "text_chars": sorted(set(text_chars)), "interleave_text": True})


def tts_record(rng, text="red flowers", bounds=(0, 6)):
    return {"lang": "en", "text": text, "pair_id": "p0", "speech_s": 1.0, "hq": True,
            "speaker_tokens": [rng.randrange(16) for _ in range(32)], "content_tokens": [rng.randrange(20) for _ in range(5)],
            "emotion_tokens": [rng.randrange(6) for _ in range(2)], "semantic_tokens": [rng.randrange(24) for _ in range(14)],
            "unit_bounds": list(bounds)}


def test_interleaved_sequences_hold_the_text_and_all_of_the_speech():
    node, rec = tiny(), tts_record(random.Random(0))
    tok = node.tokenizer
    for task in ("tts", "performance", "quality"):
        seq = build_sequence(task, rec, rec, tok, {"en": 10.0}, interleave="chars")
        speech = seq.ids[seq.ids.index(tok.convert_tokens_to_ids(U.START_SEMANTIC), seq.n_prompt - 1) + 1:]
        sem = node.semantic_ids()
        assert [tok.itos[t] for t in speech if t in sem] == [U.semantic_token(t) for t in rec["semantic_tokens"]]
        assert tok.decode([t for t in speech[:-2] if t not in sem]) == rec["text"]
        assert speech[:3] == tok.encode_text("red") and speech[9:17] == tok.encode_text(" flowers")
        assert seq.align is None
    direct = build_sequence("direct", rec, rec, tok, {"en": 10.0}, interleave="chars")
    assert not set(tok.encode_text("red")) & set(direct.ids[direct.n_prompt:])  # direct mode has no text
    with pytest.raises(DragomanError, match="stage=align"):
        build_sequence("tts", {**rec, "unit_bounds": None}, rec, tok, {"en": 10.0}, interleave="chars")


def test_decoding_writes_the_given_text_between_the_speech_of_an_untrained_model():
    node = tiny(seed=3).eval()
    decoder = ControlledDecoder(node.lm, node.tokenizer, semantic_ids=node.semantic_ids())
    text = "abc red flowers"
    request = GenerationRequest(prompt=[U.TASK_TTS, "<|eng|>", U.START_CONTENT], prompt_text=text,
                                prompt_suffix=[U.END_CONTENT, "<|speed_9|>", U.START_SEMANTIC], max_new_tokens=300,
                                sampling=Sampling(seed=1, repetition_penalty=1.0))
    out = decoder.run(request)
    sem = node.semantic_ids()
    assert node.tokenizer.decode([t for t in out.ids[:-2] if t not in sem]) == text
    units = [node.tokenizer.encode_text(u) for u in split_units(text)]
    at = 0
    for unit in units:  # every unit, the last one too, is followed by speech
        at = out.ids.index(unit[-1], at) + 1
        assert out.ids[at] in sem
    assert out.stopped_by == "eos" and out.ids[-2:] == node.tokenizer.convert_tokens_to_ids([U.END_SEMANTIC, U.IM_END])


def test_a_tiny_interleaving_translator_learns_to_speak_its_text():
    node, rec = tiny(seed=0), tts_record(random.Random(1))
    batch = collate_rows(pack([build_sequence("tts", rec, rec, node.tokenizer, {"en": 10.0}, interleave="chars")], 4096, 0), 0)
    opt = torch.optim.AdamW(node.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = node._loss(batch)[0]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    node.eval()
    prompt = [U.TASK_TTS, "<|eng|>", U.START_GLOBAL, *[U.global_token(t) for t in rec["speaker_tokens"]], U.END_GLOBAL,
              *[U.emotion_token(t) for t in rec["emotion_tokens"]], U.WRITE_GENERATE, U.START_CONTENT]
    request = GenerationRequest(prompt=prompt, prompt_text=rec["text"], prompt_suffix=[U.END_CONTENT, "<|speed_9|>", U.START_SEMANTIC],
                                max_new_tokens=100, sampling=Sampling(do_sample=False, repetition_penalty=1.0))
    parsed = U.parse_output(node.run(request=[request])["result"][0].text, "performance")
    assert parsed.semantic == rec["semantic_tokens"]


def test_the_parser_reads_text_only_before_the_speech():
    out = f"the cat{U.END_CONTENT}{U.START_SEMANTIC}the{U.semantic_token(3)} cat{U.semantic_token(4)}{U.END_SEMANTIC}"
    parsed = U.parse_output(out, "performance")
    assert parsed.translation == "the cat" and parsed.semantic == [3, 4]


def test_phone_units_come_from_the_cache_in_training_and_from_espeak_when_decoding():
    from dragoman.nodes.speech_units import phone_token, units_phones

    red_phones, flowers_phones = units_phones(["red", " flowers"])
    phones = sorted({*red_phones, *flowers_phones})
    torch.manual_seed(0)
    node = Translator({"lm": TINY_LM, "tokens": COUNTS, "text_chars": sorted(set("red flowers")), "interleave_text": True,
                       "interleave_units": "phones", "phones": phones}).eval()
    tok = node.tokenizer
    assert set(tok.convert_tokens_to_ids([phone_token(p) for p in phones])) <= set(node.writable_ids().tolist())
    rec = {**tts_record(random.Random(0)), "unit_phones": [red_phones, flowers_phones]}
    seq = build_sequence("tts", rec, rec, tok, {"en": 10.0}, interleave="phones")
    speech = seq.ids[seq.n_prompt:]
    red, flowers = node.units_ids(["red", " flowers"])
    assert speech[:len(rec["unit_phones"][0])] == red and red
    sem = node.semantic_ids()
    assert [t for t in speech[:-2] if t not in sem] == red + flowers
    request = GenerationRequest(prompt=[U.TASK_TTS, "<|eng|>", U.START_CONTENT], prompt_text="red flowers",
                                prompt_suffix=[U.END_CONTENT, "<|speed_9|>", U.START_SEMANTIC], max_new_tokens=200,
                                sampling=Sampling(seed=2, repetition_penalty=1.0))
    out = node.run(request=[request])["result"][0]
    assert [t for t in out.ids[:-2] if t not in sem] == red + flowers
    with pytest.raises(DragomanError, match="stage=align"):
        build_sequence("tts", {**rec, "unit_phones": None}, rec, tok, {"en": 10.0}, interleave="phones")


def test_one_espeak_call_reads_every_unit_as_it_reads_it_alone():
    from dragoman.nodes.phonemes import _espeak, _units
    from dragoman.nodes.speech_units import unit_lang, units_phones

    units = split_units("Do not make this beautiful cake. 不要做这块漂亮的蛋糕。") + ["，", " it's"]
    alone = [list(_units(_espeak([u], unit_lang(u)))) for u in units]  # one espeak-ng process each
    assert units_phones(units) == alone
    assert units_phones(units)[-2] == []  # punctuation alone says nothing
