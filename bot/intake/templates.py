"""Error templates from log messages: the basis of deterministic fingerprints.

`Templater` turns a message (the content of a log line, header stripped: see
`bot.intake.logformats`) into a `Template`: its text with the variable parts replaced by
`<*>`, the values of those parts, and an id. Repeats of one problem that differ only in
ids, numbers, hosts, times… get the same template, so that `fingerprint(template.id, key)`
joins them into one issue.

How: Drain3's `TemplateMiner` (one configuration for every log) with a one-pass masker
(`bot.intake.masking`), a mask-aware Drain (`bot.intake.template_tokens`) and a post-merge
of its clusters (`bot.intake.template_merge`). Most lines repeat the *digit shape* of an
earlier one (its text with every digit a 1): such a line gets its mask plan, and usually
its cluster, from one lookup, and walks neither the masking regex nor Drain's tree.

Ids are a hash of the template text, not Drain's cluster numbers, so that two processes
fed the same lines agree on them. A template can still *generalise* as more lines arrive
(`Failed password for root` becomes `Failed password for <*>` once enough user names were
seen); its id then changes, `Template.previous_id` says from what, and `resolve()` maps any
id ever handed out to the current one.

A `Templater` is not thread-safe; use one per consumer.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from typing import Literal

from drain3 import TemplateMiner
from drain3.drain import LogCluster
from drain3.masking import LogMasker, MaskingInstruction
from drain3.memory_buffer_persistence import MemoryBufferPersistence
from drain3.template_miner_config import TemplateMinerConfig
from pydantic import BaseModel, ConfigDict, Field

from bot.intake.logformats import DEFAULT_MAX_CHARS, clean_text
from bot.intake.masking import DEFAULT_RULES, DIGIT_SHAPE_TABLE, Masker, MaskPlan, MaskRule
from bot.intake.template_merge import Skeleton, TemplateGroups, skeleton
from bot.intake.template_tokens import TYPED_PLACEHOLDER, WILDCARD, MaskAwareDrain

Change = Literal["created", "changed", "none"]
ID_LENGTH = 16  # hex characters: 64 bits, ample for the templates of one deployment
FINGERPRINT_CACHE_SIZE = 8_192  # (template, key) pairs: the problems a deployment has open


class TemplaterConfig(BaseModel):
    """The one configuration used for every log source."""

    model_config = ConfigDict(frozen=True)

    sim_th: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="Share of a message's positions that must equal a cluster's template "
        "to join it. Differing words never join anyway; this bounds how many masked values "
        "may change kind.",
    )
    depth: int = Field(default=4, ge=3, description="Drain's prefix-tree depth.")
    max_children: int = Field(default=100, ge=2, description="Drain's fan-out per tree node.")
    max_chars: int = Field(
        default=DEFAULT_MAX_CHARS, ge=16, description="Longer messages are cut, with a marker."
    )
    min_distinct_words: int = Field(
        default=4, ge=2, description="Different words at one position that make it a value."
    )
    min_context_words: int = Field(
        default=3, ge=1, description="Other words a message needs before a word can be a value."
    )
    repeat_cache_size: int = Field(
        default=20_000,
        ge=1,
        description="Digit shapes remembered with their mask plan (and cluster), and masked "
        "messages with their cluster: their repeats skip the masking regex and Drain.",
    )


class Template:
    """The template a message belongs to. Read-only by convention.

    A plain class, neither pydantic nor a frozen dataclass: one is built per log line, and
    validation (or a frozen `__init__`) would cost a third of what Drain3 spends on the
    whole line. Every field comes from the templater itself. `params` are worked out on
    first read: most callers only need the id.
    """

    __slots__ = ("_params", "_pending", "change", "count", "id", "previous_id", "text")

    def __init__(
        self,
        id: str,  # hash of `text`: equal texts, equal ids, in any process
        text: str,
        count: int,
        change: Change = "none",
        previous_id: str | None = None,
        params: tuple[str, ...] = (),
        pending: _PendingParams | None = None,
    ) -> None:
        self.id = id
        self.text = text  # the template, variable parts as `<*>`
        self.count = count  # messages of this template so far
        # `created`: a template never seen before; `changed`: the template generalised or
        # was merged, and the message's kind had id `previous_id` until now; `none`: known.
        self.change = change
        self.previous_id = previous_id
        self._params = params
        self._pending = pending

    @property
    def params(self) -> tuple[str, ...]:
        """The message's values for the template's variable parts, in order."""
        if self._pending is not None:
            plan, line, tokens, merged = self._pending
            values = plan.values(line)
            if tokens is not None:
                values = _params(tokens, merged, plan.masked_text(line), values)
            self._params, self._pending = values, None
        return self._params

    def _key(self) -> tuple[object, ...]:
        return (self.id, self.text, self.params, self.count, self.change, self.previous_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable by its lazy params

    def __repr__(self) -> str:
        return (
            f"Template(id={self.id!r}, text={self.text!r}, params={self.params!r}, "
            f"count={self.count}, change={self.change!r}, previous_id={self.previous_id!r})"
        )


_new_object = object.__new__

# What `Template.params` needs, captured when the template is handed out: the message's
# mask plan and text (so its masked text and values), and unless its params are just those
# values, the cluster's template tokens and the positions the post-merge made values.
_PendingParams = tuple[MaskPlan, str, tuple[str, ...] | None, frozenset[int]]


def template_id(text: str) -> str:
    """Deterministic id of a template text (Python's `hash()` is salted per process)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=ID_LENGTH // 2).hexdigest()


@functools.lru_cache(maxsize=FINGERPRINT_CACHE_SIZE)
def fingerprint(template_id: str, key: str) -> str:
    """Fingerprint of one problem: a template where it happened (task, asset, resource).
    Repeats of a problem ask again and again: the last few thousand answers are kept."""
    # The unit separator keeps ("ab", "c") and ("a", "bc") apart.
    joined = f"{template_id}\x1f{key}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(joined, digest_size=ID_LENGTH // 2).hexdigest()


class _OnePassMasker(LogMasker):
    """Drain3's masker interface backed by `Masker`'s single pass.

    Drain3's own `LogMasker` runs one `re.sub` per instruction; this keeps its interface
    (mask names, instructions for parameter extraction) and masks in one cached pass.
    """

    def __init__(self, masker: Masker, instructions: list[MaskingInstruction]) -> None:
        super().__init__(instructions, "<", ">")
        self._masker = masker

    def mask(self, content: str) -> str:
        return self._masker.mask(content)


class _ClusterView:
    """What the templater derived from one Drain cluster's current template, and the
    group it belongs to: valid while `root` is a root and its template `merged_tokens`."""

    __slots__ = (
        "has_wildcard",
        "id",
        "merged",
        "merged_tokens",
        "plain",
        "positions",
        "root",
        "skeleton",
        "text",
        "tokens",
    )

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self.tokens = tokens
        self.skeleton, self.positions = skeleton(tokens)
        self.has_wildcard = WILDCARD in tokens
        self.root: Skeleton = ()  # not yet placed: `_view` refreshes it
        self.text = ""
        self.id = ""
        self.merged_tokens: Skeleton = ()
        self.merged: frozenset[int] = frozenset()  # positions the post-merge made values
        self.plain = not self.has_wildcard  # params are just the masked values


class _Known:
    """A Drain cluster as the hot path needs it: the view of its current template, the id
    last handed out for it, and whether that view needs a check before use."""

    __slots__ = ("cluster", "last_id", "stale", "view")

    def __init__(self, cluster: LogCluster) -> None:
        self.cluster = cluster
        self.view: _ClusterView | None = None
        self.last_id: str | None = None
        self.stale = True  # never checked


# A digit shape's mask plan, and the cluster of its masked text when every line of the
# shape masks to the same text (`MaskPlan.masked`): such a line costs one lookup.
_Shape = tuple[MaskPlan, _Known | None]


class Templater:
    """Mines templates from messages; see the module docstring."""

    def __init__(
        self, config: TemplaterConfig | None = None, rules: Sequence[MaskRule] = DEFAULT_RULES
    ) -> None:
        self.config = config or TemplaterConfig()
        self.masker = Masker(rules)
        self.miner = _build_miner(self.config, self.masker)
        self.groups = TemplateGroups(
            min_distinct=self.config.min_distinct_words,
            min_context=self.config.min_context_words,
        )
        self._max_chars = self.config.max_chars  # read per line: a plain attribute is cheaper
        self._by_shape = self.masker.by_shape  # else shapes are keyed by the text itself
        self._shapes: dict[bytes | str, _Shape] = {}  # digit shape -> its plan (and cluster)
        self._seen: dict[str, _Known] = {}  # masked message -> its cluster
        self._known: dict[int, _Known] = {}  # cluster id -> the same
        # Group root -> the clusters whose view was last refreshed to it: when groups
        # unite, only their clusters are marked stale (as is a cluster whose own template
        # changed), not every cluster seen afterwards. A cluster that moved on may linger
        # in its old root's set: at worst one needless check.
        self._viewers: dict[Skeleton, set[_Known]] = {}
        self._id_skeleton: dict[str, Skeleton] = {}  # every id handed out -> a skeleton of it
        self._live: dict[Skeleton, int] = {}  # skeleton -> clusters that have it now
        self._moved: dict[Skeleton, Skeleton] = {}  # abandoned skeleton -> where it went
        self._text_ids: dict[str, str] = {}  # template text -> id

    def add(self, content: str | bytes) -> Template:
        """Learn from one message and return its template."""
        # The hot path of intake, kept flat on purpose: every Python call here costs a few
        # percent of the whole line (see bench/throughput.py).
        # A message of a digit shape on record is clean already: shapes are recorded from
        # cleaned messages, and only digits differ between a message and its shape. So
        # cleaning, a scan of every character, waits for a shape not seen yet.
        text, shape = content, None
        if content.__class__ is str and len(content) <= self._max_chars:
            key = (
                content.encode("utf-8", "surrogatepass").translate(DIGIT_SHAPE_TABLE)  # `_key`
                if self._by_shape
                else content
            )
            shape = self._shapes.get(key)
        if shape is None:
            text = clean_text(content, self._max_chars)
            key = self._key(text)
            shape = self._shapes.get(key) or self._new_shape(key, text)
        plan, known = shape
        if known is None:
            known = self._cluster(key, plan, text)
        else:
            # Drain would take the same tokens down the same path to the same cluster: the
            # repeat of a masked message only counts. Most messages are such repeats.
            known.cluster.size += 1
        if known.stale:
            self._check(known)
        view: _ClusterView = known.view  # type: ignore[assignment]  # set by `_check`
        counts = self.groups.counts
        count = counts[view.root] = counts.get(view.root, 0) + 1
        pending = (plan, text, None if view.plain else view.tokens, view.merged)
        if known.last_id != view.id:
            return self._news(known, view, count, pending)
        # The common case, slot by slot: `__init__`'s argument binding costs twice as much.
        template = _new_object(Template)
        template.id, template.text, template.count = view.id, view.text, count
        template.change, template.previous_id = "none", None
        template._params, template._pending = (), pending
        return template

    def _key(self, text: str) -> bytes | str:
        """Where a clean message's plan is cached: its `digit_shape`, else the text itself."""
        return (
            text.encode("utf-8", "surrogatepass").translate(DIGIT_SHAPE_TABLE)
            if self._by_shape
            else text
        )

    def match(self, content: str | bytes) -> Template | None:
        """The template of a message, learning nothing; None if it matches none."""
        text = clean_text(content, self.config.max_chars)
        plan = self.masker.plan(text)
        cluster = self.miner.match(text, full_search_strategy="fallback")
        if cluster is not None:
            view = self._view(self._entry(cluster))
            return self._describe(
                view.root, (plan, text, None if view.plain else view.tokens, view.merged)
            )
        # Not Drain's: maybe a template whose varying word this message fills anew.
        tokens = tuple(plan.masked_text(text).split())
        skel, positions = skeleton(tokens)
        root = self.groups.lookup(skel)
        if root is None:
            return None
        merged = frozenset(
            positions[j]
            for j, (mine, theirs) in enumerate(zip(skel, self.groups.tokens(root)))
            if mine != theirs and theirs == WILDCARD
        )
        return self._describe(root, (plan, text, tokens, merged))

    def resolve(self, template_id: str) -> str:
        """The current id of the template that once had `template_id` (itself if unknown)."""
        skel = self._id_skeleton.get(template_id)
        if skel is None:
            return template_id
        seen = {skel}
        while skel in self._moved and self._moved[skel] not in seen:
            skel = self._moved[skel]
            seen.add(skel)
        return self._id_of_text(self.groups.text(self.groups.find(skel)))

    def templates(self) -> list[Template]:
        """Every current template, most frequent first."""
        found = [self._describe(root) for root in self.groups.roots()]
        # Skeletons that Drain's clusters left behind as they generalised count nothing.
        return sorted((t for t in found if t.count), key=lambda t: (-t.count, t.text))

    def snapshot(self) -> bytes:
        """Drain's state (clusters and tree) as bytes, for `Templater.restore`."""
        buffer = MemoryBufferPersistence()
        self.miner.persistence_handler = buffer
        try:
            self.miner.save_state("snapshot")
        finally:
            self.miner.persistence_handler = None
        state: bytes = buffer.state
        return state

    @classmethod
    def restore(cls, state: bytes, config: TemplaterConfig | None = None) -> Templater:
        """A templater that continues from `snapshot()`. Load only snapshots you made:
        Drain3 stores them with jsonpickle, which can build any object."""
        templater = cls(config)
        buffer = MemoryBufferPersistence()
        buffer.save_state(state)
        templater.miner.persistence_handler = buffer
        try:
            templater.miner.load_state()
        finally:
            templater.miner.persistence_handler = None
        clusters = templater.miner.drain.id_to_cluster
        for cluster_id in sorted(clusters):
            view = templater._view(templater._entry(clusters[cluster_id]))
            templater.groups.bump(view.root, clusters[cluster_id].size)
        return templater

    def _new_shape(self, key: bytes | str, text: str) -> _Shape:
        """A digit shape seen for the first time: its plan, found by the masking regex."""
        plan = self.masker.shape_plan(key) if isinstance(key, bytes) else self.masker.plan(text)
        if len(self._shapes) >= self.config.repeat_cache_size:
            del self._shapes[next(iter(self._shapes))]  # oldest first
        shape = self._shapes[key] = (plan, None)
        return shape

    def _cluster(self, key: bytes | str, plan: MaskPlan, text: str) -> _Known:
        """The cluster of a line whose shape has none on record: the one its masked text
        went to before, else Drain's answer. Kept on the shape if all its lines mask alike."""
        masked = plan.masked_text(text)
        known = self._seen.get(masked)
        if known is None:
            known = self._mine(masked)
        else:
            known.cluster.size += 1
        if plan.masked is not None and key in self._shapes:
            self._shapes[key] = (plan, known)
        return known

    def _mine(self, masked: str) -> _Known:
        """Drain's answer for a masked message not seen before (or forgotten)."""
        # Drain itself, not `TemplateMiner.add_log_message`: the message is masked already.
        cluster, change = self.miner.drain.add_log_message(masked)
        known = self._entry(cluster)
        if change == "cluster_template_changed":
            known.stale = True  # its view only: other clusters' change with their groups
        if len(self._seen) >= self.config.repeat_cache_size:
            del self._seen[next(iter(self._seen))]  # oldest first
        self._seen[masked] = known
        return known

    def _entry(self, cluster: LogCluster) -> _Known:
        known = self._known.get(cluster.cluster_id)
        if known is None:
            known = self._known[cluster.cluster_id] = _Known(cluster)
        return known

    def _check(self, known: _Known) -> None:
        """Bring a cluster's view up to date after clusters or groups changed."""
        view, groups = known.view, self.groups
        if (
            view is None
            or view.tokens is not known.cluster.log_template_tokens
            or groups.parent[view.root] is not view.root  # its group joined another
            or groups.merged[view.root] is not view.merged_tokens  # its group generalised
        ):
            self._view(known)
        known.stale = False

    def _view(self, known: _Known) -> _ClusterView:
        """The cluster's view, rebuilt when Drain changed its template, and its group
        refreshed when groups united since."""
        cluster, view = known.cluster, known.view
        if view is not None and view.tokens == cluster.log_template_tokens:
            view.tokens = cluster.log_template_tokens  # same template: keep `is` checks cheap
        else:
            old = view
            view = known.view = _ClusterView(cluster.log_template_tokens)
            new_root = self.groups.add(view.skeleton)
            self._mark_united()
            if old is not None:
                # The cluster's earlier messages (all but the one being added) move along.
                moved = cluster.size - 1
                self.groups.bump(self.groups.find(old.skeleton), -moved)
                self.groups.bump(new_root, moved)
            self._track_move(old.skeleton if old else None, view.skeleton)
        root = self.groups.find(view.skeleton)
        if root is not view.root or self.groups.merged[root] is not view.merged_tokens:
            self._refresh(view, root)
            self._viewers.setdefault(root, set()).add(known)
        return view

    def _mark_united(self) -> None:
        """Mark stale the clusters viewing a group that just joined another or generalised."""
        united = self.groups.united
        for root in united:
            for known in self._viewers.pop(root, ()):
                known.stale = True
        united.clear()

    def _refresh(self, view: _ClusterView, root: Skeleton) -> None:
        """Point the view at its group's current root and template."""
        view.root = root
        merged = view.merged_tokens = self.groups.merged[root]
        view.text = self.groups.text(root)
        view.id = self._id_of_text(view.text)
        view.merged = frozenset(
            view.positions[j]
            for j, (mine, theirs) in enumerate(zip(view.skeleton, merged))
            if mine != theirs and theirs == WILDCARD
        )
        view.plain = not (view.has_wildcard or view.merged)

    def _track_move(self, old: Skeleton | None, new: Skeleton) -> None:
        """Remember where an abandoned skeleton went, so that its old ids still resolve."""
        if old == new:
            return
        self._live[new] = self._live.get(new, 0) + 1
        self._moved.pop(new, None)
        if old is not None:
            self._live[old] -= 1
            if self._live[old] == 0:
                self._moved[old] = new

    def _news(
        self, known: _Known, view: _ClusterView, count: int, pending: _PendingParams
    ) -> Template:
        """The template of a cluster whose id is new to it: a first id, or a changed one."""
        previous, known.last_id = known.last_id, view.id
        seen = view.id in self._id_skeleton
        if not seen:
            self._id_skeleton[view.id] = view.skeleton
        change: Change = "changed" if previous is not None else "none" if seen else "created"
        return Template(view.id, view.text, count, change, previous, (), pending)

    def _describe(self, root: Skeleton, pending: _PendingParams | None = None) -> Template:
        text = self.groups.text(root)
        count = self.groups.count(root)
        return Template(self._id_of_text(text), text, count, "none", None, (), pending)

    def _id_of_text(self, text: str) -> str:
        found = self._text_ids.get(text)
        if found is None:
            found = self._text_ids[text] = template_id(text)
        return found


def _build_miner(config: TemplaterConfig, masker: Masker) -> TemplateMiner:
    """Drain3's miner with our configuration, masker and mask-aware Drain."""
    miner_config = TemplateMinerConfig()
    miner_config.drain_sim_th = config.sim_th
    miner_config.drain_depth = config.depth
    miner_config.drain_max_children = config.max_children
    miner_config.parametrize_numeric_tokens = True
    instructions = [MaskingInstruction(rule.pattern, rule.name) for rule in masker.rules]
    miner_config.masking_instructions = instructions
    # No persistence handler: Drain3 would serialise its whole state on every new cluster.
    # State lives in memory; `snapshot()` saves it on demand.
    miner = TemplateMiner(persistence_handler=None, config=miner_config)
    miner.masker = _OnePassMasker(masker, instructions)
    miner.drain = MaskAwareDrain(
        sim_th=config.sim_th,
        depth=config.depth,
        max_children=config.max_children,
        extra_delimiters=miner_config.drain_extra_delimiters,
        param_str=WILDCARD,
        parametrize_numeric_tokens=True,
    )
    return miner


def _params(
    template: tuple[str, ...], merged: frozenset[int], masked: str, values: tuple[str, ...]
) -> tuple[str, ...]:
    """A message's values: its masked values, and whole tokens where the template has `<*>`
    (Drain's wildcards, and words the post-merge found to be values)."""
    tokens = masked.split()
    if len(tokens) != len(template):
        return values
    remaining = iter(values)
    params: list[str] = []
    for i, (token, template_token) in enumerate(zip(tokens, template)):
        own = _take(remaining, token)
        if template_token == WILDCARD or i in merged:
            params.append(_unmask(token, own))
        else:
            params.extend(own)
    return tuple(params)


def _take(values: Iterator[str], token: str) -> list[str]:
    """The original values of the placeholders in one masked token, in order."""
    if "<" not in token:
        return []
    # The placeholders first: zip stops on them without drawing an extra value.
    return [value for _, value in zip(TYPED_PLACEHOLDER.findall(token), values)]


def _unmask(token: str, values: list[str]) -> str:
    replacements = iter(values)
    return TYPED_PLACEHOLDER.sub(lambda m: next(replacements, m.group()), token)
