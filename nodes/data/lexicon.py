"""The zh/en vocabulary of the synthetic parallel corpus.

Small on purpose (~250 words): later issues train a ~2 M-parameter recogniser and a small LLM
translator on ~2-3 hours of speech, which can learn a vocabulary this size but not an open one.
Every entry carries everything the grammar needs to be correct by construction in both languages:
English plural, article and verb forms, Chinese measure word (量词) and attributive/predicative
adjective forms. Every Chinese word here is read by espeak-ng's `cmn-latn-pinyin` voice from its
dictionary (tests/data/test_lexicon.py checks that none falls back to English letter names).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Adjective:
    key: str
    en: str
    zh_attr: str  # before a noun: 红色的 / 大 / 漂亮的
    zh_pred: str  # after 是 (colours: 红色的) or after 很/不 (others: 大)
    colour: bool

    def zh_predicate(self, polarity: str) -> str:
        """'affirm' / 'negate' / 'ask' predicate: colours take 是...的, gradable ones take 很."""
        if self.colour:
            return {"affirm": "是", "negate": "不是", "ask": "是"}[polarity] + self.zh_pred
        return {"affirm": "很", "negate": "不", "ask": ""}[polarity] + self.zh_pred


@dataclass(frozen=True)
class Noun:
    key: str
    en: str
    en_plural: str
    zh: str
    measure: str
    kind: str
    adjectives: tuple[str, ...]


@dataclass(frozen=True)
class Person:
    key: str
    en: str
    zh: str
    en_object: str  # after a verb or preposition: me / him / my mother
    person: int  # 1, 2, 3
    plural: bool
    child: bool  # asked about with 几岁 (young people) and eligible for the age template


@dataclass(frozen=True)
class Verb:
    key: str
    base: str
    third: str
    past: str
    ing: str
    zh: str
    tenses: tuple[str, ...]  # present / past / future / progressive
    kinds: tuple[str, ...]  # noun kinds it takes as an object
    imperative: bool  # something one can ask for or intend ("Please buy...", "I want to buy..."),
    # unlike states and accidents (see, need, want, find, lose)


@dataclass(frozen=True)
class Place:
    key: str
    en_to: str  # after "go": "to the park" / "home"
    en_at: str  # "in the park" / "at home"
    zh: str  # after 在 / 去
    zh_in: str  # existential locative: 公园里有...


@dataclass(frozen=True)
class Activity:
    """An intransitive activity, optionally done at a place (孩子们在公园玩)."""

    key: str
    base: str
    third: str
    past: str
    ing: str
    zh: str
    places: tuple[str, ...]


def _adj(key: str, zh_attr: str, zh_pred: str, colour: bool) -> Adjective:
    return Adjective(key, key, zh_attr, zh_pred, colour)


ADJECTIVES = {a.key: a for a in [
    _adj("red", "红色的", "红色的", True),
    _adj("blue", "蓝色的", "蓝色的", True),
    _adj("green", "绿色的", "绿色的", True),
    _adj("yellow", "黄色的", "黄色的", True),
    _adj("white", "白色的", "白色的", True),
    _adj("black", "黑色的", "黑色的", True),
    _adj("brown", "棕色的", "棕色的", True),
    _adj("big", "大", "大", False),
    _adj("small", "小", "小", False),
    _adj("new", "新", "新", False),
    _adj("old", "旧", "旧", False),
    _adj("beautiful", "漂亮的", "漂亮", False),
    _adj("clean", "干净的", "干净", False),
    _adj("dirty", "脏", "脏", False),
    _adj("cute", "可爱的", "可爱", False),
]}

_COLOURS = "red blue green yellow white black brown"
_THING = f"{_COLOURS} big small new old"

# (en, plural, zh, measure word, kind, adjectives that make sense for it)
_NOUN_ROWS = [
    ("apple", "apples", "苹果", "个", "fruit", "red green yellow big small"),
    ("banana", "bananas", "香蕉", "根", "fruit", "yellow green big small"),
    ("orange", "oranges", "橙子", "个", "fruit", "big small"),
    ("pear", "pears", "梨", "个", "fruit", "yellow green big small"),
    ("watermelon", "watermelons", "西瓜", "个", "fruit", "big small"),
    ("egg", "eggs", "鸡蛋", "个", "food", "white brown big small"),
    ("cake", "cakes", "蛋糕", "块", "baked", "big small beautiful"),
    ("cat", "cats", "猫", "只", "animal", "black white brown big small cute"),
    ("dog", "dogs", "狗", "只", "animal", "black white brown big small cute"),
    ("bird", "birds", "鸟", "只", "animal", "red blue yellow black white small beautiful"),
    ("fish", "fish", "鱼", "条", "animal", "red yellow big small"),
    ("horse", "horses", "马", "匹", "animal", "black white brown big small beautiful"),
    ("rabbit", "rabbits", "兔子", "只", "animal", "white black brown small cute"),
    ("duck", "ducks", "鸭子", "只", "animal", "white yellow small cute"),
    ("book", "books", "书", "本", "reading", f"{_THING}"),
    ("map", "maps", "地图", "张", "reading", "big small new old"),
    ("letter", "letters", "信", "封", "writing", ""),
    ("story", "stories", "故事", "个", "writing", ""),
    ("newspaper", "newspapers", "报纸", "份", "reading", "new old"),
    ("pen", "pens", "笔", "支", "thing", f"{_COLOURS} new old"),
    ("cup", "cups", "杯子", "个", "dish", f"{_THING} clean dirty"),
    ("bowl", "bowls", "碗", "个", "dish", f"{_THING} clean dirty"),
    ("box", "boxes", "盒子", "个", "container", f"{_THING} beautiful"),
    ("bag", "bags", "包", "个", "container", f"{_THING} beautiful"),
    ("bottle", "bottles", "瓶子", "个", "container", "green white big small clean dirty"),
    ("hat", "hats", "帽子", "顶", "clothing", f"{_THING} beautiful"),
    ("shirt", "shirts", "衬衫", "件", "clothing", f"{_COLOURS} new old clean dirty beautiful"),
    ("dress", "dresses", "裙子", "条", "clothing", f"{_COLOURS} new old beautiful"),
    ("umbrella", "umbrellas", "伞", "把", "thing", f"{_THING}"),
    ("key", "keys", "钥匙", "把", "thing", "yellow black big small new old"),
    ("chair", "chairs", "椅子", "把", "furniture", f"{_THING}"),
    ("table", "tables", "桌子", "张", "furniture", f"{_THING}"),
    ("car", "cars", "车", "辆", "vehicle", f"{_THING} beautiful clean dirty"),
    ("bike", "bikes", "自行车", "辆", "vehicle", f"{_COLOURS} new old"),
    ("ball", "balls", "球", "个", "toy", f"{_THING}"),
    ("kite", "kites", "风筝", "个", "toy", f"{_COLOURS} big small beautiful"),
    ("flower", "flowers", "花", "朵", "plant", "red yellow white blue big small beautiful"),
    ("ticket", "tickets", "票", "张", "ticket", ""),
    ("phone", "phones", "手机", "部", "device", "black white new old"),
    ("computer", "computers", "电脑", "台", "device", "black white new old"),
    ("watch", "watches", "手表", "块", "device", "black white new old beautiful"),
    ("photo", "photos", "照片", "张", "picture", "old beautiful"),
    ("window", "windows", "窗户", "扇", "opening", "big small"),
    ("door", "doors", "门", "扇", "opening", f"{_COLOURS} big small"),
]

NOUNS = {
    en: Noun(en, en, pl, zh, mw, kind, tuple(a for a in adjs.split() if a in ADJECTIVES))
    for en, pl, zh, mw, kind, adjs in _NOUN_ROWS
}


def _person(key, en, zh, obj, person, plural=False, child=False):
    return Person(key, en, zh, obj, person, plural, child)


PEOPLE = {p.key: p for p in [
    _person("i", "I", "我", "me", 1),
    _person("you", "you", "你", "you", 2),
    _person("he", "he", "他", "him", 3),
    _person("she", "she", "她", "her", 3),
    _person("we", "we", "我们", "us", 1, plural=True),
    _person("they", "they", "他们", "them", 3, plural=True),
    _person("mother", "my mother", "我妈妈", "my mother", 3),
    _person("father", "my father", "我爸爸", "my father", 3),
    _person("brother", "my big brother", "我哥哥", "my big brother", 3, child=True),
    _person("sister", "my little sister", "我妹妹", "my little sister", 3, child=True),
    _person("grandmother", "my grandmother", "我奶奶", "my grandmother", 3),
    _person("grandfather", "my grandfather", "我爷爷", "my grandfather", 3),
    _person("friend", "my friend", "我的朋友", "my friend", 3),
    _person("teacher", "the teacher", "老师", "the teacher", 3),
    _person("doctor", "the doctor", "医生", "the doctor", 3),
    _person("driver", "the driver", "司机", "the driver", 3),
    _person("children", "the children", "孩子们", "the children", 3, plural=True, child=True),
    _person("students", "the students", "学生们", "the students", 3, plural=True),
    _person("tom", "Tom", "汤姆", "Tom", 3, child=True),
    _person("lily", "Lily", "莉莉", "Lily", 3, child=True),
    _person("anna", "Anna", "安娜", "Anna", 3),
    _person("jack", "Jack", "杰克", "Jack", 3),
    _person("xiaoming", "Xiao Ming", "小明", "Xiao Ming", 3, child=True),
    _person("lihua", "Li Hua", "李华", "Li Hua", 3),
]}

_OBJECTS = ("fruit food baked animal reading writing thing dish container clothing furniture vehicle toy plant ticket "
            "device picture")
_PORTABLE = "fruit food baked reading thing dish container clothing toy plant ticket device picture"
_VISIBLE = "fruit baked animal reading thing dish container clothing furniture vehicle toy plant device picture"


def _verb(base, third, past, ing, zh, tenses, kinds, imperative=True):
    return Verb(base, base, third, past, ing, zh, tuple(tenses.split()), tuple(kinds.split()), imperative)


VERBS = {v.key: v for v in [
    _verb("buy", "buys", "bought", "buying", "买", "present past future progressive",
          "fruit food baked animal reading thing dish container clothing furniture vehicle toy plant ticket device"),
    _verb("sell", "sells", "sold", "selling", "卖", "present past future progressive",
          "fruit food baked animal reading thing container clothing furniture vehicle toy device"),
    _verb("see", "sees", "saw", "seeing", "看见", "present past", _VISIBLE, imperative=False),
    _verb("eat", "eats", "ate", "eating", "吃", "present past future progressive", "fruit food baked"),
    _verb("wash", "washes", "washed", "washing", "洗", "present past future progressive",
          "fruit dish clothing vehicle"),
    _verb("draw", "draws", "drew", "drawing", "画", "present past future progressive",
          "fruit animal container clothing furniture vehicle toy plant"),
    _verb("bring", "brings", "brought", "bringing", "带", "present past future", _PORTABLE),
    _verb("take", "takes", "took", "taking", "拿", "past future",
          "fruit food baked reading thing dish container toy ticket"),
    _verb("find", "finds", "found", "finding", "找到", "past", "animal reading thing container clothing toy ticket device picture",
          imperative=False),
    _verb("lose", "loses", "lost", "losing", "丢", "past", "thing container clothing toy ticket device", imperative=False),
    _verb("open", "opens", "opened", "opening", "打开", "past future progressive", "container opening"),
    _verb("close", "closes", "closed", "closing", "关上", "past future", "container opening"),
    _verb("read", "reads", "read", "reading", "看", "present past future progressive", "reading"),
    _verb("write", "writes", "wrote", "writing", "写", "present past future progressive", "writing"),
    _verb("make", "makes", "made", "making", "做", "past future progressive", "baked toy"),
    _verb("borrow", "borrows", "borrowed", "borrowing", "借", "past future", "reading thing vehicle"),
    _verb("need", "needs", "needed", "needing", "需要", "present", _PORTABLE, imperative=False),
    _verb("want", "wants", "wanted", "wanting", "想要", "present", _PORTABLE + " animal vehicle", imperative=False),
]}

PLACES = {p.key: p for p in [
    Place("home", "home", "at home", "家", "家里"),
    Place("school", "to school", "at school", "学校", "学校里"),
    Place("park", "to the park", "in the park", "公园", "公园里"),
    Place("library", "to the library", "in the library", "图书馆", "图书馆里"),
    Place("hospital", "to the hospital", "at the hospital", "医院", "医院里"),
    Place("station", "to the station", "at the station", "车站", "车站里"),
    Place("market", "to the market", "at the market", "市场", "市场里"),
    Place("shop", "to the shop", "in the shop", "商店", "商店里"),
    Place("restaurant", "to the restaurant", "at the restaurant", "饭店", "饭店里"),
    Place("office", "to the office", "in the office", "办公室", "办公室里"),
    Place("kitchen", "to the kitchen", "in the kitchen", "厨房", "厨房里"),
    Place("garden", "to the garden", "in the garden", "花园", "花园里"),
    Place("zoo", "to the zoo", "at the zoo", "动物园", "动物园里"),
    Place("beach", "to the beach", "at the beach", "海边", "海边"),
    Place("museum", "to the museum", "in the museum", "博物馆", "博物馆里"),
    Place("airport", "to the airport", "at the airport", "机场", "机场里"),
    Place("supermarket", "to the supermarket", "in the supermarket", "超市", "超市里"),
    Place("classroom", "to the classroom", "in the classroom", "教室", "教室里"),
    Place("bank", "to the bank", "at the bank", "银行", "银行里"),
]}


def _act(base, third, past, ing, zh, places):
    return Activity(base, base, third, past, ing, zh, tuple(places.split()))


ACTIVITIES = {a.key: a for a in [
    _act("play", "plays", "played", "playing", "玩", "home park garden school beach"),
    _act("sing", "sings", "sang", "singing", "唱歌", "home school classroom park"),
    _act("dance", "dances", "danced", "dancing", "跳舞", "home school park"),
    _act("swim", "swims", "swam", "swimming", "游泳", "beach school"),
    _act("study", "studies", "studied", "studying", "学习", "home school library classroom"),
    _act("work", "works", "worked", "working", "工作", "home office hospital bank restaurant school shop"),
    _act("rest", "rests", "rested", "resting", "休息", "home park garden"),
    _act("run", "runs", "ran", "running", "跑步", "park beach school"),
    _act("cook", "cooks", "cooked", "cooking", "做饭", "home kitchen restaurant"),
    _act("sleep", "sleeps", "slept", "sleeping", "睡觉", "home"),
]}

# Skills for "can": (en phrase, zh phrase after 会).
SKILLS = {
    "swim": ("swim", "游泳"),
    "drive": ("drive a car", "开车"),
    "ride": ("ride a bike", "骑自行车"),
    "cook": ("cook", "做饭"),
    "sing": ("sing", "唱歌"),
    "dance": ("dance", "跳舞"),
    "piano": ("play the piano", "弹钢琴"),
    "chinese": ("speak Chinese", "说中文"),
    "english": ("speak English", "说英语"),
    "write_chinese": ("write Chinese characters", "写汉字"),
}

# Daily routines said with a clock time: (en base, en third, en past, zh).
ROUTINES = {
    "get_up": ("get up", "gets up", "got up", "起床"),
    "go_to_bed": ("go to bed", "goes to bed", "went to bed", "睡觉"),
    "breakfast": ("eat breakfast", "eats breakfast", "ate breakfast", "吃早饭"),
    "lunch": ("eat lunch", "eats lunch", "ate lunch", "吃午饭"),
    "dinner": ("eat dinner", "eats dinner", "ate dinner", "吃晚饭"),
    "work": ("go to work", "goes to work", "went to work", "去上班"),
}

# Surfaces for "put X on Y": (en, zh, noun key that must differ from the object).
SURFACES = {
    "table": ("on the table", "桌子上", "table"),
    "chair": ("on the chair", "椅子上", "chair"),
    "bed": ("on the bed", "床上", ""),
    "box": ("in the box", "盒子里", "box"),
    "bag": ("in the bag", "包里", "bag"),
    "under_table": ("under the table", "桌子下面", "table"),
    "door": ("next to the door", "门旁边", "door"),
}

NUMBERS_EN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
              "ten", "eleven", "twelve"]
NUMBERS_ZH = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]


def zh_count(n: int) -> str:
    """A number before a measure word: 2 is 两 there (两本书, 两点), not 二."""
    return "两" if n == 2 else NUMBERS_ZH[n]


def all_zh_words() -> list[str]:
    """Every Chinese string the grammar can put into a sentence (for the pronunciation check)."""
    words = [a.zh_attr for a in ADJECTIVES.values()] + [a.zh_pred for a in ADJECTIVES.values()]
    words += [n.zh for n in NOUNS.values()] + [n.measure for n in NOUNS.values()]
    words += [p.zh for p in PEOPLE.values()] + [v.zh for v in VERBS.values()]
    words += [p.zh for p in PLACES.values()] + [p.zh_in for p in PLACES.values()]
    words += [a.zh for a in ACTIVITIES.values()] + [s[1] for s in SKILLS.values()]
    words += [r[3] for r in ROUTINES.values()] + [s[1] for s in SURFACES.values()] + NUMBERS_ZH[1:]
    return sorted(set(words))
