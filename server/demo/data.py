"""The raw material of demo data: names, places, products and channels, and generators of
realistic identity values (mainland mobile numbers, resident ID numbers with valid check
characters, UnionPay card numbers that pass Luhn)."""

from __future__ import annotations

import random
from datetime import date

from server.complaint.states import ComplaintStatus
from server.service_levels import ServiceLevels
from server.vault.normalise import luhn_is_valid, national_id_check_char

SURNAMES_ZH = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
    "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_ZH = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌"
    "宇浩凯晨欣怡思雨佳琪子涵梓轩一诺"
)
FIRST_EN = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Emma",
    "Olivia",
    "Noah",
    "Liam",
    "Sophia",
    "Lucas",
]
LAST_EN = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Thompson",
    "White",
    "Lee",
]
REGIONS = [
    ("北京", "110101"),
    ("上海", "310101"),
    ("广州", "440103"),
    ("深圳", "440303"),
    ("杭州", "330102"),
    ("成都", "510104"),
    ("武汉", "420102"),
    ("南京", "320102"),
    ("西安", "610102"),
    ("重庆", "500101"),
]
STREETS = ["中山路", "人民路", "解放路", "建设路", "和平路", "长江路", "南京路", "科技园路"]
INDUSTRIES = [
    "retail",
    "manufacturing",
    "finance",
    "education",
    "healthcare",
    "it",
    "logistics",
    "hospitality",
]
COMPANY_SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]
OCCUPATIONS = ["engineer", "teacher", "manager", "designer", "doctor", "sales", "owner", "student"]
CATEGORIES = {
    "appliances": [("Air purifier", 1299), ("Rice cooker", 399), ("Robot vacuum", 2199)],
    "electronics": [("Wireless earbuds", 599), ("Smart watch", 1499), ("Tablet", 2999)],
    "home": [("Bedding set", 459), ("Desk lamp", 189), ("Storage rack", 129)],
    "beauty": [("Face serum", 329), ("Sunscreen", 119), ("Hair dryer", 699)],
    "food": [("Green tea gift box", 268), ("Coffee beans", 98), ("Nut assortment", 158)],
    "sports": [("Yoga mat", 139), ("Running shoes", 699), ("Smart scale", 199)],
}
CHANNELS = ["phone", "email", "wechat", "sms", "chat", "visit", "meeting"]
INTERACTION_KINDS = ["consultation", "follow_up", "care", "promotion", "survey", "visit"]
COMPLAINT_CATEGORIES = [
    "product_quality",
    "service_attitude",
    "communication",
    "delivery",
    "billing",
    "other",
]
COMPLAINT_STATES = [status.value for status in ComplaintStatus]
DEMO_LEVELS = ServiceLevels()
NOTES = [
    "Asked about delivery time",
    "Interested in the new model",
    "Requested an invoice",
    "Follow-up on last purchase",
    "Birthday greeting sent",
    "Discussed membership upgrade",
]
DEMO_TAGS = ["vip", "wholesale", "回头客", "gift-buyer", "early-adopter"]
PREFERENCES = [
    "Prefers evening calls",
    "Likes new gadgets",
    "Buys gifts for family",
    "Wants eco-friendly packaging",
]
AGENTS = [("agent-1", "east"), ("agent-2", "east"), ("agent-3", "west"), ("agent-4", "west")]
ACTOR = "system:demo"
# Consent given at sign-up, per purpose: the share of customers who gave it.
CONSENT_SHARES = {"marketing": 0.6, "analytics": 0.8, "third_party_sharing": 0.2}
ORDER_STATUSES = ["delivered"] * 6 + ["paid", "shipped", "cancelled", "returned"]
ORDER_PATHS = {
    "paid": ["created", "paid"],
    "shipped": ["created", "paid", "shipped"],
    "delivered": ["created", "paid", "shipped", "delivered"],
    "cancelled": ["created", "cancelled"],
    "returned": ["created", "paid", "shipped", "delivered", "returned"],
}
EARNING_STATUSES = ("paid", "shipped", "delivered")


def phone(rng: random.Random, index: int) -> str:
    prefix = rng.choice(["130", "135", "138", "139", "150", "158", "177", "186", "188", "199"])
    return f"{prefix}{(index * 7919 + rng.randrange(10_000)) % 100_000_000:08d}"


def national_id(rng: random.Random, region_code: str, born: date) -> str:
    first17 = f"{region_code}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + national_id_check_char(first17)


def bank_card(rng: random.Random) -> str:
    body = "62" + "".join(str(rng.randrange(10)) for _ in range(15))
    for check in range(10):
        if luhn_is_valid(body + str(check)):
            return body + str(check)
    raise AssertionError("a Luhn check digit always exists")


def person(rng: random.Random, index: int) -> tuple[str, str]:
    if rng.random() < 0.7:
        name = rng.choice(SURNAMES_ZH) + "".join(
            rng.choice(GIVEN_ZH) for _ in range(rng.choice([1, 2]))
        )
        local = f"user{index}"
    else:
        first, last = rng.choice(FIRST_EN), rng.choice(LAST_EN)
        name = f"{first} {last}"
        local = f"{first}.{last}{index}".lower()
    return name, f"{local}@{rng.choice(['example.com', 'mail.example.cn', 'corp.example.org'])}"
