"""The code and config changes behind the fault scenarios, as exact text edits.

Each edit is what a colleague would commit: a small, plausible change with a commit message
that reads fine in review, and a consequence nobody intended. Scenarios apply one to the
platform's repository and commit it with `message`; the fix is `edit.reverted()`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class EditError(RuntimeError):
    """The file no longer contains the text an edit expects (exactly once)."""


class FileEdit(BaseModel):
    """Replace `old` with `new` in `path` (relative to the repository root)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    old: str
    new: str
    message: str

    def apply(self, repo: Path) -> None:
        target = repo / self.path
        text = target.read_text(encoding="utf-8")
        count = text.count(self.old)
        if count != 1:
            raise EditError(f"{self.path}: expected the text to replace exactly once, found it "
                            f"{count} times:\n{self.old}")
        target.write_text(text.replace(self.old, self.new), encoding="utf-8")

    def reverted(self) -> FileEdit:
        """The edit that undoes this one."""
        subject = self.message.splitlines()[0]
        return FileEdit(path=self.path, old=self.new, new=self.old,
                        message=f'Revert "{subject}"\n\nThis reverts the change to {self.path}.')


FANOUT_EDIT = FileEdit(
    path="models/intermediate/commerce/int_orders_enriched.sql",
    old="""\
-- a declined card is retried, so an order can have several attempts: only the charge
-- that went through counts (at most one per order)
payments as (

    select
        order_id,
        payment_id,
        payment_method,
        created_at as paid_at,
        amount as amount_paid

    from {{ ref('stg_payments__payments') }}
    where payment_status = 'succeeded'

),
""",
    new="""\
payments as (

    select
        order_id,
        payment_id,
        payment_method,
        created_at as paid_at,
        amount as amount_paid

    from {{ ref('stg_payments__payments') }}

),
""",
    message="""\
Simplify payments CTE in int_orders_enriched

The PSP export only carries captured charges since the checkout
migration (PAY-1432), so the status filter is dead code.""",
)
"""Orders with a declined attempt before the successful charge join twice: fct_orders gets
duplicate order_ids (its unique test fails) and paid amounts are double counted."""


CONFIG_EDIT = FileEdit(
    path="loaders/shop_orders.yml",
    old="filter: coalesce(is_test, false) = false\n",
    new="filter: not is_test\n",
    message="""\
shop_orders: simplify test-order filter

is_test is a boolean column now (typed in the loader config), so the
coalesce is redundant.""",
)
"""`not is_test` is NULL for app orders, which never set the flag: the loader silently skips
every iOS and Android order (about half of orders and revenue). No dbt test fails."""


EDITS: dict[str, FileEdit] = {"fanout": FANOUT_EDIT, "config": CONFIG_EDIT}
