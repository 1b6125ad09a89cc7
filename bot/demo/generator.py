"""Deterministic upstream deliveries of the demo company, one day at a time.

Three upstream systems drop files into the landing zone every day:

- `shop` (the e-commerce backend) exports CSV: the orders placed that day, their line items,
  the customers created or updated that day (placing an order updates a customer, as in
  Shopify), and a full snapshot of the product catalogue.
- `payments` (a Stripe-like PSP) exports JSON lines: every payment attempt of the day's
  orders, and the refunds issued that day (for cancellations and returns of earlier orders).
- `marketing` (web/app tracking and the ad platforms) exports JSON lines: funnel events and
  spend per campaign and channel.

Everything is a pure function of `(seed, day)`: counts come from a per-seed calendar with
weekly seasonality and slow growth, ids from cumulative counts, and per-entity attributes
from a hash of the id, so any day can be generated alone and references stay consistent
(every order's customer is in that day's customer export; refunds point at real payments).
`UpstreamFault`s then damage one day's files the way real upstreams do.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

EPOCH = date(2021, 3, 1)  # the shop's launch; calendars count days from here
_HORIZON = 9000  # days of calendar (until 2045)
_REF_DAY = date(2026, 1, 1)  # volumes below are as of this day, growing ~13% a year
_GROWTH = 1.00035

_ORDERS_PER_DAY = 4500
_SIGNUPS_PER_DAY = 270
# Monday..Sunday: people shop (and sign up) more at the weekend; ad budgets dip.
_ORDER_DOW = np.array([1.00, 0.95, 0.93, 0.96, 1.02, 1.18, 1.24])
_SIGNUP_DOW = np.array([1.00, 0.97, 0.95, 0.97, 1.03, 1.15, 1.20])
_SPEND_DOW = np.array([1.05, 1.05, 1.05, 1.05, 1.00, 0.88, 0.85])
# Share of the day's traffic per UTC hour: quiet nights, a lunch bump, an evening peak.
_HOUR_WEIGHTS = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 4, 4.5,
                          5, 5, 4.5, 4.3, 4.5, 5, 5.5, 6.5, 7, 6.5, 4.5, 2.5])
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()

_MASK64 = (1 << 64) - 1

TABLES: dict[tuple[str, str], str] = {
    ("shop", "orders"): "csv",
    ("shop", "order_items"): "csv",
    ("shop", "customers"): "csv",
    ("shop", "products"): "csv",
    ("payments", "payments"): "jsonl",
    ("payments", "refunds"): "jsonl",
    ("marketing", "events"): "jsonl",
    ("marketing", "ad_spend"): "jsonl",
}
"""Every upstream table and its file format."""


# --------------------------------------------------------------------------- faults


FaultKind = Literal[
    "rename_column",
    "drop_column",
    "scale_column",
    "null_fraction",
    "duplicate_file",
    "missing_partition",
    "bad_date_format",
]

_REQUIRED: dict[str, tuple[str, ...]] = {
    "rename_column": ("column", "new_name"),
    "drop_column": ("column",),
    "scale_column": ("column", "factor"),
    "null_fraction": ("column", "fraction"),
    "duplicate_file": (),
    "missing_partition": (),
    "bad_date_format": ("column",),
}


class UpstreamFault(BaseModel):
    """One thing an upstream system gets wrong in one day's delivery of one table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    source: str
    table: str
    column: str | None = None
    new_name: str | None = None
    factor: float | None = None
    fraction: float | None = None

    @model_validator(mode="after")
    def _check(self) -> UpstreamFault:
        if (self.source, self.table) not in TABLES:
            raise ValueError(f"unknown upstream table {self.source}.{self.table}")
        missing = [p for p in _REQUIRED[self.kind] if getattr(self, p) is None]
        if missing:
            raise ValueError(f"{self.kind} needs {', '.join(missing)}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        return self

    def describe(self) -> str:
        """One line for logs and ground truth."""
        target = f"{self.source}.{self.table}" + (f".{self.column}" if self.column else "")
        params = {k: v for k, v in (("new_name", self.new_name), ("factor", self.factor),
                                    ("fraction", self.fraction)) if v is not None}
        extra = " " + " ".join(f"{k}={v}" for k, v in params.items()) if params else ""
        return f"{self.kind} {target}{extra}"


# --------------------------------------------------------------------------- hashing


def _mix(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of `x + salt`: a stable, well-spread 64-bit hash per element."""
    z = x.astype(np.uint64) + np.uint64((salt * 0x9E3779B97F4A7C15) & _MASK64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _unit(x: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) per element, stable for the same `x` and `salt`."""
    return (_mix(x, salt) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _hex(x: np.ndarray, salt: int) -> list[str]:
    """16 hex digits per element (one bulk conversion: formatting each int is slow)."""
    digits = _mix(np.asarray(x), salt).astype(">u8").tobytes().hex()
    return [digits[i : i + 16] for i in range(0, len(digits), 16)]


def _hex_ids(prefix: str, x: np.ndarray, salt: int) -> list[str]:
    return [prefix + h for h in _hex(x, salt)]


def _uuids(x: np.ndarray, salt: int) -> list[str]:
    return [f"{a[:8]}-{a[8:12]}-4{a[13:16]}-{b[:4]}-{b[4:]}"
            for a, b in zip(_hex(x, salt), _hex(x, salt + 1), strict=True)]


def _rng(seed: int, day_index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, day_index, stream])


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class _Calendar:
    orders: np.ndarray  # orders placed per day index
    signups: np.ndarray  # customers created per day index
    first_order_id: np.ndarray
    customers_before: np.ndarray  # customers that exist at the start of each day
    spend_noise: np.ndarray


@lru_cache(maxsize=8)
def _calendar(seed: int) -> _Calendar:
    t = np.arange(_HORIZON)
    dow = (EPOCH.weekday() + t) % 7
    growth = _GROWTH ** (t - (_REF_DAY - EPOCH).days)
    noise = np.random.default_rng([seed, 0xCA1]).normal(0.0, 0.03, size=(3, _HORIZON))
    orders = np.rint(_ORDERS_PER_DAY * growth * _ORDER_DOW[dow] * (1 + noise[0]))
    signups = np.rint(_SIGNUPS_PER_DAY * growth * _SIGNUP_DOW[dow] * (1 + noise[1]))
    orders, signups = orders.astype(np.int64), signups.astype(np.int64)
    # 20k customers came over from the pre-launch waiting list, so day 0 has someone to sell to.
    customers_before = 20_000 + np.cumsum(signups) - signups
    first_order_id = 100_001 + np.cumsum(orders) - orders
    return _Calendar(orders, signups, first_order_id, customers_before, noise[2])


def _day_index(day: date) -> int:
    t = (day - EPOCH).days
    if not 0 <= t < _HORIZON:
        raise ValueError(f"{day} is outside the demo calendar ({EPOCH} + {_HORIZON} days)")
    return t


def _day_start(day: date) -> np.datetime64:
    return np.datetime64(day.isoformat(), "s")


def _times_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds since midnight, following the daily traffic curve."""
    hours = rng.choice(24, size=n, p=_HOUR_P)
    return hours * 3600 + rng.integers(0, 3600, size=n)


# --------------------------------------------------------------------------- catalogues

_CATEGORIES = {
    "apparel": ("APP", ["Linen", "Organic Cotton", "Merino", "Relaxed", "Cropped", "Oversized"],
                ["T-Shirt", "Shirt", "Hoodie", "Chinos", "Dress", "Overshirt", "Sweater"]),
    "footwear": ("FTW", ["Trail", "Court", "Suede", "Canvas", "Leather", "Everyday"],
                 ["Sneaker", "Runner", "Boot", "Loafer", "Sandal"]),
    "accessories": ("ACC", ["Recycled", "Waxed", "Classic", "Mini", "Woven"],
                    ["Tote", "Backpack", "Cap", "Belt", "Beanie", "Wallet"]),
    "home": ("HOM", ["Stoneware", "Linen", "Washed", "Ribbed", "Oak"],
             ["Mug", "Throw", "Candle", "Pillow Cover", "Tray", "Vase"]),
    "beauty": ("BEA", ["Daily", "Hydrating", "Mineral", "Repair", "Calming"],
               ["Face Wash", "Moisturizer", "SPF 30", "Lip Balm", "Serum"]),
}
_PRODUCTS = 400


@dataclass(frozen=True)
class _Catalogue:
    product_id: np.ndarray
    sku: list[str]
    name: list[str]
    category: list[str]
    price_cents: np.ndarray
    cost_cents: np.ndarray
    active: np.ndarray
    popularity: np.ndarray  # order probability over active products


@lru_cache(maxsize=8)
def _catalogue(seed: int) -> _Catalogue:
    rng = np.random.default_rng([seed, 0xCA7])
    ids = np.arange(1001, 1001 + _PRODUCTS)
    cats = list(_CATEGORIES)
    cat_idx = rng.integers(0, len(cats), size=_PRODUCTS)
    base_price = {"apparel": 45, "footwear": 110, "accessories": 35, "home": 28, "beauty": 22}
    names, skus, categories, prices = [], [], [], []
    spread = rng.lognormal(0.0, 0.35, _PRODUCTS)
    for pid, ci, u in zip(ids.tolist(), cat_idx.tolist(), spread.tolist(), strict=True):
        cat = cats[ci]
        code, adjectives, nouns = _CATEGORIES[cat]
        names.append(f"{adjectives[pid % len(adjectives)]} {nouns[(pid // 7) % len(nouns)]}")
        skus.append(f"{code}-{pid:05d}")
        categories.append(cat)
        prices.append(int(round(base_price[cat] * u)) * 100 + 99)  # 44.99-style prices
    price = np.array(prices, dtype=np.int64)
    cost = np.rint(price * rng.uniform(0.35, 0.6, _PRODUCTS)).astype(np.int64)
    active = rng.random(_PRODUCTS) < 0.94
    weights = np.where(active, 1.0 / (1 + rng.permutation(_PRODUCTS)) ** 0.9, 0.0)
    return _Catalogue(ids, skus, names, categories, price, cost, active, weights / weights.sum())


_FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Lucas",
          "Amelia", "Mateo", "Harper", "Ethan", "Aria", "Leo", "Chloe", "Henry", "Zoe", "Omar",
          "Priya", "Wei", "Fatima", "Diego", "Hannah", "Jonas", "Lea", "Yuki", "Sara", "Ben"]
_LAST = ["Smith", "Johnson", "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson", "Anderson",
         "Thomas", "Moore", "Lee", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green",
         "Baker", "Nguyen", "Patel", "Kim", "Schmidt", "Muller", "Dubois", "Rossi", "Khan"]
_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "hey.com"]
_COUNTRIES = np.array(["US", "CA", "GB", "DE", "FR", "AU"])
_COUNTRY_CUM = np.cumsum([0.6, 0.1, 0.12, 0.08, 0.05, 0.05])

# (campaign_id, utm_campaign, channels it runs on, daily budget per channel in USD)
_CAMPAIGNS = [
    (101, "always_on_brand_search", ("google",), 6500),
    (102, "generic_search_apparel", ("google",), 11000),
    (103, "prospecting_lookalike", ("meta", "tiktok"), 9000),
    (104, "retargeting_cart_abandoners", ("google", "meta"), 4500),
    (105, "new_season_launch", ("google", "meta", "tiktok"), 6000),
    (106, "ugc_creators", ("meta", "tiktok"), 3500),
    (107, "shopping_feed_catalog", ("google",), 9500),
    (108, "gift_guide", ("google", "meta", "tiktok"), 3000),
]
_AD_PAIRS = [(cid, name, ch, budget) for cid, name, chs, budget in _CAMPAIGNS for ch in chs]
_CPM = {"google": 14.0, "meta": 9.5, "tiktok": 6.0}
_CTR = {"google": 0.034, "meta": 0.012, "tiktok": 0.009}


# --------------------------------------------------------------------------- one day's shop


@dataclass(frozen=True)
class _ShopDay:
    """Orders, items and payment attempts of one day: what refunds and events refer back to."""

    day: date
    order_id: np.ndarray
    customer_id: np.ndarray
    placed_s: np.ndarray  # seconds since midnight
    channel: np.ndarray
    is_test: np.ndarray  # 1 true, 0 false, -1 not set (the apps never set the flag)
    discount_code: list[str | None]
    status: np.ndarray
    subtotal: np.ndarray  # all money in cents
    discount: np.ndarray
    shipping: np.ndarray
    tax: np.ndarray
    total: np.ndarray
    item_order: np.ndarray  # per line item: index into the order arrays
    item_line: np.ndarray
    item_product: np.ndarray
    item_qty: np.ndarray
    item_price: np.ndarray
    item_discount: np.ndarray
    pay_order: np.ndarray  # per payment attempt: index into the order arrays
    pay_attempt: np.ndarray
    pay_ok: np.ndarray
    pay_s: np.ndarray
    pay_method: np.ndarray
    pay_brand: np.ndarray
    pay_failure: np.ndarray
    succeeded_payment: np.ndarray  # per order: row in the payment arrays, -1 if none
    new_customers: np.ndarray  # ids of today's signups


_CODES = np.array(["WELCOME10", "SPRING15", "VIP20", "FREESHIP"])
_CODE_PCT = np.array([10, 15, 20, 0])
_METHODS = np.array(["card", "paypal", "apple_pay", "klarna"])
_BRANDS = np.array(["visa", "mastercard", "amex"])
_FAILURES = np.array(["card_declined", "insufficient_funds", "expired_card", "processing_error"])
_DAY_END = 86_399


@lru_cache(maxsize=24)
def _shop_day(seed: int, day: date) -> _ShopDay:
    t = _day_index(day)
    cal, cat = _calendar(seed), _catalogue(seed)
    rng = _rng(seed, t, 1)
    n = int(cal.orders[t])
    order_id = cal.first_order_id[t] + np.arange(n)
    placed = np.sort(_times_of_day(rng, n))
    channel = rng.choice(np.array(["web", "ios", "android"]), size=n, p=[0.5, 0.31, 0.19])
    is_test = np.where(channel == "web", (rng.random(n) < 0.003).astype(np.int64), -1)

    # Customers: some of today's signups buy straight away, the rest are returning customers,
    # recent ones more likely than old ones.
    base = int(cal.customers_before[t])
    signups = base + 1 + np.arange(int(cal.signups[t]))
    customer = base - np.floor(base * rng.random(n) ** 2.5).astype(np.int64)
    n_new = min(len(signups), int(0.4 * len(signups)))
    new_buyers = rng.choice(signups, size=n_new, replace=False)
    customer[rng.choice(n, size=n_new, replace=False)] = new_buyers

    has_code = rng.random(n) < 0.15
    code_idx = rng.integers(0, len(_CODES), size=n)
    discount_code = [str(_CODES[c]) if h else None
                     for c, h in zip(code_idx.tolist(), has_code.tolist(), strict=True)]
    pct = np.where(has_code, _CODE_PCT[code_idx], 0)

    # Line items: 1-8 per order, popular products more often.
    n_items = 1 + np.minimum(rng.poisson(1.4, n), 7)
    item_order = np.repeat(np.arange(n), n_items)
    item_line = np.arange(len(item_order)) - np.repeat(np.cumsum(n_items) - n_items, n_items) + 1
    pick = rng.choice(len(cat.product_id), size=len(item_order), p=cat.popularity)
    item_qty = rng.choice([1, 2, 3], size=len(item_order), p=[0.82, 0.14, 0.04])
    item_price = cat.price_cents[pick]
    item_discount = np.rint(item_qty * item_price * pct[item_order] / 100).astype(np.int64)

    subtotal = np.bincount(item_order, item_qty * item_price, minlength=n).astype(np.int64)
    discount = np.bincount(item_order, item_discount, minlength=n).astype(np.int64)
    free_shipping = (subtotal - discount >= 7500) | ((code_idx == 3) & has_code)
    shipping = np.where(free_shipping, 0, 695)
    tax = np.rint((subtotal - discount) * 0.0825).astype(np.int64)
    total = subtotal - discount + shipping + tax

    # Payment attempts: ~8% of orders see a declined card before the charge that succeeds;
    # ~1.5% never pay and stay pending.
    fails = rng.choice([0, 1, 2], size=n, p=[0.925, 0.065, 0.01])
    pending = rng.random(n) < 0.015
    fails = np.where(pending, np.maximum(fails, 1), fails)
    attempts = fails + (~pending)
    pay_order = np.repeat(np.arange(n), attempts)
    pay_attempt = np.arange(len(pay_order)) - np.repeat(np.cumsum(attempts) - attempts, attempts)
    pay_ok = (pay_attempt == fails[pay_order]) & ~pending[pay_order]
    retry_s = 20 + pay_attempt * 45 + rng.integers(0, 40, len(pay_order))
    pay_s = np.minimum(placed[pay_order] + retry_s, _DAY_END)
    method_idx = rng.choice(4, size=n, p=[0.7, 0.15, 0.1, 0.05])
    pay_method = _METHODS[method_idx][pay_order]
    brand = _BRANDS[rng.choice(3, size=n, p=[0.55, 0.33, 0.12])][pay_order]
    pay_brand = np.where(np.isin(pay_method, ["card", "apple_pay"]), brand, "")
    failure = _FAILURES[rng.choice(4, size=len(pay_order), p=[0.6, 0.25, 0.1, 0.05])]
    pay_failure = np.where(pay_ok, "", failure)
    succeeded = np.full(n, -1)
    succeeded[pay_order[pay_ok]] = np.flatnonzero(pay_ok)

    # Status at export time: morning orders have often shipped by the evening.
    hour = placed // 3600
    fulfilled = rng.random(n) < np.where(hour < 14, 0.6, 0.12)
    cancelled = rng.random(n) < 0.025
    status = np.where(pending, "pending", np.where(cancelled, "cancelled",
                                                     np.where(fulfilled, "fulfilled", "paid")))
    return _ShopDay(day, order_id, customer, placed, channel, is_test, discount_code, status,
                    subtotal, discount, shipping, tax, total, item_order, item_line,
                    cat.product_id[pick], item_qty, item_price, item_discount, pay_order,
                    pay_attempt, pay_ok, pay_s, pay_method, pay_brand, pay_failure, succeeded,
                    signups)


def _payment_ids(shop: _ShopDay, rows: np.ndarray | None = None) -> list[str]:
    """Ids of the payment attempts at `rows` (all of them by default)."""
    rows = np.arange(len(shop.pay_order)) if rows is None else rows
    return _hex_ids("pay_", shop.order_id[shop.pay_order[rows]] * 8 + shop.pay_attempt[rows], 0x9A1)


# --------------------------------------------------------------------------- tables


@dataclass
class _Table:
    """One day's file of one upstream table, as the text values that end up on disk."""

    source: str
    name: str
    columns: dict[str, list[str | None]]
    quoted: set[str] = field(default_factory=set)  # JSON strings (the rest are raw JSON)

    @property
    def fmt(self) -> str:
        return TABLES[(self.source, self.name)]


def _money(cents: np.ndarray) -> list[str]:
    return [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]


def _ints(x: np.ndarray) -> list[str]:
    return [str(v) for v in x.tolist()]


def _opt(values: Sequence[str]) -> list[str | None]:
    return [v or None for v in values]


def _opt_ints(x: np.ndarray) -> list[str | None]:
    """Integers with -1 meaning null."""
    return [None if v < 0 else str(v) for v in x.tolist()]


def _timestamps(day: date, seconds: np.ndarray, sep: str = " ", suffix: str = "") -> list[str]:
    stamps = np.datetime_as_string(_day_start(day) + seconds.astype("timedelta64[s]"), unit="s")
    return [s.replace("T", sep) + suffix for s in stamps.tolist()]


def _bools(x: np.ndarray) -> list[str | None]:
    return [None if v < 0 else ("true" if v else "false") for v in x.tolist()]


def _orders(shop: _ShopDay, seed: int) -> _Table:
    country = _customer_country(shop.customer_id, seed)
    updated = np.minimum(shop.placed_s + np.where(shop.status == "paid", 90, 5400), _DAY_END)
    return _Table("shop", "orders", {
        "order_id": _ints(shop.order_id),
        "customer_id": _ints(shop.customer_id),
        "created_at": _timestamps(shop.day, shop.placed_s),
        "status": shop.status.tolist(),
        "sales_channel": shop.channel.tolist(),
        "currency": ["USD"] * len(shop.order_id),
        "subtotal_amount": _money(shop.subtotal),
        "discount_amount": _money(shop.discount),
        "shipping_amount": _money(shop.shipping),
        "tax_amount": _money(shop.tax),
        "total_amount": _money(shop.total),
        "discount_code": list(shop.discount_code),
        "shipping_country": country.tolist(),
        "is_test": _bools(shop.is_test),
        "updated_at": _timestamps(shop.day, updated),
    })


def _order_items(shop: _ShopDay) -> _Table:
    oid = shop.order_id[shop.item_order]
    return _Table("shop", "order_items", {
        "order_item_id": _ints(oid * 100 + shop.item_line),
        "order_id": _ints(oid),
        "line_number": _ints(shop.item_line),
        "product_id": _ints(shop.item_product),
        "quantity": _ints(shop.item_qty),
        "unit_price": _money(shop.item_price),
        "discount_amount": _money(shop.item_discount),
    })


def _customer_country(customer_id: np.ndarray, seed: int) -> np.ndarray:
    u = _unit(customer_id, seed * 31 + 7)
    return _COUNTRIES[np.searchsorted(_COUNTRY_CUM, u, side="right")]


def _customers(shop: _ShopDay, seed: int) -> _Table:
    cal = _calendar(seed)
    # Today's export: everyone created today, and everyone whose record an order touched.
    ids, idx = np.unique(shop.customer_id[::-1], return_index=True)  # last order per customer
    last_order = shop.placed_s[::-1][idx]
    signup_only = np.setdiff1d(shop.new_customers, ids)
    signup_s = (_unit(signup_only, seed * 31 + 11) * 86_000).astype(np.int64)
    ids = np.concatenate([ids, signup_only])
    updated = np.concatenate([last_order, signup_s])
    order = np.argsort(ids)
    ids, updated = ids[order], updated[order]

    signup_day = np.searchsorted(cal.customers_before, ids, side="left") - 1
    signup_day = np.maximum(signup_day, 0)
    signup_dates = np.datetime_as_string(
        np.datetime64(EPOCH.isoformat(), "D") + signup_day.astype("timedelta64[D]"), unit="D")
    h1, h2 = _mix(ids, seed * 31 + 1), _mix(ids, seed * 31 + 2)
    first = [_FIRST[v % len(_FIRST)] for v in h1.tolist()]
    last = [_LAST[v % len(_LAST)] for v in h2.tolist()]
    domain = [_DOMAINS[(v >> 20) % len(_DOMAINS)] for v in h1.tolist()]
    email = [f"{f}.{ln}{i % 1000}@{d}".lower()
             for f, ln, i, d in zip(first, last, ids.tolist(), domain, strict=True)]
    opt_in = _unit(ids, seed * 31 + 3) < 0.58
    return _Table("shop", "customers", {
        "customer_id": _ints(ids),
        "email": email,
        "first_name": first,
        "last_name": last,
        "country_code": _customer_country(ids, seed).tolist(),
        "signup_date": signup_dates.tolist(),
        "accepts_marketing": _bools(opt_in.astype(np.int64)),
        "updated_at": _timestamps(shop.day, updated),
    })


def _products(cat: _Catalogue) -> _Table:
    return _Table("shop", "products", {
        "product_id": _ints(cat.product_id),
        "sku": cat.sku,
        "product_name": cat.name,
        "category": cat.category,
        "list_price": _money(cat.price_cents),
        "unit_cost": _money(cat.cost_cents),
        "is_active": _bools(cat.active.astype(np.int64)),
    })


def _payments(shop: _ShopDay) -> _Table:
    rows = shop.pay_order
    return _Table("payments", "payments", {
        "payment_id": _payment_ids(shop),
        "order_id": _ints(shop.order_id[rows]),
        "created_at": _timestamps(shop.day, shop.pay_s, "T", "Z"),
        "amount": _money(shop.total[rows]),
        "currency": ["usd"] * len(rows),
        "status": np.where(shop.pay_ok, "succeeded", "failed").tolist(),
        "payment_method": shop.pay_method.tolist(),
        "card_brand": _opt(shop.pay_brand.tolist()),
        "failure_code": _opt(shop.pay_failure.tolist()),
        "livemode": ["false" if v == 1 else "true" for v in shop.is_test[rows].tolist()],
    }, quoted={"payment_id", "created_at", "currency", "status", "payment_method", "card_brand",
               "failure_code"})


_RETURN_RATE = 0.045
_RETURN_LAG = (3, 14)  # days between an order and the refund of its return


def _refunds(seed: int, day: date) -> _Table:
    """Cancellations of today's orders, and returns of orders placed 3-14 days ago."""
    t = _day_index(day)
    rng = _rng(seed, t, 5)
    pay_ids: list[str] = []
    order_ids, amounts, times = [], [], []
    for lag in (0, *range(_RETURN_LAG[0], _RETURN_LAG[1] + 1)):
        if t - lag < 0:
            continue
        shop = _shop_day(seed, date.fromordinal(day.toordinal() - lag))
        live = (shop.succeeded_payment >= 0) & (shop.is_test != 1)
        if lag == 0:  # cancelled within hours of paying, refunded in full
            picked = np.flatnonzero(live & (shop.status == "cancelled"))
            share = np.ones(len(picked))
            paid_s = shop.pay_s[shop.succeeded_payment[picked]]
            at = np.minimum(paid_s + rng.integers(600, 4 * 3600, len(picked)), _DAY_END)
        else:  # whether and when an order comes back is a property of the order
            returned = _unit(shop.order_id, seed * 31 + 21) < _RETURN_RATE
            spread = np.uint64(_RETURN_LAG[1] - _RETURN_LAG[0] + 1)
            lags = _RETURN_LAG[0] + (_mix(shop.order_id, seed * 31 + 22) % spread).astype(int)
            picked = np.flatnonzero(live & (shop.status != "cancelled") & returned & (lags == lag))
            partial = rng.random(len(picked)) < 0.35
            share = np.where(partial, rng.uniform(0.2, 0.8, len(picked)), 1.0)
            at = _times_of_day(rng, len(picked))
        pay_ids += _payment_ids(shop, shop.succeeded_payment[picked])
        order_ids.append(shop.order_id[picked])
        amounts.append(np.rint(shop.total[picked] * share).astype(np.int64))
        times.append(at)
    by_time = np.argsort(np.concatenate(times), kind="stable")
    order_id = np.concatenate(order_ids)[by_time]
    n = len(by_time)
    reason = rng.choice(["requested_by_customer", "duplicate", "fraudulent"], size=n,
                        p=[0.93, 0.05, 0.02])
    return _Table("payments", "refunds", {
        "refund_id": _hex_ids("re_", order_id, 0x9A2),  # at most one refund per order
        "payment_id": [pay_ids[i] for i in by_time.tolist()],
        "order_id": _ints(order_id),
        "created_at": _timestamps(day, np.concatenate(times)[by_time], "T", "Z"),
        "amount": _money(np.concatenate(amounts)[by_time]),
        "currency": ["usd"] * n,
        "reason": reason.tolist(),
        "status": ["succeeded"] * n,
    }, quoted={"refund_id", "payment_id", "created_at", "currency", "reason", "status"})


_UTM = [  # (utm_source, utm_medium, share of sessions)
    ("google", "cpc", 0.30), ("meta", "paid_social", 0.22), ("tiktok", "paid_social", 0.08),
    ("newsletter", "email", 0.10), ("", "", 0.30),
]
_DEVICES = np.array(["desktop", "mobile", "tablet", "app"])


def _session_utm(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src_idx = rng.choice(len(_UTM), size=n, p=[u[2] for u in _UTM])
    source = np.array([u[0] for u in _UTM])[src_idx]
    medium = np.array([u[1] for u in _UTM])[src_idx]
    campaign = np.full(n, "", dtype=object)
    for ch in _CPM:
        names = [p[1] for p in _AD_PAIRS if p[2] == ch]
        budgets = np.array([p[3] for p in _AD_PAIRS if p[2] == ch], dtype=float)
        rows = np.flatnonzero(source == ch)
        pick = rng.choice(len(names), size=len(rows), p=budgets / budgets.sum())
        campaign[rows] = np.array(names)[pick]
    campaign[source == "newsletter"] = "weekly_digest"
    return source, medium, campaign


def _events(shop: _ShopDay, seed: int) -> _Table:
    """Funnel events: a session per tracked order (ad blockers hide ~15%), plus sessions
    that browsed without buying. UTM parameters are per session and repeated on its events."""
    t = _day_index(shop.day)
    rng = _rng(seed, t, 6)
    tracked = np.flatnonzero((shop.is_test != 1) & (shop.status != "pending")
                             & (rng.random(len(shop.order_id)) < 0.85))
    n_buy, n_browse = len(tracked), int(0.4 * len(shop.order_id))
    n_sess = n_buy + n_browse
    views = rng.integers(1, 3, size=n_sess)
    browse_depth = rng.choice([0, 1, 2], size=n_browse, p=[0.6, 0.3, 0.1])
    depth = np.concatenate([np.full(n_buy, 3), browse_depth])  # buyers go all the way
    per_session = views + depth
    sess = np.repeat(np.arange(n_sess), per_session)
    step = np.arange(len(sess)) - np.repeat(np.cumsum(per_session) - per_session, per_session)
    v = views[sess]
    name = np.select([step < v, step == v, step == v + 1], ["product_view", "add_to_cart",
                     "checkout_started"], "purchase")

    end = np.concatenate([shop.placed_s[tracked], _times_of_day(rng, n_browse)])
    start = end - np.minimum(rng.integers(180, 1500, size=n_sess), end // 2)  # not before midnight
    frac = step / np.maximum(per_session[sess] - 1, 1)
    at_ms = (start[sess] * 1000 + frac * (end - start)[sess] * 1000).astype(np.int64)

    browse_known = rng.random(n_browse) < 0.3  # logged in while browsing
    browse_customer = shop.customer_id[rng.integers(0, len(shop.customer_id), n_browse)]
    customer = np.concatenate([shop.customer_id[tracked],
                               np.where(browse_known, browse_customer, -1)])
    order = np.concatenate([shop.order_id[tracked], np.full(n_browse, -1)])
    device = np.concatenate([np.where(shop.channel[tracked] == "web", "desktop", "app"),
                             _DEVICES[rng.choice(3, size=n_browse, p=[0.4, 0.5, 0.1])]])
    device[(device == "desktop") & (rng.random(n_sess) < 0.5)] = "mobile"
    source, medium, campaign = _session_utm(rng, n_sess)
    session_key = np.int64(t) * 1_000_000 + np.arange(n_sess)
    session_id = np.array(_hex_ids("s_", session_key, seed * 31 + 42))
    # Session keys (> 1e9) never collide with customer ids, so one hash serves both.
    visitor = np.where(customer >= 0, customer, session_key)
    anonymous_id = np.array(_hex_ids("a_", visitor, seed * 31 + 43))
    browsing = (name == "product_view") | (name == "add_to_cart")
    product = np.where(browsing, rng.choice(_catalogue(seed).product_id, size=len(sess)), -1)

    timeline = np.argsort(at_ms, kind="stable")
    sess, name, at_ms, product = sess[timeline], name[timeline], at_ms[timeline], product[timeline]
    order_of_event = np.where(name == "purchase", order[sess], -1)
    stamps = np.datetime_as_string(np.datetime64(shop.day.isoformat(), "ms")
                                   + at_ms.astype("timedelta64[ms]"), unit="ms")
    return _Table("marketing", "events", {
        "event_id": _uuids(np.int64(t) * 10_000_000 + timeline, seed * 31 + 41),
        "event_name": name.tolist(),
        "occurred_at": [s + "Z" for s in stamps.tolist()],
        "session_id": session_id[sess].tolist(),
        "anonymous_id": anonymous_id[sess].tolist(),
        "customer_id": _opt_ints(customer[sess]),
        "order_id": _opt_ints(order_of_event),
        "product_id": _opt_ints(product),
        "utm_source": _opt(source[sess].tolist()),
        "utm_medium": _opt(medium[sess].tolist()),
        "utm_campaign": _opt(campaign[sess].tolist()),
        "device_type": device[sess].tolist(),
    }, quoted={"event_id", "event_name", "occurred_at", "session_id", "anonymous_id",
               "utm_source", "utm_medium", "utm_campaign", "device_type"})


def _ad_spend(seed: int, day: date) -> _Table:
    t = _day_index(day)
    rng = _rng(seed, t, 7)
    cal = _calendar(seed)
    growth = _GROWTH ** (t - (_REF_DAY - EPOCH).days)
    factor = _SPEND_DOW[day.weekday()] * growth * (1 + cal.spend_noise[t])
    spend = np.array([p[3] for p in _AD_PAIRS]) * factor * rng.uniform(0.85, 1.15, len(_AD_PAIRS))
    spend_cents = np.rint(spend * 100).astype(np.int64)
    cpm = np.array([_CPM[p[2]] for p in _AD_PAIRS]) * rng.uniform(0.9, 1.1, len(_AD_PAIRS))
    impressions = np.rint(spend / cpm * 1000).astype(np.int64)
    ctr = np.array([_CTR[p[2]] for p in _AD_PAIRS]) * rng.uniform(0.85, 1.15, len(_AD_PAIRS))
    clicks = rng.binomial(impressions, ctr)
    n = len(_AD_PAIRS)
    return _Table("marketing", "ad_spend", {
        "date": [day.isoformat()] * n,
        "campaign_id": [str(p[0]) for p in _AD_PAIRS],
        "campaign_name": [p[1] for p in _AD_PAIRS],
        "channel": [p[2] for p in _AD_PAIRS],
        "impressions": _ints(impressions),
        "clicks": _ints(clicks),
        "spend": _money(spend_cents),
        "currency": ["usd"] * n,
    }, quoted={"date", "campaign_name", "channel", "currency"})


# --------------------------------------------------------------------------- faults on tables


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T].*)?")


def _values(table: _Table, column: str, shape: re.Pattern[str] | None = None) -> list[str | None]:
    """The column's values; with `shape`, refuse a column whose values do not have it."""
    if column not in table.columns:
        raise ValueError(f"{table.source}.{table.name} has no column {column!r}; "
                         f"it has {', '.join(table.columns)}")
    values = table.columns[column]
    if shape and not all(shape.fullmatch(v) for v in values if v is not None):
        raise ValueError(f"{table.source}.{table.name}.{column} is not a {shape.pattern} column")
    return values


def _scale(value: str | None, factor: float) -> str | None:
    if value is None:
        return None
    if "." in value:
        return f"{float(value) * factor:.2f}"
    return str(int(round(int(value) * factor)))


def _day_first(value: str | None) -> str | None:
    """`2026-11-23[ 14:03:22]` as `23/11/2026[ 14:03:22]`: a European export locale."""
    if value is None:
        return None
    return f"{value[8:10]}/{value[5:7]}/{value[0:4]}{value[10:]}"


def _apply(table: _Table, fault: UpstreamFault, rng: np.random.Generator) -> None:
    col = fault.column or ""
    if fault.kind == "rename_column":
        assert fault.new_name
        _values(table, col)
        table.columns = {(fault.new_name if k == col else k): v for k, v in table.columns.items()}
        if col in table.quoted:
            table.quoted = (table.quoted - {col}) | {fault.new_name}
    elif fault.kind == "drop_column":
        _values(table, col)
        del table.columns[col]
    elif fault.kind == "scale_column":
        assert fault.factor is not None
        table.columns[col] = [_scale(v, fault.factor) for v in _values(table, col, _NUMBER)]
    elif fault.kind == "null_fraction":
        assert fault.fraction is not None
        values = _values(table, col)
        hit = rng.random(len(values)) < fault.fraction
        table.columns[col] = [None if h else v for v, h in zip(values, hit.tolist(), strict=True)]
    elif fault.kind == "bad_date_format":
        table.columns[col] = [_day_first(v) for v in _values(table, col, _ISO_DATE)]


# --------------------------------------------------------------------------- files


def _render(table: _Table) -> str:
    names = list(table.columns)
    out = io.StringIO()
    if table.fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        columns = (["" if v is None else v for v in col] for col in table.columns.values())
        writer.writerows(zip(*columns, strict=True))
        return out.getvalue()
    template = "{{" + ",".join(f'"{n}":{{}}' for n in names) + "}}\n"
    tokens = [
        ["null" if v is None else f'"{v}"' for v in values] if name in table.quoted
        else ["null" if v is None else v for v in values]
        for name, values in table.columns.items()
    ]
    return "".join(template.format(*row) for row in zip(*tokens, strict=True))


def partition_dir(landing: Path, source: str, table: str, day: date) -> Path:
    """Where upstream drops one day of one table."""
    return landing / source / table / f"dt={day.isoformat()}"


def _write(table: _Table, landing: Path, day: date, duplicate: bool) -> list[Path]:
    folder = partition_dir(landing, table.source, table.name, day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-0000.{table.fmt}"
    path.write_text(_render(table), encoding="utf-8")
    if not duplicate:
        return [path]
    # The classic re-sent file: the same bytes again under the name a browser download gives it.
    copy = folder / f"part-0000 (1).{table.fmt}"
    shutil.copyfile(path, copy)
    return [path, copy]


def _build_tables(day: date, *, seed: int) -> list[_Table]:
    """All upstream tables for one day, before faults."""
    shop, cat = _shop_day(seed, day), _catalogue(seed)
    return [
        _orders(shop, seed),
        _order_items(shop),
        _customers(shop, seed),
        _products(cat),
        _payments(shop),
        _refunds(seed, day),
        _events(shop, seed),
        _ad_spend(seed, day),
    ]


def deliver_day(
    landing: Path, day: date, *, seed: int, faults: Sequence[UpstreamFault] = ()
) -> list[Path]:
    """Write what every upstream system delivers for `day`; return the files written.

    Files land in `landing/<source>/<table>/dt=YYYY-MM-DD/part-0000.<csv|jsonl>`. A day that
    was delivered before is replaced, so re-delivering with or without faults is exact.
    The same seed and day always give byte-identical files.
    """
    files: list[Path] = []
    for table in _build_tables(day, seed=seed):
        mine = [f for f in faults if (f.source, f.table) == (table.source, table.name)]
        folder = partition_dir(landing, table.source, table.name, day)
        if folder.exists():
            shutil.rmtree(folder)
        if any(f.kind == "missing_partition" for f in mine):
            continue
        for i, fault in enumerate(mine):
            _apply(table, fault, _rng(seed, _day_index(day), 100 + i))
        duplicate = any(f.kind == "duplicate_file" for f in mine)
        files += _write(table, landing, day, duplicate=duplicate)
    return files
