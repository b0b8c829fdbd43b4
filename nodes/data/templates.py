"""The sentence templates of the grammar (see `grammar.py` for the shared machinery).

Each template draws its choices from an rng and returns (English, Chinese, combos) or None when
the draw is not natural (e.g. asking "do I ...?"). TEMPLATES maps a name to (weight, function);
the weights balance sentence types so that no single frame dominates a small corpus.
"""
from __future__ import annotations

import random

from dragoman.nodes.data import lexicon as L
from dragoman.nodes.data.grammar import (FREQUENCY, FUTURE_TIMES, NO_TIME, NOW, PAST_TIMES, VERB_PLACES, be,
                                         combo, en_clause, en_sentence, np_bare, np_count, np_demonstrative,
                                         np_generic, zh_predicate, zh_sentence)

POLARITIES = ["affirm", "affirm", "negate", "ask"]
OBJECT_KINDS = ("fruit food baked animal reading thing dish container clothing furniture vehicle toy plant device "
                "picture").split()


def _pick(rng: random.Random, table: dict, exclude=()):
    return rng.choice([v for k, v in table.items() if k not in exclude])


def _noun(rng, kinds=OBJECT_KINDS, exclude=()) -> L.Noun:
    return rng.choice([n for n in L.NOUNS.values() if n.kind in kinds and n.key not in exclude])


def _adj(rng, noun: L.Noun, p: float = 0.6) -> L.Adjective | None:
    if not noun.adjectives or rng.random() > p:
        return None
    return L.ADJECTIVES[rng.choice(noun.adjectives)]


def _number(rng) -> int:
    r = rng.random()
    return 1 if r < 0.3 else rng.randint(2, 5) if r < 0.75 else rng.randint(6, 12)


def _subject(rng, polarity: str) -> L.Person:
    # "Do I ...?" questions are unnatural outside special contexts.
    return _pick(rng, L.PEOPLE, exclude=("i",) if polarity == "ask" else ())


def _time(rng, tense: str, required: bool = False) -> tuple[str, str]:
    options = {"present": FREQUENCY, "past": PAST_TIMES, "future": FUTURE_TIMES, "progressive": NOW}[tense]
    if tense == "present" or required or rng.random() < 0.7:
        return rng.choice(options)
    return NO_TIME


def _adj_combo(noun, adj) -> list[str]:
    return [combo("adj_noun", adj.key, noun.key)] if adj else []


def transitive(rng):
    """My mother bought three red apples yesterday. / 我妈妈昨天买了三个红色的苹果。"""
    verb = _pick(rng, L.VERBS)
    tense, polarity = rng.choice(verb.tenses), rng.choice(POLARITIES + ["what"])
    stative = verb.tenses == ("present",)
    subj = _subject(rng, polarity)
    noun = _noun(rng, verb.kinds)
    adj = _adj(rng, noun)
    t_en, t_zh = NO_TIME if stative else _time(rng, tense)
    forms = (verb.base, verb.third, verb.past, verb.ing)
    if polarity == "what":
        if tense == "present" and stative:
            return None
        en = ["what"] + en_clause(subj, tense, "ask", forms) + [t_en]
        zh = [subj.zh, t_zh, zh_predicate(tense, "ask", verb.zh), "什么"]
        return en_sentence(en, True), zh_sentence(zh, True), []
    if polarity == "negate":
        obj_en, obj_zh = np_generic(noun, adj) if tense == "present" else np_bare(noun, adj)
        t_en, t_zh = (NO_TIME if tense == "present" else (t_en, t_zh))
    else:
        obj_en, obj_zh = np_count(noun, _number(rng), adj)
    en = en_clause(subj, tense, polarity, forms) + [obj_en, t_en]
    zh = [subj.zh, t_zh, zh_predicate(tense, polarity, verb.zh, obj_zh)] + (["吗"] if polarity == "ask" else [])
    combos = _adj_combo(noun, adj) + [combo("verb_noun", verb.key, noun.key)]
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), combos


