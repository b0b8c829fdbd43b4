"""Translator + CoT controller on tiny models: packing, decoding, training, end to end."""
import random

import pytest
import torch

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.controller import CoTParser, CoTPrompter, TaskPrompter
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.generation import ControlledDecoder, GenerationRequest, GenerationResult, Sampling, repetition_stop
from dragoman.nodes.translator import Translator, block_causal_mask
from dragoman.nodes.translator_data import build_sequence, collate_rows, epoch_sequences, pack, retimed

TINY_LM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 1024}
COUNTS = {"num_global": 16, "num_semantic": 24, "num_glm": 20, "num_emotion": 6}
TEXTS = {"zh": ["红色的花", "我们去公园"], "en": ["red flowers", "we go to the park"]}


def tiny_translator(seed=0):
    torch.manual_seed(seed)
    chars = sorted({c for texts in TEXTS.values() for t in texts for c in t})
    return Translator({"lm": TINY_LM, "tokens": COUNTS, "text_chars": chars})


def record(lang, k, pair_id, rng):
    return {"lang": lang, "text": TEXTS[lang][k], "pair_id": pair_id, "speech_s": 1.0 + 0.2 * k, "hq": True,
            "speaker_tokens": [rng.randrange(16) for _ in range(32)], "content_tokens": [rng.randrange(20) for _ in range(6 + k)],
            "emotion_tokens": [rng.randrange(6) for _ in range(2)], "semantic_tokens": [rng.randrange(24) for _ in range(10 + 3 * k)]}


@pytest.fixture
def cache():
    rng = random.Random(0)
    recs = [record(lang, k, f"p{k}", rng) for k in range(2) for lang in ("zh", "en")]
    return {"splits": {"train": recs}, "mean_rate": {"zh": 4.0, "en": 10.0}}


def test_packed_rows_do_not_attend_across_samples(cache):
    node = tiny_translator().eval()
    seqs = [build_sequence(t, *pair, node.tokenizer, cache["mean_rate"])
            for t, pair in zip(("tts", "quality"), [(cache["splits"]["train"][0], cache["splits"]["train"][1])] * 2)]
    batch = collate_rows(pack(seqs, 4096, node.tokenizer.pad_id), node.tokenizer.pad_id)
    assert batch["input_ids"].shape[0] == 1  # both sequences share one row
    packed = node(batch["input_ids"], batch["position_ids"], batch["segment_ids"])[0]
    start, rows = 0, node.writable_ids()
    assert packed.shape[-1] == len(rows) < len(node.tokenizer)  # only writable ids are scored
    for ids, *_ in sorted(seqs, key=lambda s: -len(s[0])):
        alone = node.lm(torch.tensor([ids])).logits[0][:, rows]
        torch.testing.assert_close(packed[start:start + len(ids)], alone, atol=1e-5, rtol=1e-4)
        start += len(ids)


def test_decoding_never_writes_prompt_only_tokens():
    node = tiny_translator(seed=2).eval()
    with torch.no_grad():  # make a prompt-only token the most likely one everywhere
        node.lm.lm_head.weight[node.tokenizer.convert_tokens_to_ids(U.global_token(0))] *= 50
    req = GenerationRequest(prompt=[U.START_SEMANTIC], max_new_tokens=20, sampling=Sampling(do_sample=False, repetition_penalty=1.0))
    ids = node.run(request=[req])["result"][0].ids
    assert set(ids) <= set(node.writable_ids().tolist())


def test_decoding_over_writable_rows_equals_hf_generate_with_the_rest_suppressed():
    """The decode loop computes only the writable rows of the output layer; greedy with a
    repetition penalty, it must pick what HF `generate` picks over the whole vocabulary with
    every other id suppressed."""
    node = tiny_translator(seed=3).eval()
    writable = set(node.writable_ids().tolist())
    with torch.no_grad():  # make prompt-only tokens likely, so suppressing them matters
        for n in range(COUNTS["num_global"]):
            node.lm.lm_head.weight[node.tokenizer.convert_tokens_to_ids(U.global_token(n))] *= 20
    prompt = [U.TASK_TTS, U.LANG_TOKENS["en"], U.START_CONTENT, U.END_CONTENT, U.START_SEMANTIC]
    req = GenerationRequest(prompt=prompt, max_new_tokens=24, sampling=Sampling(do_sample=False, repetition_penalty=1.3))
    got = node.run(request=[req])["result"][0].ids
    ids = torch.tensor([node.tokenizer.convert_tokens_to_ids(prompt)])
    with torch.no_grad():
        want = node.lm.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=24,
                                repetition_penalty=1.3, eos_token_id=list(node.tokenizer.eos_ids), pad_token_id=0,
                                suppress_tokens=[i for i in range(len(node.tokenizer)) if i not in writable])[0, ids.shape[1]:]
    assert got == want.tolist()[:len(got)] and len(got) >= 1


