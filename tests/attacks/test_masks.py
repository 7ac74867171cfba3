"""Weaker finding: masks that leaked structure.

A masked name kept its first letter and exact length, a national ID its first four
(region) and last four digits, a birthday its month and day. Masks now show a fixed
shape and only what a person needs to recognise a record: the name's first character and
`**`, the last four digits of a national ID, the year of a birthday. Each field names its
mask in the field registry (server/data/customer_fields.py); the vault implements them.
"""

from __future__ import annotations

from datetime import date

from server.app import AppState
from server.data.customer_fields import CUSTOMER_FIELDS
from server.vault.masking import mask
from server.vault.normalise import national_id_check_char
from tests.conftest import Api
from tests.factories import bank_card, make_customer

LIST = "{ customers(first: 10) { nodes { name nationalId birthday phone email bankCard } } }"


def _national_id(first17: str) -> str:
    return first17 + national_id_check_char(first17)


async def test_masked_names_do_not_tell_their_length(api: Api, state: AppState) -> None:
    await make_customer(state, name="王明")
    await make_customer(state, name="欧阳小明明")
    body = await api.gql(LIST, token=api.token("admin", subject="root"))
    names = sorted(n["name"] for n in body["data"]["customers"]["nodes"])
    assert names == ["欧**", "王**"]


async def test_a_masked_national_id_keeps_only_its_last_four_digits(
    api: Api, state: AppState
) -> None:
    nid = _national_id("42010119900307255")
    await make_customer(state, national_id=nid)
    body = await api.gql(LIST, token=api.token("compliance", subject="carol"), purpose="compliance")
    [node] = body["data"]["customers"]["nodes"]
    assert node["nationalId"] == "*" * 14 + nid[-4:]


async def test_a_masked_birthday_keeps_only_its_year(api: Api, state: AppState) -> None:
    await make_customer(state, birthday=date(1990, 3, 7))
    body = await api.gql(LIST, token=api.token("compliance", subject="carol"), purpose="compliance")
    [node] = body["data"]["customers"]["nodes"]
    assert node["birthday"] == "1990-**-**"


async def test_each_mask_has_a_fixed_shape(api: Api, state: AppState) -> None:
    card = bank_card(3)
    await make_customer(state, phone="13812345678", email="ada@example.com", bank_card=card)
    body = await api.gql(LIST, token=api.token("compliance", subject="carol"), purpose="compliance")
    [node] = body["data"]["customers"]["nodes"]
    # Phone 3 + 4 is the display mainland services use; email keeps its first letter and
    # domain; a card its last four digits.
    assert (node["phone"], node["email"], node["bankCard"]) == (
        "138****5678",
        "a***@example.com",
        "**** " + card[-4:],
    )
    assert len(mask("name", "李")) == len(mask("name", "李四五六七八九"))
    assert len(mask("birthday", "1990-01-01")) == len(mask("birthday", "2001-12-31"))
    assert len(mask("national_id", _national_id("11010119900101001"))) == 18
    assert mask("national_id", "123") == "*" * 18
    # The registry names a mask for every sealed field, and only for those.
    assert all((f.mask is not None) is f.data_class.sealed for f in CUSTOMER_FIELDS)