def how_many(rng):
    """How many apples did she buy yesterday? / 她昨天买了几个苹果？"""
    verb = _pick(rng, L.VERBS)
    tense = rng.choice([t for t in verb.tenses if t != "progressive"])
    if verb.tenses == ("present",):
        return None
    subj = _subject(rng, "ask")
    noun = _noun(rng, verb.kinds)
    t_en, t_zh = _time(rng, tense)
    en = ["how many", noun.en_plural] + en_clause(subj, tense, "ask", (verb.base, verb.third, verb.past, verb.ing))
    zh = [subj.zh, t_zh, zh_predicate(tense, "ask", verb.zh, "几" + noun.measure + noun.zh)]
    return en_sentence(en + [t_en], True), zh_sentence(zh, True), [combo("verb_noun", verb.key, noun.key)]


def have(rng):
    """She has two black cats. / 她有两只黑色的猫。"""
    polarity = rng.choice(POLARITIES + ["how_many"])
    subj = _subject(rng, "ask" if polarity in ("ask", "how_many") else polarity)
    noun = _noun(rng)
    adj = _adj(rng, noun)
    has = "has" if subj.person == 3 and not subj.plural else "have"
    do = "does" if has == "has" else "do"
    if polarity == "how_many":
        en, zh = ["how many", noun.en_plural, do, subj.en, "have"], [subj.zh, "有几", noun.measure, noun.zh]
        return en_sentence(en, True), zh_sentence(zh, True), []
    if polarity == "negate":
        obj_en, obj_zh = np_bare(noun, adj)
        en, zh = [subj.en, do, "not have", obj_en], [subj.zh, "没有", obj_zh]
    else:
        obj_en, obj_zh = np_count(noun, _number(rng), adj)
        en = [do, subj.en, "have", obj_en] if polarity == "ask" else [subj.en, has, obj_en]
        zh = [subj.zh, "有", obj_zh] + (["吗"] if polarity == "ask" else [])
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), _adj_combo(noun, adj)


def there_is(rng):
    """There are three cats in the garden. / 花园里有三只猫。"""
    polarity = rng.choice(POLARITIES + ["how_many"])
    place = _pick(rng, L.PLACES)
    noun = _noun(rng, [k for k in OBJECT_KINDS if k != "writing"] + ["opening"])
    adj = _adj(rng, noun)
    if polarity == "how_many":
        en = ["how many", noun.en_plural, "are there", place.en_at]
        return en_sentence(en, True), zh_sentence([place.zh_in, "有几", noun.measure, noun.zh], True), []
    if polarity == "negate":
        obj_en, obj_zh = np_generic(noun, adj)
        en, zh = ["there are no", obj_en, place.en_at], [place.zh_in, "没有", obj_zh]
    else:
        n = _number(rng)
        obj_en, obj_zh = np_count(noun, n, adj)
        verb = ("is" if n == 1 else "are")
        en = [verb, "there", obj_en, place.en_at] if polarity == "ask" else ["there", verb, obj_en, place.en_at]
        zh = [place.zh_in, "有", obj_zh] + (["吗"] if polarity == "ask" else [])
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), _adj_combo(noun, adj)


def go(rng):
    """They went to the park yesterday. / 他们昨天去公园了。"""
    tense = rng.choice(["present", "past", "future"])
    polarity = rng.choice(POLARITIES + ["where"])
    subj = _subject(rng, "ask" if polarity == "where" else polarity)
    place = _pick(rng, L.PLACES)
    t_en, t_zh = _time(rng, tense)
    if polarity == "negate" and tense == "present":
        t_en, t_zh = NO_TIME
    forms = ("go", "goes", "went", "going")
    go_zh = "回" if place.key == "home" else "去"
    if polarity == "where":
        en = ["where"] + en_clause(subj, tense, "ask", forms) + [t_en]
        verb = {"present": "去哪里", "past": "去哪里了", "future": "会去哪里"}[tense]
        return en_sentence(en, True), zh_sentence([subj.zh, t_zh, verb], True), []
    en = en_clause(subj, tense, polarity, forms) + [place.en_to, t_en]
    if tense == "past" and polarity != "negate":
        verb = go_zh + place.zh + "了"
    else:
        verb = zh_predicate(tense, polarity, go_zh, place.zh)
    zh = [subj.zh, t_zh, verb] + (["吗"] if polarity == "ask" else [])
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), []


