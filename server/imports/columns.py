"""How a business's own sheet is read: its headers matched to import columns (English and
Chinese synonyms, case, spacing and punctuation ignored, or an explicit mapping), and its
cells in the formats people type (1985年3月12日, ¥1,234.50, 已发货, 是/否).

Nothing here touches the database: `plan_columns` turns a header row into the import
column of every position and the columns it ignores; the `cell_*` readers turn one cell
into a value or a `ValidationError` whose message never repeats the cell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from server.customer.fields import IMPORTABLE
from server.errors import ValidationError
from server.order.service import TRANSITIONS, money

CUSTOMERS, ORDERS, PRODUCTS = "customers", "orders", "products"
KINDS = (CUSTOMERS, ORDERS, PRODUCTS)
IGNORE = "ignore"
"""A mapping target that drops a column on purpose (`--map '内部备注=ignore'`)."""

# Consent columns of a customer file: a yes/no cell per purpose, with where and when the
# customer gave it (the proof kept with the consent).
CONSENT_COLUMNS = {
    "consent_marketing": "marketing",
    "consent_analytics": "analytics",
    "consent_third_party": "third_party_sharing",
}
CONSENT_PROOF = ("consent_source", "consent_at")
# Columns that land in the stores next to the customer row: contact points (a landline,
# which is also the phone of a file that has no mobile; a WeChat ID; a contact person with
# an optional phone) and a note (备注), each sealed under the customer's data key.
CONTACT_COLUMNS = frozenset({"landline", "wechat", "contact_person", "contact_person_phone"})
NOTE_COLUMN = "note"
CUSTOMER_EXTRAS = frozenset({*CONTACT_COLUMNS, NOTE_COLUMN, *CONSENT_COLUMNS, *CONSENT_PROOF})
ORDER_COLUMNS = frozenset(
    {
        "customer_ref",
        "customer_name",
        "order_ref",
        "product_sku",
        "quantity",
        "unit_price",
        "date",
        "amount",
        "status",
    }
)
PRODUCT_COLUMNS = frozenset(
    {"sku", "name", "category", "unit_price", "unit_cost", "is_new", "launched_at", "active"}
)


def columns_of(kind: str) -> frozenset[str]:
    """Every import column of a kind of file."""
    if kind == CUSTOMERS:
        return IMPORTABLE | CUSTOMER_EXTRAS
    if kind == ORDERS:
        return ORDER_COLUMNS
    return PRODUCT_COLUMNS


# Synonyms people write in their sheets, per import column (the column's own name and its
# spelling with spaces count too). Keys are compared by `header_key`.
_CUSTOMER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (
        "客户名称",
        "客户名",
        "客户姓名",
        "姓名",
        "名称",
        "公司名称",
        "客户",
        "customer name",
        "customer",
        "full name",
        "company name",
    ),
    "customer_number": (
        "客户编号",
        "客户编码",
        "客户号",
        "客户代码",
        "编号",
        "customer no",
        "customer number",
        "customer code",
        "cust no",
        "account number",
    ),
    "phone": (
        "手机",
        "手机号",
        "手机号码",
        "移动电话",
        "电话",
        "联系电话",
        "mobile",
        "mobile phone",
        "cell",
        "cellphone",
        "tel",
        "telephone",
        "phone number",
    ),
    "landline": (
        "座机",
        "座机号码",
        "座机电话",
        "固定电话",
        "固话",
        "办公电话",
        "landline",
        "office phone",
    ),
    "wechat": ("微信", "微信号", "微信id", "wechat", "wechat id", "weixin"),
    "contact_person": (
        "联系人",
        "联系人姓名",
        "对接人",
        "contact person",
        "contact name",
    ),
    "contact_person_phone": (
        "联系人电话",
        "联系人手机",
        "联系人手机号",
        "联系人座机",
        "contact person phone",
    ),
    "note": (
        "备注",
        "说明",
        "备注信息",
        "notes",
        "note",
        "remark",
        "remarks",
        "comments",
        "comment",
    ),
    "email": ("邮箱", "电子邮箱", "电子邮件", "邮件", "e-mail", "mail", "email address"),
    "address": ("地址", "联系地址", "详细地址", "通讯地址", "收货地址", "address"),
    "industry": ("行业", "所属行业", "industry"),
    "national_id": ("身份证", "身份证号", "身份证号码", "证件号码", "id number", "national id"),
    "bank_card": ("银行卡", "银行卡号", "bank card", "card number"),
    "birthday": ("生日", "出生日期", "出生年月日", "date of birth", "dob", "birth date"),
    "gender": ("性别", "sex", "gender"),
    "company_size": ("公司规模", "企业规模", "规模", "员工人数", "company size"),
    "region": ("地区", "区域", "所在地区", "省份", "城市", "region", "city", "province"),
    "occupation": ("职业", "职位", "职务", "occupation", "job title", "title"),
    "source": ("来源", "客户来源", "获客渠道", "source", "lead source"),
    "owner_id": (
        "负责人",
        "客户经理",
        "销售",
        "业务员",
        "跟进人",
        "归属人",
        "owner",
        "account manager",
        "sales rep",
        "salesperson",
    ),
    "team": ("团队", "部门", "小组", "销售团队", "team", "department"),
    "tier": ("客户等级", "等级", "客户级别", "级别", "价值等级", "tier", "customer tier"),
    "lifecycle": ("生命周期", "客户状态", "生命周期阶段", "lifecycle", "lifecycle stage"),
    "created_at": (
        "客户since",
        "首次购买",
        "首次购买日期",
        "首次合作",
        "成为客户日期",
        "客户起始日期",
        "建档日期",
        "开户日期",
        "customer since",
        "since",
        "first purchase",
        "first order date",
    ),
    "consent_marketing": (
        "营销同意",
        "同意营销",
        "接受营销",
        "营销许可",
        "同意接收营销信息",
        "marketing consent",
        "marketing opt in",
        "opt in",
    ),
    "consent_analytics": ("分析同意", "同意分析", "analytics consent"),
    "consent_third_party": ("第三方共享同意", "同意第三方共享", "third party consent"),
    "consent_source": ("同意来源", "授权来源", "consent source"),
    "consent_at": (
        "同意时间",
        "同意日期",
        "授权时间",
        "consent time",
        "consent date",
        "consented at",
    ),
}
_ORDER_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_ref": (
        "客户编号",
        "客户编码",
        "客户号",
        "客户",
        "客户手机",
        "手机",
        "手机号",
        "客户邮箱",
        "邮箱",
        "customer",
        "customer no",
        "customer number",
        "customer id",
    ),
    "customer_name": ("客户名称", "客户姓名", "姓名", "customer name"),
    "order_ref": (
        "订单号",
        "订单编号",
        "单号",
        "订单id",
        "order no",
        "order number",
        "order id",
        "order",
    ),
    "product_sku": (
        "商品编码",
        "商品编号",
        "产品编码",
        "产品编号",
        "货号",
        "sku",
        "product code",
        "product sku",
        "item code",
    ),
    "quantity": ("数量", "件数", "qty", "quantity"),
    "unit_price": ("单价", "售价", "unit price", "price"),
    "date": (
        "日期",
        "下单日期",
        "下单时间",
        "订单日期",
        "购买日期",
        "交易日期",
        "order date",
        "purchase date",
        "date",
    ),
    "amount": (
        "金额",
        "订单金额",
        "实付金额",
        "总金额",
        "实收金额",
        "消费金额",
        "amount",
        "total",
        "order total",
    ),
    "status": ("状态", "订单状态", "status", "order status"),
}
_PRODUCT_ALIASES: dict[str, tuple[str, ...]] = {
    "sku": ("商品编码", "商品编号", "产品编码", "产品编号", "货号", "product code", "item code"),
    "name": ("商品名称", "产品名称", "名称", "品名", "product name", "product"),
    "category": ("类别", "分类", "品类", "商品分类", "产品类别", "category"),
    "unit_price": ("单价", "售价", "价格", "零售价", "price", "unit price"),
    "unit_cost": ("成本", "成本价", "进价", "采购价", "cost", "unit cost"),
    "is_new": ("新品", "是否新品", "new", "new product"),
    "launched_at": ("上市日期", "上架日期", "发布日期", "launch date", "launched"),
    "active": ("在售", "是否在售", "上架", "active", "on sale"),
}
_ALIASES = {CUSTOMERS: _CUSTOMER_ALIASES, ORDERS: _ORDER_ALIASES, PRODUCTS: _PRODUCT_ALIASES}
_PUNCTUATION = re.compile(r"[\s_\-.·/\\()\[\]【】:#*]+")


def header_key(text: str) -> str:
    """A header as compared: width-folded (full-width 全角 letters and brackets become
    ASCII), lower case, without spaces, underscores or punctuation; `Customer_No.`,
    `customer no` and its full-width spelling are one key."""
    return _PUNCTUATION.sub("", unicodedata.normalize("NFKC", str(text)).lower())


def _alias_table(kind: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for column in sorted(columns_of(kind)):
        table[header_key(column)] = column
    for column, aliases in _ALIASES[kind].items():
        for alias in aliases:
            table.setdefault(header_key(alias), column)
    return table


ALIAS_TABLES: dict[str, dict[str, str]] = {kind: _alias_table(kind) for kind in KINDS}


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """What each position of a sheet's header becomes: an import column or nothing."""

    columns: tuple[str | None, ...]
    ignored: tuple[str, ...] = ()
    """Headers of columns left out: unknown, mapped to `ignore`, or a repeat of a column
    an earlier header already gave (reported, never their cells)."""

    @property
    def present(self) -> frozenset[str]:
        return frozenset(c for c in self.columns if c is not None)

    def rename(self, values: Mapping[int, Any]) -> dict[str, Any]:
        """A row's cells by position as cells by import column."""
        return {
            column: values[i]
            for i, column in enumerate(self.columns)
            if column is not None and i in values
        }