def test_block_causal_mask_shape_and_padding():
    mask = block_causal_mask(torch.tensor([[0, 0, 1, -1]]))[0, 0]
    assert mask.tolist() == [[True, False, False, False], [True, True, False, False],
                             [False, False, True, False], [False, False, False, True]]


def test_loss_only_on_targets(cache):
    node = tiny_translator()
    ids, n_prompt, _ = build_sequence("asr", cache["splits"]["train"][0], cache["splits"]["train"][0], node.tokenizer, cache["mean_rate"])
    row = pack([(ids, n_prompt)], 4096, 0)[0]
    assert row["labels"][:n_prompt] == [-100] * n_prompt and row["labels"][n_prompt:] == ids[n_prompt:]
    assert node.tokenizer.decode(ids[n_prompt:]) == "红色的花" + U.END_CONTENT


def test_greedy_decoding_equals_hf_generate():
    node = tiny_translator(seed=3).eval()
    decoder = ControlledDecoder(node.lm, node.tokenizer)
    prompt = [U.TASK_S2ST, U.MODE_TOKENS["direct"], "<|eng|>", U.START_GLOBAL, U.global_token(3), U.END_GLOBAL,
              U.glm_token(5), U.WRITE_GENERATE, U.MODE_TOKENS["direct"], "<|eng|>", "<|speed_9|>", U.START_SEMANTIC]
    greedy = Sampling(do_sample=False, repetition_penalty=1.0)
    out = decoder.run(GenerationRequest(prompt=prompt, max_new_tokens=12, sampling=greedy))
    ids = torch.tensor([node.tokenizer.convert_tokens_to_ids(prompt)])
    hf = node.lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                          eos_token_id=node.tokenizer.eos_ids, pad_token_id=0)[0, ids.shape[1]:].tolist()
    assert out.ids == hf[: len(out.ids)]


def test_forced_continuation_follows_its_trigger():
    node = tiny_translator(seed=1).eval()
    decoder = ControlledDecoder(node.lm, node.tokenizer)
    greedy = Sampling(do_sample=False, repetition_penalty=1.0)
    first = decoder.run(GenerationRequest(prompt=[U.START_CONTENT], max_new_tokens=1, sampling=greedy)).ids[0]
    trigger = node.tokenizer.itos[first]
    forced = ["<|eng|>", "<|speed_3|>", U.START_CONTENT]
    out = decoder.run(GenerationRequest(prompt=[U.START_CONTENT], max_new_tokens=5, sampling=greedy, force_after={trigger: forced}))
    assert out.ids[1:4] == node.tokenizer.convert_tokens_to_ids(forced)


def test_repetition_guard():
    assert repetition_stop([1, 2] * 60) and repetition_stop([7] * 120)
    assert not repetition_stop(list(range(200))) and not repetition_stop([7] * 119)


def test_vocabulary_extension_from_a_local_hf_checkpoint(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "<|im_end|>", "hello", "world", "[UNK]"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", unk_token="[UNK]", pad_token="<|endoftext|>")
    fast.save_pretrained(tmp_path)
    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(vocab_size=5, tie_word_embeddings=True, **TINY_LM)).save_pretrained(tmp_path)
    node = Translator({"init_from": str(tmp_path), "tokens": COUNTS})
    emb = node.lm.get_input_embeddings().weight
    new_id = node.tokenizer.convert_tokens_to_ids(U.semantic_token(23))
    assert new_id >= 5 and emb.shape[0] == len(node.tokenizer)
    torch.testing.assert_close(emb[new_id], emb[:5].mean(0))
    assert node.tokenizer.decode([new_id]) == U.semantic_token(23)  # non-special: decoding keeps it