def be_at(rng):
    """My father was at the hospital yesterday. / 我爸爸昨天在医院。"""
    past = rng.random() < 0.4
    polarity = rng.choice(POLARITIES + ["where"])
    subj = _subject(rng, "ask" if polarity == "where" else polarity)
    place = _pick(rng, L.PLACES)
    t_en, t_zh = rng.choice(PAST_TIMES) if past else rng.choice([NO_TIME] + NOW)
    verb = be(subj, past)
    if polarity == "where":
        return en_sentence(["where", verb, subj.en, t_en], True), zh_sentence([subj.zh, t_zh, "在哪里"], True), []
    if polarity == "ask":
        en = [verb, subj.en, place.en_at, t_en]
    else:
        en = [subj.en, verb + (" not" if polarity == "negate" else ""), place.en_at, t_en]
    zh = [subj.zh, t_zh, "不在" if polarity == "negate" else "在", place.zh] + (["吗"] if polarity == "ask" else [])
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), []


def act_at_place(rng):
    """She read a book in the library yesterday. / 她昨天在图书馆里看了一本书。"""
    verb = L.VERBS[rng.choice(sorted(VERB_PLACES))]
    tense = rng.choice(verb.tenses)
    polarity = rng.choice(["affirm", "affirm", "ask"])
    subj = _subject(rng, polarity)
    place = L.PLACES[rng.choice(VERB_PLACES[verb.key].split())]
    noun = _noun(rng, verb.kinds)
    adj = _adj(rng, noun, 0.4)
    obj_en, obj_zh = np_count(noun, _number(rng), adj)
    t_en, t_zh = _time(rng, tense)
    en = en_clause(subj, tense, polarity, (verb.base, verb.third, verb.past, verb.ing)) + [obj_en, place.en_at, t_en]
    zh = [subj.zh, t_zh, zh_predicate(tense, polarity, verb.zh, obj_zh, place.zh_in)]
    zh += ["吗"] if polarity == "ask" else []
    combos = _adj_combo(noun, adj) + [combo("verb_noun", verb.key, noun.key)]
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), combos


def describe(rng):
    """This car is not red. / 这辆车不是红色的。"""
    noun = _noun(rng, [k for k in OBJECT_KINDS if k != "writing"])
    if not noun.adjectives:
        return None
    adj = L.ADJECTIVES[rng.choice(noun.adjectives)]
    plural = rng.random() < 0.35
    subj_en, subj_zh = np_demonstrative(noun, rng.random() < 0.6, 0 if plural else 1, None)
    verb = "are" if plural else "is"
    polarity = rng.choice(POLARITIES + ["what_colour"])
    if polarity == "what_colour":
        if not any(L.ADJECTIVES[a].colour for a in noun.adjectives):
            return None
        return en_sentence(["what color", verb, subj_en], True), zh_sentence([subj_zh, "是什么颜色的"], True), []
    if polarity == "ask":
        en = [verb, subj_en, adj.en]
    else:
        en = [subj_en, verb + (" not" if polarity == "negate" else ""), adj.en]
    zh = [subj_zh, adj.zh_predicate(polarity)] + (["吗"] if polarity == "ask" else [])
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), _adj_combo(noun, adj)


# Plausible clock hours per routine.
ROUTINE_HOURS = {"get_up": (5, 9), "go_to_bed": (9, 12), "breakfast": (6, 9), "lunch": (11, 12),
                 "dinner": (5, 8), "work": (7, 9)}


def routine(rng):
    """My father gets up at six o'clock every day. / 我爸爸每天六点起床。"""
    key = rng.choice(sorted(L.ROUTINES))
    base, third, past, zh_verb = L.ROUTINES[key]
    tense = rng.choice(["present", "past", "future"])
    asking = rng.random() < 0.3
    subj = _subject(rng, "ask" if asking else "affirm")
    # One anchor per tense: "every evening" or "last week" would not fit a daily routine.
    t_en, t_zh = {"present": FREQUENCY[0], "past": PAST_TIMES[0], "future": FUTURE_TIMES[0]}[tense]
    forms = (base, third, past, base)
    if asking:
        en = ["what time"] + en_clause(subj, tense, "ask", forms) + [t_en]
        return en_sentence(en, True), zh_sentence([subj.zh, t_zh, "几点", zh_verb], True), []
    hour = rng.randint(*ROUTINE_HOURS[key])
    en = en_clause(subj, tense, "affirm", forms) + ["at", L.NUMBERS_EN[hour], "o'clock", t_en]
    return en_sentence(en, False), zh_sentence([subj.zh, t_zh, L.zh_count(hour), "点", zh_verb], False), []