def parse_mapping(entries: Iterable[str], kind: str) -> dict[str, str]:
    """`--map 'SHEET COLUMN=import_column'` entries (or the lines of a mapping file) as
    header key → import column; `=ignore` drops a column. A bad entry is a usage error
    (`BAD_MAPPING`) naming the import column, never the sheet's header."""
    allowed = columns_of(kind)
    mapping: dict[str, str] = {}
    for entry in entries:
        text = entry.strip()
        if not text or text.startswith("#"):
            continue
        source, sep, target = text.rpartition("=")
        if not sep:
            source, sep, target = text.rpartition(",")
        target = target.strip().lower()
        if not sep or not source.strip():
            raise ValidationError(
                "a mapping entry is `sheet column=import column`", code="BAD_MAPPING"
            )
        if target not in allowed and target != IGNORE:
            raise ValidationError(
                f"mapping target is not a {kind} import column (see the README)",
                code="BAD_MAPPING",
            )
        mapping[header_key(source)] = target
    return mapping


def plan_columns(
    kind: str, header: Iterable[Any], mapping: Mapping[str, str] | None = None
) -> ColumnPlan:
    """Match every header to an import column: the explicit mapping first, then the
    column names and their synonyms. Unknown headers are ignored and reported; a second
    header giving a column already given is ignored too (the first one wins)."""
    table = ALIAS_TABLES[kind]
    mapping = mapping or {}
    columns: list[str | None] = []
    ignored: list[str] = []
    taken: set[str] = set()
    for raw in header:
        text = "" if raw is None else str(raw).strip()
        if not text:
            columns.append(None)
            continue
        key = header_key(text)
        column = mapping.get(key) or table.get(key)
        if column is None or column == IGNORE or column in taken:
            columns.append(None)
            ignored.append(text)
            continue
        taken.add(column)
        columns.append(column)
    return ColumnPlan(tuple(columns), tuple(ignored))


