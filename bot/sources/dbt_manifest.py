"""Typed reader of dbt's `manifest.json` (schema v10-v12): the project's nodes and who owns them.

Only what Sleuth uses is modelled; everything else dbt writes is ignored. Models, seeds,
snapshots, tests, sources, exposures and unit tests share one `ManifestNode` model, since the
fields Sleuth reads (name, file, relation, meta, group, tags, dependencies) are common to all.

Ownership, as a dbt project declares it:
- owner: the node's `meta.owner`, else its own `owner` (exposures), else its group's owner;
- Slack channel: the node's `meta.slack_channel`, else its group's
  `config.meta.slack_channel` (or `meta.slack_channel`), else None. The lineage
  (`bot.sources.dbt_lineage`) decides where an unowned node's problems go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bot.sources.dbt_files import Artifact, UtcDatetime, read_artifact

SLACK_CHANNEL_KEY = "slack_channel"
OWNER_KEY = "owner"


def _as_list(value: object) -> object:
    # dbt accepts `tags: nightly` as well as a list.
    return [value] if isinstance(value, str) else ([] if value is None else value)


def _as_text(value: object) -> object:
    # Model versions may be written as numbers (`version: 2`).
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _empty_if_null(value: object) -> object:
    return {} if value is None else value


Tags = Annotated[list[str], BeforeValidator(_as_list)]
Meta = Annotated[dict[str, Any], BeforeValidator(_empty_if_null)]


class Owner(Artifact):
    name: str | None = None
    email: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)

    def __str__(self) -> str:
        return self.name or ", ".join(self.email)


class GroupConfig(Artifact):
    meta: Meta = Field(default_factory=dict)


class Group(Artifact):
    name: str
    unique_id: str
    package_name: str | None = None
    owner: Owner = Field(default_factory=Owner)
    config: GroupConfig = Field(default_factory=GroupConfig, description="v12 and later.")
    meta: Meta = Field(default_factory=dict)

    @property
    def slack_channel(self) -> str | None:
        channel = self.config.meta.get(SLACK_CHANNEL_KEY) or self.meta.get(SLACK_CHANNEL_KEY)
        return channel if isinstance(channel, str) else None


class NodeConfig(Artifact):
    meta: Meta = Field(default_factory=dict)
    group: str | None = None
    tags: Tags = Field(default_factory=list)
    severity: str | None = Field(None, description="Tests: error or warn.")
    materialized: str | None = None
    enabled: bool = True


class DependsOn(Artifact):
    nodes: list[str] = Field(default_factory=list)


class TestMetadata(Artifact):
    """What a generic test is: `not_null`, `unique`, `dbt_utils.expression_is_true`…"""

    __test__ = False  # not a pytest class, despite the name

    name: str
    namespace: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict, alias="kwargs")

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


class ManifestNode(Artifact):
    """A model, seed, snapshot, test, source, exposure or unit test."""

    unique_id: str
    resource_type: str
    name: str
    package_name: str | None = None
    original_file_path: str | None = None
    compiled_path: str | None = None
    database: str | None = None
    schema_: str | None = Field(None, alias="schema")
    alias: str | None = None
    identifier: str | None = Field(None, description="Sources: the table's name.")
    relation_name: str | None = None
    config: NodeConfig = Field(default_factory=NodeConfig)
    meta: Meta = Field(default_factory=dict)
    group: str | None = None
    tags: Tags = Field(default_factory=list)
    depends_on: DependsOn = Field(default_factory=DependsOn)
    attached_node: str | None = Field(None, description="Generic tests: the node tested.")
    test_metadata: TestMetadata | None = None
    column_name: str | None = None
    version: Annotated[str | None, BeforeValidator(_as_text)] = None
    source_name: str | None = Field(None, description="Sources: the source the table is in.")
    label: str | None = Field(None, description="Exposures: the name people know it by.")
    owner: Owner | None = Field(None, description="Exposures: their owner.")
    model: str | None = Field(None, description="Unit tests: the name of the model tested.")

    @property
    def all_meta(self) -> dict[str, Any]:
        """`meta` from both places dbt keeps it; `config.meta` is the newer and wins."""
        return {**self.meta, **self.config.meta}

    @property
    def group_name(self) -> str | None:
        return self.group or self.config.group

    @property
    def all_tags(self) -> list[str]:
        return sorted({*self.tags, *self.config.tags})

    @property
    def relation(self) -> str | None:
        """`database.schema.table`, unquoted, for people; `relation_name` is the SQL form."""
        if self.relation_name:
            return self.relation_name.replace('"', "").replace("`", "")
        table = self.alias or self.identifier
        if self.schema_ and table:
            return ".".join(p for p in (self.database, self.schema_, table) if p)
        return None


class ManifestMetadata(Artifact):
    dbt_schema_version: str
    dbt_version: str | None = None
    generated_at: UtcDatetime | None = None
    invocation_id: str | None = None
    project_name: str | None = None
    adapter_type: str | None = None


Nodes = Annotated[dict[str, ManifestNode], BeforeValidator(_empty_if_null)]


class Manifest(Artifact):
    """`manifest.json`: every node of the project and how they depend on each other."""

    metadata: ManifestMetadata
    nodes: Nodes = Field(default_factory=dict)
    sources: Nodes = Field(default_factory=dict)
    exposures: Nodes = Field(default_factory=dict)
    unit_tests: Nodes = Field(default_factory=dict, description="v12 and later.")
    groups: Annotated[dict[str, Group], BeforeValidator(_empty_if_null)] = Field(
        default_factory=dict)
    parent_map: dict[str, list[str]] | None = Field(None, description="Optional before v11.")
    child_map: dict[str, list[str]] | None = Field(None, description="Optional before v11.")

    def node(self, unique_id: str) -> ManifestNode | None:
        for table in (self.nodes, self.sources, self.exposures, self.unit_tests):
            if unique_id in table:
                return table[unique_id]
        return None

    def all_nodes(self) -> list[ManifestNode]:
        return [*self.nodes.values(), *self.sources.values(), *self.exposures.values(),
                *self.unit_tests.values()]

    def group_of(self, node: ManifestNode) -> Group | None:
        name = node.group_name
        if name is None:
            return None
        exact = self.groups.get(f"group.{node.package_name}.{name}")
        return exact or next((g for g in self.groups.values() if g.name == name), None)

    def owner(self, node: ManifestNode) -> str | None:
        """`meta.owner`, else the node's own owner (exposures), else its group's owner."""
        declared = node.all_meta.get(OWNER_KEY)
        if isinstance(declared, str) and declared:
            return declared
        for owner in (node.owner, getattr(self.group_of(node), "owner", None)):
            if owner is not None and str(owner):
                return str(owner)
        return None

    def slack_channel(self, node: ManifestNode) -> str | None:
        """`meta.slack_channel`, else the channel of the node's group, else None."""
        channel = node.all_meta.get(SLACK_CHANNEL_KEY)
        if isinstance(channel, str) and channel:
            return channel
        group = self.group_of(node)
        return group.slack_channel if group else None


def read_manifest(path: Path) -> Manifest:
    """Read a `manifest.json`; `ArtifactError` naming file and field if it cannot be read."""
    return read_artifact(path, Manifest, kind="manifest",
                         collections=("nodes", "sources", "exposures", "unit_tests", "groups"))
