"""Text-BLEU follows the UniSS definition: hand-normalised zh/en strings, scores equal to
sacrebleu's own on those strings, 100 for outputs equal to the references, low when shuffled."""
import pytest
import sacrebleu

from dragoman.nodes.eval.text_bleu import corpus_bleu, normalize, normalize_en, normalize_zh

EN_CASES = [
    ("Hello, World! It's fine.", "hello world it's fine"),
    ("It’s 5 o’clock—time to go...", "it's 5 o'clock time to go"),  # typographic apostrophes kept
    ('"Quoted" (brackets) [and] {braces}; colon: semi?', "quoted brackets and braces colon semi"),
    ("A well-known U.S. city", "a well known u s city"),
    ("ＦＵＬＬ－ｗｉｄｔｈ　ＴＥＸＴ１２", "full width text12"),
    ("Costs $5 + tax, ~50% off", "costs $5 + tax ~50 off"),  # $ + ~ are symbols, % is punctuation
    ("   spaces   and\ttabs  ", "spaces and tabs"),
]
ZH_CASES = [
    ("這是「測試」，對吧？", "这是 测试 对吧"),  # traditional -> simplified, CJK punctuation
    ("我們說：“好的！”……", "我们说 好的"),
    ("今天天气很好。", "今天天气很好"),
    ("《紅樓夢》是一本書.", "红楼梦 是一本书"),
    ("他用iPhone（蘋果）打電話!", "他用iPhone 苹果 打电话"),
    ("他說‘是’", "他说 是"),  # quotation marks in Chinese are not apostrophes
]


@pytest.mark.parametrize("text,expected", EN_CASES)
def test_english_normalisation(text, expected):
    assert normalize_en(text) == expected


@pytest.mark.parametrize("text,expected", ZH_CASES)
def test_chinese_normalisation(text, expected):
    assert normalize_zh(text) == expected


def test_corpus_bleu_equals_sacrebleu_on_normalised_strings():
    hyps_en = ["the cat sat on the mat!", "It's raining, isn't it?", "A well-known U.S. city."]
    refs_en = ["The cat is on the mat.", "It’s raining isn’t it", "a famous city in the U.S."]
    hand_h = ["the cat sat on the mat", "it's raining isn't it", "a well known u s city"]
    hand_r = ["the cat is on the mat", "it's raining isn't it", "a famous city in the u s"]
    expected = sacrebleu.corpus_bleu(hand_h, [hand_r], tokenize="13a").score
    result = corpus_bleu(hyps_en, refs_en, "en")
    assert result.score == pytest.approx(expected, abs=1e-9)
    assert 0 < result.score < 100
    assert "tok:13a" in result.signature

    hyps_zh = ["這是一個測試。", "我們今天去公園！", "他說：好的。"]
    refs_zh = ["这是一次测试", "今天我们去公园", "他说好"]
    hand_h = ["这是一个测试", "我们今天去公园", "他说 好的"]
    hand_r = ["这是一次测试", "今天我们去公园", "他说好"]
    expected = sacrebleu.corpus_bleu(hand_h, [hand_r], tokenize="zh").score
    result = corpus_bleu(hyps_zh, refs_zh, "zh")
    assert result.score == pytest.approx(expected, abs=1e-9)
    assert 0 < result.score < 100
    assert "tok:zh" in result.signature


def test_normalisation_differences_only_do_not_lower_bleu():
    refs = ["Where is the train station?", "I don't know, sorry.", "See you tomorrow!"]
    hyps = ["where is the train station", "I DON'T KNOW SORRY", "see you tomorrow."]
    assert corpus_bleu(hyps, refs, "en").score == pytest.approx(100.0)
    refs = ["火車站在哪裡？", "我不知道，對不起。"]
    hyps = ["火车站在哪里", "我不知道 对不起"]
    assert corpus_bleu(hyps, refs, "zh").score == pytest.approx(100.0)


def test_identical_scores_100_and_shuffled_scores_low():
    en = [
        "the weather is very nice today", "where is the nearest train station",
        "we planted seven apple trees last spring", "please call me when you arrive at the hotel",
        "my brother works in a hospital downtown", "the children are playing football in the park",
        "could you speak a little more slowly", "this restaurant serves excellent noodles",
    ]
    zh = ["今天天气很好", "最近的火车站在哪里", "去年春天我们种了七棵苹果树",
          "到了酒店请给我打电话", "我哥哥在市中心的一家医院工作", "孩子们在公园里踢足球",
          "你能说得慢一点吗", "这家餐馆的面条很好吃"]
    for refs, lang in ((en, "en"), (zh, "zh")):
        assert corpus_bleu(refs, refs, lang).score == pytest.approx(100.0)
        shuffled = refs[3:] + refs[:3]  # every output paired with another sentence's reference
        assert corpus_bleu(shuffled, refs, lang).score < 15.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        normalize("x", "fr")
    with pytest.raises(ValueError):
        corpus_bleu(["a"], ["a", "b"], "en")
    with pytest.raises(ValueError):
        corpus_bleu([], [], "en")