def test_tiny_translator_learns_and_the_controller_speaks(cache, tmp_path):
    """Train a few hundred steps on one direct-mode example, then run prompter -> translator -> parser."""
    node = tiny_translator(seed=0)
    zh, en = cache["splits"]["train"][0], cache["splits"]["train"][1]
    seq = build_sequence("direct", zh, en, node.tokenizer, cache["mean_rate"])
    batch = collate_rows(pack([seq], 4096, 0), 0)
    opt = torch.optim.AdamW(node.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = node._loss(batch)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    prompter = CoTPrompter({"mode": "direct", "target_lang": "en", "auto_speed": False,
                            "sampling": {"do_sample": False, "repetition_penalty": 1.0}})
    request = prompter.run(speaker_tokens=[torch.tensor(zh["speaker_tokens"])], content_tokens=[torch.tensor(zh["content_tokens"])],
                           emotion_tokens=[torch.tensor(zh["emotion_tokens"])])["request"]
    result = node.run(request=request)["result"]
    parsed = CoTParser({"mode": "direct"}).run(result=result, speaker_tokens=[torch.tensor(zh["speaker_tokens"])])
    assert parsed["semantic_tokens"][0].tolist() == en["semantic_tokens"]
    assert result[0].stopped_by == "eos"


def test_quality_prompter_forces_the_translation_header():
    p = CoTPrompter({"mode": "quality", "target_lang": "en", "speed": 1.5, "auto_speed": True, "mean_rate": {"zh": 4.0, "en": 10.0}})
    req = p.run(speaker_tokens=[torch.zeros(32, dtype=torch.long)], content_tokens=[torch.ones(25, dtype=torch.long)],
                source_text=["一二三四五六七八"])["request"][0]
    # source: 8 characters in 2 s = 4 chars/s = the zh mean, so pace 1.0; user speed 1.5 -> speed_14
    assert req.prompt[-4:] == [U.TASK_ASR, "<|cmn|>", "<|speed_9|>", U.START_CONTENT]
    assert req.force_after == {U.END_CONTENT: [U.TASK_S2TT, "<|eng|>", "<|speed_14|>", U.START_CONTENT]}
    assert req.max_new_tokens == int(2.5 * 2.0 * 50) + 200


def test_parser_refuses_output_without_speech():
    res = GenerationResult(text="hello<|end_content|>", ids=[1, 2], stopped_by="budget", prompt_tokens=3)
    with pytest.raises(DragomanError, match="no speech tokens.*stopped by budget"):
        CoTParser({"mode": "performance"}).run(result=[res])


def test_task_prompter_builds_mt_and_tts_requests():
    mt = TaskPrompter({"task": "mt", "target_lang": "zh"}).run(text=["red flowers"])["request"][0]
    assert mt.prompt == [U.TASK_T2TT, "<|cmn|>", U.START_CONTENT] and mt.prompt_text == "red flowers"
    tts = TaskPrompter({"task": "tts", "target_lang": "en"}).run(text=["hi"], speaker_tokens=[torch.tensor([1, 2])])["request"][0]
    assert tts.prompt[:4] == [U.TASK_TTS, "<|eng|>", U.START_GLOBAL, U.global_token(1)]
    assert tts.prompt_suffix == [U.END_CONTENT, "<|speed_9|>", U.START_SEMANTIC]


def test_epoch_sequences_cover_phase_two_tasks(cache):
    node = tiny_translator()
    seqs = epoch_sequences(cache, "train", 2, node.tokenizer, seed=0)
    assert len(seqs) == 2 * 2 * 2  # 2 pairs x 2 directions x 2 tasks each
    heads = {node.tokenizer.itos[ids[1]] for ids, *_ in seqs}
    assert heads & set(U.MODE_TOKENS.values())


def punctuated_translator():
    chars = sorted({c for texts in TEXTS.values() for t in texts for c in t} | set("R.!"))
    return Translator({"lm": TINY_LM, "tokens": COUNTS, "text_chars": chars})


def test_mt_sequences_from_text_pairs_without_audio(cache):
    tok = punctuated_translator().tokenizer
    zh, en = {"lang": "zh", "text": "红色的花", "pair_id": "t0"}, {"lang": "en", "text": "Red flowers.", "pair_id": "t0"}
    ids, n, _ = build_sequence("mt", zh, en, tok, {})
    assert tok.decode(ids[n:]) == "Red flowers." + U.END_CONTENT and ids[-1] == tok.convert_tokens_to_ids([U.IM_END])[0]
    plain, n_plain, _ = build_sequence("mt", en, zh, tok, {}, normalized_source=True)
    assert tok.decode(plain[3:n_plain - 3]) == "red flowers"  # the recogniser's form: lower case, no punctuation
    pairs = [(zh, en), (en, zh)]
    seqs = epoch_sequences(cache, "train", 1, tok, seed=0, text_pairs=pairs, text_mt=2)
    assert len(seqs) == 2 * 2 * 2 + 2
    assert sum(tok.decode(ids[n:]).startswith(("Red flowers.", "红色的花")) for ids, n, _ in seqs) >= 2


def test_quality_sequences_write_the_transcript_in_the_recognisers_form(cache):
    node = punctuated_translator()
    zh, en = cache["splits"]["train"][0], dict(cache["splits"]["train"][1], text="Red flowers!")
    ids, n, _ = build_sequence("quality", en, zh, node.tokenizer, cache["mean_rate"])
    assert node.tokenizer.decode(ids[n:]).startswith("red flowers" + U.END_CONTENT)


def test_quality_prompter_can_take_the_recognisers_transcript():
    p = CoTPrompter({"mode": "quality", "target_lang": "en", "transcript": "recognizer", "mean_rate": {"zh": 4.0, "en": 10.0}})
    speaker, content = [torch.zeros(32, dtype=torch.long)] * 2, [torch.ones(25, dtype=torch.long)] * 2
    given, fallback = p.run(speaker_tokens=speaker, content_tokens=content, source_text=["一二三四五六七八", " "])["request"]
    assert given.prompt_text == "一二三四五六七八" and given.force_after == {}
    assert given.prompt_suffix == [U.END_CONTENT, U.TASK_S2TT, "<|eng|>", "<|speed_9|>", U.START_CONTENT]
    assert fallback.prompt_text == "" and U.END_CONTENT in fallback.force_after  # no transcript: the model writes it
    with pytest.raises(DragomanError, match="transcript 'asr'"):
        CoTPrompter({"transcript": "asr"})


def test_parser_takes_the_given_transcript_and_parses_the_rest_as_translation():
    out = "red flowers" + U.END_CONTENT + U.START_SEMANTIC + U.semantic_token(3) + U.semantic_token(5) + U.END_SEMANTIC
    own = "红色的花" + U.END_CONTENT + out
    results = [GenerationResult(text=out, ids=[1], stopped_by="eos", prompt_tokens=3),
               GenerationResult(text=own, ids=[1], stopped_by="eos", prompt_tokens=3)]
    parsed = CoTParser({"mode": "quality", "transcript": "recognizer"}).run(result=results, source_text=["红色的花 ", ""])
    assert parsed["transcript"] == ["红色的花", "红色的花"]
    assert parsed["translation"] == ["red flowers", "red flowers"]
    assert [t.tolist() for t in parsed["semantic_tokens"]] == [[3, 5], [3, 5]]


def test_source_language_node_tags_every_segment():
    from dragoman.nodes.controller import SourceLanguage

    audio = [torch.zeros(1600), torch.zeros(800)]
    assert SourceLanguage({"target_lang": "en"}).run(audio=audio)["language"] == ["zh", "zh"]
    assert SourceLanguage({"target_lang": "zh"}).run(audio=audio)["language"] == ["en", "en"]
    with pytest.raises(DragomanError, match="target_lang 'fr'"):
        SourceLanguage({"target_lang": "fr"}).run(audio=audio)


def test_epoch_sequences_can_train_one_task_alone(cache):
    node = tiny_translator()
    seqs = epoch_sequences(cache, "train", 2, node.tokenizer, seed=0, tasks_per_pair=1, tasks=["tts"])
    assert len(seqs) == 4 and {node.tokenizer.itos[ids[0]] for ids, *_ in seqs} == {U.TASK_TTS}
    with pytest.raises(DragomanError, match="unknown translator task"):
        epoch_sequences(cache, "train", 1, node.tokenizer, seed=0, tasks=["speak"])


def test_retimed_speech_resamples_tokens_bounds_and_duration():
    rec = {"semantic_tokens": list(range(10)), "unit_bounds": [0, 4, 8], "speech_s": 1.0, "text": "a b c"}
    assert retimed(rec, 1.0) == rec
    fast = retimed(rec, 2.0)
    assert fast["semantic_tokens"] == [1, 3, 5, 7, 9] and fast["unit_bounds"] == [0, 2, 4]  # each new frame takes the token at its centre
    assert fast["speech_s"] == pytest.approx(0.5)
    slow = retimed(rec, 0.5)
    assert slow["semantic_tokens"] == [t for t in range(10) for _ in (0, 1)] and slow["unit_bounds"] == [0, 8, 16]
    assert rec["semantic_tokens"] == list(range(10))  # the cache record is not touched


def test_tempo_share_changes_the_speed_token_with_the_speech_length(cache):
    node = tiny_translator()
    semantic = {U.semantic_token(i) for i in range(COUNTS["num_semantic"])}

    def spoken(share):
        """text -> (semantic tokens spoken, speed index) of every tts sequence of one epoch"""
        out = {}
        for seq in epoch_sequences(cache, "train", 1, node.tokenizer, seed=0, tasks=["tts"], tempo_share=share,
                                   tempo_range=(1.6, 1.7)):
            names = [node.tokenizer.itos[i] for i in seq.ids]
            text = node.tokenizer.decode(seq.ids[names.index(U.START_CONTENT) + 1:names.index(U.END_CONTENT)])
            speed = next(int(name[len("<|speed_"):-2]) for name in names if name.startswith("<|speed_"))
            out[text] = (sum(name in semantic for name in names), speed)
        return out

    plain, fast = spoken(0.0), spoken(1.0)
    assert plain.keys() == fast.keys() and plain
    for text, (n, speed) in plain.items():
        n_fast, speed_fast = fast[text]
        assert n / 1.7 - 1 <= n_fast <= n / 1.6 + 1
        assert speed_fast > speed