GIFT_KINDS = "fruit food baked reading thing dish container clothing toy plant ticket device picture".split()


def give(rng):
    """She gave me two books yesterday. / 她昨天给了我两本书。"""
    mode = rng.choice(["past", "past", "future", "ask", "please"])
    subj = _subject(rng, "ask" if mode == "ask" else "affirm")
    # The giver is never among the receivers ("we gave me" is nonsense).
    overlap = {"i": ("i", "we"), "we": ("i", "we")}.get(subj.key, (subj.key,))
    recipient = _pick(rng, L.PEOPLE, exclude=("you",) if mode == "please" else overlap)
    noun = _noun(rng, GIFT_KINDS)
    adj = _adj(rng, noun, 0.5)
    obj_en, obj_zh = np_count(noun, _number(rng), adj)
    if mode == "please":
        return (en_sentence(["please give", recipient.en_object, obj_en], False),
                zh_sentence(["请给", recipient.zh, obj_zh], False), _adj_combo(noun, adj))
    tense = "future" if mode == "future" else "past"
    t_en, t_zh = _time(rng, tense)
    en = en_clause(subj, tense, "ask" if mode == "ask" else "affirm", ("give", "gives", "gave", "giving"))
    en += [recipient.en_object, obj_en, t_en]
    zh = [subj.zh, t_zh, "会给" if tense == "future" else "给了", recipient.zh, obj_zh]
    zh += ["吗"] if mode == "ask" else []
    return en_sentence(en, mode == "ask"), zh_sentence(zh, mode == "ask"), _adj_combo(noun, adj)


def age(rng):
    """My little sister is eight years old. / 我妹妹八岁了。"""
    subj = rng.choice([p for p in L.PEOPLE.values() if p.child])
    if rng.random() < 0.3:
        return en_sentence(["how old", be(subj), subj.en], True), zh_sentence([subj.zh, "几岁了"], True), []
    n = rng.randint(3, 12)
    return (en_sentence([subj.en, be(subj), L.NUMBERS_EN[n], "years old"], False),
            zh_sentence([subj.zh, L.zh_count(n), "岁了"], False), [])


def put(rng):
    """Please put the red book on the table. / 请把红色的书放在桌子上。"""
    surface = rng.choice(sorted(L.SURFACES))
    where_en, where_zh, surface_noun = L.SURFACES[surface]
    noun = _noun(rng, "fruit food baked reading thing dish toy plant ticket device picture".split(),
                 exclude=(surface_noun,))
    adj = _adj(rng, noun, 0.5)
    mode = rng.choice(["past", "please", "do_not"])
    if mode == "past":
        subj = _subject(rng, "affirm")
        t_en, t_zh = _time(rng, "past")
        obj_en, obj_zh = np_count(noun, _number(rng), adj)
        en = [subj.en, "put", obj_en, where_en, t_en]
        zh = [subj.zh, t_zh, "把", obj_zh, "放在", where_zh, "了"]
    else:
        near = rng.random() < 0.5
        obj_en, obj_zh = np_demonstrative(noun, near, 1 if rng.random() < 0.7 else 0, adj)
        en = ["please put" if mode == "please" else "do not put", obj_en, where_en]
        zh = ["请把" if mode == "please" else "不要把", obj_zh, "放在", where_zh]
    return en_sentence(en, False), zh_sentence(zh, False), _adj_combo(noun, adj)


def imperative(rng):
    """Please open this box. / 请打开这个盒子。  Do not buy those red apples. / 不要买那些红色的苹果。"""
    verb = rng.choice([v for v in L.VERBS.values() if v.imperative])
    noun = _noun(rng, verb.kinds)
    adj = _adj(rng, noun, 0.5)
    negative = rng.random() < 0.35
    r = rng.random()
    if r < 0.4 and not negative:
        obj_en, obj_zh = np_count(noun, _number(rng), adj)
    else:
        obj_en, obj_zh = np_demonstrative(noun, rng.random() < 0.5, 1 if r < 0.75 else 0, adj)
    en = ["do not" if negative else "please", verb.base, obj_en]
    zh = ["不要" if negative else "请", verb.zh, obj_zh]
    combos = _adj_combo(noun, adj) + [combo("verb_noun", verb.key, noun.key)]
    return en_sentence(en, False), zh_sentence(zh, False), combos


