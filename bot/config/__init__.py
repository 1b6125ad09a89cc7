"""Sleuth's configuration: one YAML file validated by pydantic, secrets from the environment.

Where the file is: `--config`, else `SLEUTH_CONFIG`, else `./sleuth.yaml` if present, else none
at all, and the embedded defaults run against the bundled demo platform. String values may
use `${VAR}` to take a value from the environment (that is how a password reaches a URL);
a literal password in the file is refused.

The sections live in modules named for them (sources, slack, intake); `settings` holds the
whole, `loading` reads and checks a file. Import from `bot.config`: it is the one interface.
"""

from bot.config.base import CONFIG_ENV, DEFAULT_FILE, DEFAULT_HOME, HOME_ENV, SECRET_ENV, Duration
from bot.config.intake import (
    BenignPattern,
    ClassifierConfig,
    GroupingConfig,
    IntakeConfig,
    MaintenanceWindow,
    NoiseConfig,
    ScheduleConfig,
    SignalScope,
    crontab_trigger,
)
from bot.config.loading import (
    ConfigError,
    ConfigProblem,
    check_settings,
    config_path,
    load_settings,
    masked,
)
from bot.config.settings import (
    DemoConfig,
    EmbeddingsConfig,
    Secrets,
    Settings,
    StoreConfig,
    ToolsConfig,
)
from bot.config.slack import SlackConfig, WorkspaceConfig
from bot.config.sources import (
    DEMO_WATCHES,
    AirflowConfig,
    DbtConfig,
    DemoMetricsConfig,
    GitConfig,
    LogSourceConfig,
    MetricsConfig,
    MetricWatch,
    PrometheusMetricsConfig,
    SourcesConfig,
    TableMonitorConfig,
    TablesConfig,
    WarehouseConfig,
)

__all__ = [
    "CONFIG_ENV", "DEFAULT_FILE", "DEFAULT_HOME", "DEMO_WATCHES", "HOME_ENV", "SECRET_ENV",
    "AirflowConfig", "BenignPattern", "ClassifierConfig", "ConfigError", "ConfigProblem",
    "DbtConfig", "DemoConfig", "DemoMetricsConfig", "Duration", "EmbeddingsConfig", "GitConfig",
    "GroupingConfig", "IntakeConfig", "LogSourceConfig", "MaintenanceWindow", "MetricWatch",
    "MetricsConfig", "NoiseConfig", "PrometheusMetricsConfig", "ScheduleConfig", "Secrets",
    "Settings", "SignalScope", "SlackConfig", "SourcesConfig", "StoreConfig", "TableMonitorConfig",
    "TablesConfig", "ToolsConfig", "WarehouseConfig", "WorkspaceConfig", "check_settings",
    "config_path", "crontab_trigger", "load_settings", "masked",
]
