"""Post-merging of Drain clusters into templates.

Drain splits one event into several clusters in two ways that masking cannot prevent:

- a value of varying length: `sent 1190 bytes` / `sent 1190 bytes (1.16 KB)`. Each cluster
  is reduced to a *skeleton* in which every run of value-only tokens is one `<*>`, and
  clusters with the same skeleton are one template.
- a value that is a word: `Failed password for root` / `… for admin`. `MaskAwareDrain`
  keeps differing words apart, because most of the time they name different events.
  A position is taken to be a value only when it takes many different words in otherwise
  identical skeletons (at least `min_distinct`, with at least `min_context` other words
  around it so that short messages such as `active` / `blocked` are not merged), or when
  one of those skeletons already has a value there. The skeletons are then united, with
  a union-find, into one template with `<*>` at that position.

Both steps are deterministic: the same messages in the same order give the same groups.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.intake.template_tokens import PLACEHOLDER, WILDCARD, is_variable

Skeleton = tuple[str, ...]
# A bucket key is a skeleton's tokens joined by a separator, one of them replaced by a hole:
# a string, cheaper to build, hash and keep than a tuple. Tokens hold no whitespace (they
# were split on it) and no NUL (`clean_text` drops control characters), so keys are exact.
_SEPARATOR = "\x1f"
_HOLE = "\x00"


def skeleton(tokens: Sequence[str]) -> tuple[Skeleton, tuple[int, ...]]:
    """The cluster template's skeleton, and for each skeleton token its template position."""
    out: list[str] = []
    positions: list[int] = []
    for i, token in enumerate(tokens):
        if "<" not in token:  # a word: most tokens, one test
            out.append(token)
        elif token == WILDCARD or is_variable(token):
            if out and out[-1] == WILDCARD:
                continue
            out.append(WILDCARD)
        else:
            out.append(PLACEHOLDER.sub(WILDCARD, token))
        positions.append(i)
    return tuple(out), tuple(positions)


class TemplateGroups:
    """Skeletons united into templates; see the module docstring."""

    def __init__(self, min_distinct: int = 4, min_context: int = 3) -> None:
        if min_distinct < 2:
            raise ValueError(f"min_distinct must be at least 2, not {min_distinct}")
        self.min_distinct = min_distinct
        self.min_context = min_context
        self._order: dict[Skeleton, int] = {}
        # Read by the templater's hot path; change only through `add`.
        self.parent: dict[Skeleton, Skeleton] = {}  # union-find: skeleton -> a skeleton above
        self.merged: dict[Skeleton, Skeleton] = {}  # root -> the group's template tokens
        # Bucket key -> its skeletons; a lone skeleton is kept bare, without a list: most
        # buckets never get a second one, and a list each would be tens of thousands of
        # objects for the garbage collector to walk.
        self._buckets: dict[str, Skeleton | list[Skeleton]] = {}
        self._open: set[str] = set()  # buckets whose position is known to be a value
        self.counts: dict[Skeleton, int] = {}  # group root -> messages
        # Both roots of every union since the caller last emptied this list: the groups
        # that joined or generalised, so that a caller keeping views of groups refreshes
        # only those.
        self.united: list[Skeleton] = []

    def add(self, skel: Skeleton, count: int = 0) -> Skeleton:
        """Register a skeleton (once), count `count` messages for it, return its group root."""
        if skel not in self._order:
            self._order[skel] = len(self._order)
            self.parent[skel] = skel
            self.merged[skel] = skel
            for hole, key in self._bucket_keys(skel):
                self._join_bucket(hole, key, skel)
        root = self.find(skel)
        if count:
            self.bump(root, count)
        return root

    def bump(self, root: Skeleton, count: int = 1) -> int:
        """Count messages for a group; its new count."""
        total = self.counts[root] = self.counts.get(root, 0) + count
        return total

    def lookup(self, skel: Skeleton) -> Skeleton | None:
        """The group a skeleton would join, without registering it."""
        if skel in self._order:
            return self.find(skel)
        for hole, key in self._bucket_keys(skel):
            members = self._members(key)
            if members and (key in self._open or self._has_value_at_hole(hole, members)):
                return self.find(members[0])
        return None

    def find(self, skel: Skeleton) -> Skeleton:
        parent = self.parent
        root = skel
        while parent[root] != root:
            root = parent[root]
        while parent[skel] != root:  # path compression
            parent[skel], skel = root, parent[skel]
        return root

    def text(self, root: Skeleton) -> str:
        return " ".join(self.merged[root])  # cached by the caller, per `tokens(root)`

    def tokens(self, root: Skeleton) -> Skeleton:
        """The group's template: its skeletons, `<*>` where they differ."""
        return self.merged[root]

    def count(self, root: Skeleton) -> int:
        return self.counts.get(root, 0)

    def roots(self) -> list[Skeleton]:
        return list(self.merged)

    def _bucket_keys(self, skel: Skeleton) -> list[tuple[int, str]]:
        """(hole, key) of each bucket the skeleton belongs to: itself with one word, or one
        value, replaced by a hole."""
        # In a skeleton every placeholder is `<*>` (see `skeleton`): a plain `in` test
        # tells words from values, without a regex per token.
        is_word = [WILDCARD not in token for token in skel]
        words = sum(is_word)
        if words < self.min_context:
            return []
        joined = _SEPARATOR.join(skel)
        keys = []
        start = 0
        for i, token in enumerate(skel):
            end = start + len(token)
            # Enough wording around the hole that the rest of the message names the event.
            if (is_word[i] and words > self.min_context) or token == WILDCARD:
                keys.append((i, joined[:start] + _HOLE + joined[end:]))
            start = end + 1
        return keys

    def _members(self, key: str) -> list[Skeleton]:
        found = self._buckets.get(key)
        if found is None:
            return []
        return [found] if isinstance(found, tuple) else found

    def _join_bucket(self, hole: int, key: str, skel: Skeleton) -> None:
        found = self._buckets.get(key)
        if found is None:
            # Alone in its bucket: nothing to join (`min_distinct` is at least 2).
            self._buckets[key] = skel
            return
        members = self._buckets[key] = [found] if isinstance(found, tuple) else found
        members.append(skel)
        if key in self._open:
            self._union(members[0], skel)
        elif len(members) >= self.min_distinct or self._has_value_at_hole(hole, members):
            self._open.add(key)
            for other in members[1:]:
                self._union(members[0], other)

    @staticmethod
    def _has_value_at_hole(hole: int, members: list[Skeleton]) -> bool:
        return len(members) >= 2 and any(m[hole] == WILDCARD for m in members)

    def _union(self, a: Skeleton, b: Skeleton) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        # The earlier skeleton stays root, so the outcome depends only on the input order.
        if self._order[rb] < self._order[ra]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.united += (ra, rb)
        self.counts[ra] = self.counts.get(ra, 0) + self.counts.pop(rb, 0)
        self.merged[ra] = tuple(
            x if x == y else WILDCARD for x, y in zip(self.merged[ra], self.merged[rb])
        )
        del self.merged[rb]