def require_columns(plan: ColumnPlan, required: Iterable[str]) -> None:
    missing = sorted(set(required) - plan.present)
    if missing:
        raise ValidationError(f"missing columns: {', '.join(missing)}", code="BAD_HEADER")


# Cells ----------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A cell as text: spreadsheet numbers like 13812345678.0 lose the `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


_CN_DATE = re.compile(
    r"(\d{4})\s*[年/.\-]\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*[日号]?"
    r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")


def cell_instant(value: Any, what: str) -> datetime:
    """A date or time cell: a spreadsheet date, ISO 8601, or as people write dates here
    (1985年3月12日, 1985/3/12, 1985.3.12, 1985-3-12 14:30, 19850312). Times without a zone
    are UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        written = _written_date(unicodedata.normalize("NFKC", cell_text(value)))
        if written is None:
            raise ValidationError(
                f"{what} is not a date (YYYY-MM-DD or 1985年3月12日)", code="INVALID_DATE"
            )
        moment = written
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _written_date(text: str) -> datetime | None:
    if len(text) > 40:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    match = _CN_DATE.fullmatch(text) or _COMPACT_DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day, *clock = [int(p) if p else 0 for p in match.groups()]
    hour, minute, second = [*clock, 0, 0, 0][:3]
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


_MONEY_MARKS = re.compile(r"^(?:¥|￥|RMB|CNY|人民币)\s*|\s*(?:元|块|RMB|CNY)$", re.IGNORECASE)


def cell_money(value: Any, what: str) -> Decimal:
    """An amount as written: `1234.5`, `¥1,234.50`, `1,234元`, `RMB 99`. Exact decimal;
    str() of a float is its shortest repr, so 19.99 stays 19.99, never 19.989999…"""
    text = unicodedata.normalize("NFKC", cell_text(value))
    if len(text) <= 40:
        text = _MONEY_MARKS.sub("", text.strip())
        if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", text):
            text = text.replace(",", "")
    return money(text, what)


# Chinese (and common English) words for the order statuses.
STATUS_WORDS: dict[str, str] = {
    **{s: s for s in TRANSITIONS},
    "canceled": "cancelled",
    "completed": "delivered",
    "complete": "delivered",
    "done": "delivered",
    "refunded": "returned",
    "新建": "created",
    "已创建": "created",
    "待付款": "created",
    "待支付": "created",
    "未付款": "created",
    "已付款": "paid",
    "已支付": "paid",
    "待发货": "paid",
    "已发货": "shipped",
    "运输中": "shipped",
    "配送中": "shipped",
    "已送达": "delivered",
    "已收货": "delivered",
    "已签收": "delivered",
    "已完成": "delivered",
    "完成": "delivered",
    "交易成功": "delivered",
    "已取消": "cancelled",
    "取消": "cancelled",
    "交易关闭": "cancelled",
    "已退货": "returned",
    "退货": "returned",
    "已退款": "returned",
    "退款": "returned",
}


def cell_status(value: Any) -> str:
    word = header_key(cell_text(value))
    status = STATUS_WORDS.get(word)
    if status is None:
        raise ValidationError("status is not an order status", code="INVALID_STATUS")
    return status


# Segment words of customer sheets: tiers (A/B/C grades are not tiers and are refused).
TIER_WORDS: dict[str, str] = {
    "high": "high",
    "mid": "mid",
    "medium": "mid",
    "low": "low",
    "高": "high",
    "高价值": "high",
    "重要": "high",
    "中": "mid",
    "中等": "mid",
    "一般": "mid",
    "低": "low",
    "低价值": "low",
}
LIFECYCLE_WORDS: dict[str, str] = {
    "new": "new",
    "active": "active",
    "atrisk": "at_risk",
    "churned": "churned",
    "wonback": "won_back",
    "新客户": "new",
    "新客": "new",
    "活跃": "active",
    "活跃客户": "active",
    "有流失风险": "at_risk",
    "流失风险": "at_risk",
    "风险": "at_risk",
    "沉睡": "at_risk",
    "已流失": "churned",
    "流失": "churned",
    "赢回": "won_back",
    "已挽回": "won_back",
    "挽回": "won_back",
}
SEGMENT_WORDS = {"tier": TIER_WORDS, "lifecycle": LIFECYCLE_WORDS}


def cell_segment(name: str, value: Any) -> str:
    """A tier or lifecycle as written (high/高, at_risk/流失风险); other text, such as a
    house grade "A类", is refused like on every other path."""
    found = SEGMENT_WORDS[name].get(header_key(cell_text(value)))
    if found is None:
        allowed = "high, mid, low" if name == "tier" else "new, active, at_risk, churned, won_back"
        raise ValidationError(f"{name} must be one of {allowed}", code=f"INVALID_{name.upper()}")
    return found


_YES = {"1", "y", "yes", "true", "是", "同意", "已同意", "有", "√", "✓", "ok", "允许", "接受"}
_NO = {"0", "n", "no", "false", "否", "不同意", "未同意", "无", "\u00d7", "✗", "拒绝", "不允许"}


def cell_flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    word = header_key(cell_text(value))
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise ValidationError(f"{what} is not yes or no (是/否)", code="INVALID_FLAG")


@dataclass
class OwnerBook:
    """Who may own imported files: users known by login (with their team, if any) and
    the names a sheet calls them by (`--owner '张经理=zhang.wei'`)."""

    logins: dict[str, str | None] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    """Console users whose account is disabled: no file is handed to them anew."""

    def resolve(self, written: str) -> tuple[str, str | None] | None:
        """The login and team of a sheet's owner cell, or None if it names no user."""
        login = self.names.get(header_key(written), written.strip())
        if login not in self.logins:
            return None
        return login, self.logins[login]


def parse_owner_entries(entries: Iterable[str]) -> tuple[dict[str, str], dict[str, str | None]]:
    """`NAME=LOGIN` or `NAME=LOGIN@TEAM` entries (options or lines of an owners file): the
    names a sheet uses → logins, and the logins they make known with their teams."""
    names: dict[str, str] = {}
    logins: dict[str, str | None] = {}
    for entry in entries:
        text = entry.strip()
        if not text or text.startswith("#"):
            continue
        source, sep, target = text.rpartition("=")
        if not sep:
            source, sep, target = text.partition(",")
        login, _, team = target.strip().partition("@")
        if not sep or not source.strip() or not login.strip():
            raise ValidationError(
                "an owner entry is `name in the sheet=login` or `=login@team`",
                code="BAD_MAPPING",
            )
        names[header_key(source)] = login.strip()
        logins[login.strip()] = team.strip() or None
    return names, logins
