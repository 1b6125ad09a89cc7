"""Where one instance of the demo data platform keeps its files.

The layout mirrors a small real deployment: a git repository of the platform's code, the
upstream deliveries it loads, a DuckDB warehouse, Airflow-style task logs and run records,
dbt artifacts archived per run, and a metrics store. Intake later reads these exactly as it
would read a user's own Airflow, dbt and warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DAG_ID = "daily_warehouse"
DBT_PROJECT_NAME = "sleuth_demo"


def shipped_project() -> Path:
    """The platform's code as shipped in the package: the dbt project, loader configs, DAG."""
    return Path(str(resources.files("bot.demo") / "project"))


@dataclass(frozen=True)
class PlatformPaths:
    """The files of one platform instance, all below `root`."""

    root: Path

    @property
    def repo(self) -> Path:
        """Git repository of the platform's code; the dbt project is its root."""
        return self.root / "repo"

    @property
    def profiles_dir(self) -> Path:
        """dbt `profiles.yml`: deployment config, not in git."""
        return self.root / "profiles"

    @property
    def landing(self) -> Path:
        """Upstream deliveries: `landing/<source>/<table>/dt=YYYY-MM-DD/<file>`."""
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def logs(self) -> Path:
        """Airflow task logs: `logs/dag_id=…/run_id=…/task_id=…/attempt=N.log`."""
        return self.root / "logs"

    @property
    def artifacts(self) -> Path:
        """dbt artifacts archived per DAG run: `artifacts/<run_id>/{run_results,manifest,sources}.json`."""
        return self.root / "artifacts"

    @property
    def dbt_target(self) -> Path:
        """dbt's own `target/` of the latest invocation."""
        return self.repo / "target"

    @property
    def runs_db(self) -> Path:
        """DAG run and task instance records (SQLite)."""
        return self.root / "runs.sqlite"

    @property
    def metrics_db(self) -> Path:
        """Metric time series (SQLite): name, labels, timestamp, value."""
        return self.root / "metrics.sqlite"

    @property
    def exports(self) -> Path:
        """What the publish task hands to the dashboard."""
        return self.root / "exports"

    @property
    def ground_truth(self) -> Path:
        """Ground truth of the scenario injected last, with culprits resolved (commit shas)."""
        return self.root / "ground_truth.json"