def like(rng):
    """She likes red apples. / 她喜欢红色的苹果。  Do you like to swim? / 你喜欢游泳吗？"""
    polarity = rng.choice(POLARITIES)
    subj = _subject(rng, polarity)
    if rng.random() < 0.3:
        act = _pick(rng, L.ACTIVITIES)
        obj_en, obj_zh = "to " + act.base, act.zh
        combos = []
    else:
        noun = _noun(rng, "fruit food baked animal reading clothing vehicle toy plant".split())
        adj = _adj(rng, noun, 0.5)
        obj_en, obj_zh = np_generic(noun, adj)
        combos = _adj_combo(noun, adj)
    en = en_clause(subj, "present", polarity, ("like", "likes", "liked", "liking")) + [obj_en]
    zh = [subj.zh, "不喜欢" if polarity == "negate" else "喜欢", obj_zh] + (["吗"] if polarity == "ask" else [])
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), combos


def want_to(rng):
    """I want to buy a new bike. / 我想买一辆新自行车。"""
    verb = rng.choice([v for v in L.VERBS.values() if v.imperative])
    polarity = rng.choice(POLARITIES)
    subj = _subject(rng, polarity)
    noun = _noun(rng, verb.kinds)
    adj = _adj(rng, noun, 0.5)
    obj_en, obj_zh = np_bare(noun, adj) if polarity == "negate" else np_count(noun, _number(rng), adj)
    en = en_clause(subj, "present", polarity, ("want", "wants", "wanted", "wanting")) + ["to", verb.base, obj_en]
    zh = [subj.zh, "不想" if polarity == "negate" else "想", verb.zh, obj_zh] + (["吗"] if polarity == "ask" else [])
    combos = _adj_combo(noun, adj) + [combo("verb_noun", verb.key, noun.key)]
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), combos


def can(rng):
    """My grandfather can ride a bike. / 我爷爷会骑自行车。"""
    polarity = rng.choice(POLARITIES)
    subj = _subject(rng, polarity)
    skill_en, skill_zh = L.SKILLS[rng.choice(sorted(L.SKILLS))]
    if polarity == "ask":
        en = ["can", subj.en, skill_en]
    else:
        en = [subj.en, "cannot" if polarity == "negate" else "can", skill_en]
    zh = [subj.zh, "不会" if polarity == "negate" else "会", skill_zh] + (["吗"] if polarity == "ask" else [])
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), []


def activity(rng):
    """The children are playing in the park now. / 孩子们现在正在公园里玩。"""
    act = _pick(rng, L.ACTIVITIES)
    tense = rng.choice(["present", "past", "future", "progressive"])
    polarity = rng.choice(POLARITIES + ["where"])
    subj = _subject(rng, "ask" if polarity == "where" else polarity)
    place = L.PLACES[rng.choice(act.places)]
    # Past needs its time word in Chinese (no 了 after an intransitive verb here).
    t_en, t_zh = _time(rng, tense, required=tense == "past")
    if polarity == "negate" and tense == "present":
        t_en, t_zh = NO_TIME
    forms = (act.base, act.third, act.past, act.ing)
    if polarity == "where":
        if tense == "progressive":
            return None
        en = ["where"] + en_clause(subj, tense, "ask", forms) + [t_en]
        zh = [subj.zh, t_zh, "会" if tense == "future" else "", "在哪里", act.zh]
        return en_sentence(en, True), zh_sentence(zh, True), []
    en = en_clause(subj, tense, polarity, forms) + [place.en_at, t_en]
    zh = [subj.zh, t_zh, zh_predicate(tense, polarity, act.zh, loc=place.zh_in)] + (["吗"] if polarity == "ask" else [])
    return en_sentence(en, polarity == "ask"), zh_sentence(zh, polarity == "ask"), []


TEMPLATES = {
    "transitive": (4.0, transitive),
    "how_many": (0.6, how_many),
    "have": (1.2, have),
    "there_is": (1.2, there_is),
    "go": (1.2, go),
    "be_at": (0.8, be_at),
    "act_at_place": (1.2, act_at_place),
    "describe": (1.2, describe),
    "routine": (0.8, routine),
    "give": (1.0, give),
    "age": (0.4, age),
    "put": (1.0, put),
    "imperative": (1.2, imperative),
    "like": (0.8, like),
    "want_to": (0.8, want_to),
    "can": (0.5, can),
    "activity": (1.4, activity),
}
