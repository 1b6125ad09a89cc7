"""Source connectors: each reads one kind of system and yields `RawSignal`s when polled.

dbt: `dbt_artifacts.DbtArtifactsSource` turns run_results, sources and manifest files into
signals; `dbt_results` and `dbt_manifest` are its typed readers (sharing `dbt_files`), and
`dbt_lineage` is the project graph a manifest describes.

Logs: `logfiles.LogFileSource` tails log files (`tail`: offsets, rotation, truncation) and
turns error events (`logevents`: multi-line records, tracebacks) into signals.

Metrics: `metrics.MetricsSource` judges series from `prometheus` or the demo store for anomalies.

DAG runs: `dag_runs.DagRunsSource`: failed and retried tries, via `airflow_api` or `demo_runs`.

Tables: `tables.TableMonitorSource` judges warehouse table statistics (`table_stats`) per poll.
"""
