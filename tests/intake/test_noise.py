from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agents.noise_classifier import ClassifierVerdict, NoiseClassifier, NoiseContext
from bot.config import (
    BenignPattern,
    ClassifierConfig,
    ConfigError,
    LogSourceConfig,
    MaintenanceWindow,
    NoiseConfig,
    Settings,
    crontab_trigger,
    load_settings,
)
from bot.demo import airflow_errors
from bot.demo.tasklog import (
    AttemptLog,
    SimClock,
    TryInfo,
    attempt_log_path,
    log_task_failure,
    log_task_start,
)
from bot.intake.noise import Decision, NoiseFilter, TaskOutcome, TriesTaskStates
from bot.intake.signals import RawSignal
from bot.sources.dag_runs import TaskTry
from bot.sources.logfiles import LogFileSource, LogLimits

DAG, TASK = "daily_warehouse", "load_payments_payments"
RUN = "scheduled__2026-11-21T00:00:00+00:00"
ASSET = f"task.{DAG}.{TASK}"
T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
RESET = ("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.payments.example"
         ".com', port=443): Max retries exceeded (Caused by ProtocolError('Connection aborted.', "
         "ConnectionResetError(104, 'Connection reset by peer')))")


def signal(kind: str = "log_error", *, title: str = "ValueError: bad row", asset: str = ASSET,
           at: datetime = T0, source: str = "logs:airflow", **detail: Any) -> RawSignal:
    return RawSignal(source=source, kind=kind, asset=asset, title=title, observed_at=at,
                     dedup_key=f"{kind}:{title}:{at.isoformat()}", detail=detail)


def try_signal(try_number: int = 1, at: datetime = T0, **detail: Any) -> RawSignal:
    """A log error of a try, as `LogFileSource` makes it for an Airflow log path."""
    return signal(title=RESET, at=at, exception=RESET, dag_id=DAG, task_id=TASK, run_id=RUN,
                  try_number=try_number, **detail)


class States:
    """An in-memory `TaskStates`: outcomes set by the test."""

    def __init__(self, outcome: TaskOutcome | None = None) -> None:
        self.value = outcome
        self.asked: list[tuple[str, str, str]] = []

    def outcome(self, dag_id: str, run_id: str, task_id: str) -> TaskOutcome | None:
        self.asked.append((dag_id, run_id, task_id))
        return self.value


class Scripted:
    """A classifier that answers one fixed verdict and records what it was asked."""

    def __init__(self, verdict: ClassifierVerdict | Exception) -> None:
        self.verdict = verdict
        self.calls: list[tuple[dict[str, Any], NoiseContext]] = []

    def classify(self, facts: dict[str, Any], context: NoiseContext) -> ClassifierVerdict:
        self.calls.append((facts, context))
        if isinstance(self.verdict, Exception):
            raise self.verdict
        return self.verdict


def benign(**kw: Any) -> BenignPattern:
    return BenignPattern(**{"name": "pandas_future", "regex": r"FutureWarning: .*downcasting",
                            "reason": "pandas 2.2 warns at ERROR via the vendor SDK; harmless",
                            **kw})


def noise(**kw: Any) -> NoiseConfig:
    return NoiseConfig(**kw)


# ---------------------------------------------------------------- config


def test_settings_have_intake_noise_defaults() -> None:
    n = Settings().intake.noise
    assert n.flaky_window == timedelta(hours=2) and n.recheck_every == timedelta(minutes=5)
    assert n.benign == [] and n.maintenance == []
    assert not n.classifier.enabled and n.classifier.threshold == 0.8
    assert {"task_failed", "model_error", "test_failed"} <= set(n.classifier.excluded_kinds)


def test_the_yaml_file_configures_rules_with_short_durations(tmp_path: Path) -> None:
    path = tmp_path / "sleuth.yaml"
    path.write_text("""
intake:
  noise:
    flaky_window: 90m
    benign:
      - name: pandas_future
        regex: "FutureWarning"
        reason: harmless
        kinds: [log_error]
        expires: 2027-01-31
    maintenance:
      - name: warehouse_patching
        cron: "0 3 * * 0"
        duration: 1h30m
        timezone: Europe/Berlin
        assets: ["task.daily_warehouse.*"]
      - name: migration
        start: 2026-11-21T02:00:00+00:00
        end: 2026-11-21T04:00:00+00:00
""")
    n = load_settings(path).intake.noise
    assert n.flaky_window == timedelta(minutes=90)
    assert n.benign[0].expires == date(2027, 1, 31)
    assert n.maintenance[0].duration == timedelta(hours=1, minutes=30)
    assert n.maintenance[1].end == datetime(2026, 11, 21, 4, tzinfo=UTC)


@pytest.mark.parametrize(("entry", "key", "says"), [
    ("benign: [{name: x, regex: 'a(b', reason: r}]", "intake.noise.benign.0.regex",
     "valid regular expression"),
    ("maintenance: [{name: w, cron: '0 3 * *', duration: 1h}]", "intake.noise.maintenance.0",
     "5-field"),
    ("maintenance: [{name: w, cron: '0 3 * * 8', duration: 1h}]", "intake.noise.maintenance.0",
     "day of week"),
    ("maintenance: [{name: w, cron: '0 3 * * *', duration: 1h, start: 2026-11-21T02:00:00Z,"
     " end: 2026-11-21T03:00:00Z}]", "intake.noise.maintenance.0", "either start and end"),
    ("maintenance: [{name: w, start: '2026-11-21T02:00:00', end: '2026-11-21T03:00:00'}]",
     "intake.noise.maintenance.0", "UTC offset"),
    ("maintenance: [{name: w, cron: '0 3 * * *', duration: 1h, timezone: Mars/Olympus}]",
     "intake.noise.maintenance.0.timezone", "IANA"),
    ("classifier: {threshold: 0.3}", "intake.noise.classifier.threshold", "0.5"),
])
def test_bad_noise_config_names_the_key(tmp_path: Path, entry: str, key: str, says: str) -> None:
    path = tmp_path / "sleuth.yaml"
    path.write_text(f"intake:\n  noise:\n    {entry}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    problem = err.value.problems[0]
    assert problem.key == key and says in problem.expected


@pytest.mark.parametrize(("expr", "days"), [
    ("0 3 * * 0", {"Sun"}), ("0 3 * * 7", {"Sun"}), ("0 3 * * 1-5", {"Mon", "Tue", "Wed",
                                                                        "Thu", "Fri"}),
    ("0 3 * * 0,6", {"Sat", "Sun"}), ("0 3 * * sat-sun", {"Sat", "Sun"}),
    ("0 3 * * */3", {"Sun", "Wed", "Sat"}),
])
def test_crontab_day_numbers_mean_what_cron_means(expr: str, days: set[str]) -> None:
    # APScheduler 3 alone would read 0 as Monday
    trigger, fired, at = crontab_trigger(expr, "UTC"), set(), None
    for _ in range(14):
        at = trigger.get_next_fire_time(at, at + timedelta(seconds=1) if at else T0)
        fired.add(at.strftime("%a"))
    assert fired == days


# ---------------------------------------------------------------- benign patterns

FUTURE = "FutureWarning: Downcasting object dtype arrays on .fillna is deprecated; downcasting"


def test_a_benign_pattern_drops_a_match_in_the_title_with_its_reason() -> None:
    d = NoiseFilter(noise(benign=[benign()])).decide(signal(title=FUTURE), T0)
    assert (d.verdict, d.rule) == ("drop", "benign:pandas_future")
    assert "title" in d.reason and "harmless" in d.reason
    assert d.detail["matched"].startswith("FutureWarning")


@pytest.mark.parametrize("field", ["message", "exception", "template_text"])
def test_a_benign_pattern_is_searched_in_the_detail_fields(field: str) -> None:
    d = NoiseFilter(noise(benign=[benign()])).decide(signal(**{field: FUTURE}), T0)
    assert d.rule == "benign:pandas_future" and d.detail["field"] == field


@pytest.mark.parametrize("near_miss", [
    signal(title="FutureWarning: the default of observed=False is deprecated"),  # other text
    signal(title=FUTURE, kind="test_warned"),                       # kind out of scope
    signal(title=FUTURE, asset="task.other_dag.load_orders"),       # asset out of scope
    signal(title=FUTURE, source="logs:spark"),                      # source out of scope
    signal(title="ok", traceback=FUTURE),                           # a field not searched
])
def test_a_benign_pattern_does_not_fire_on_near_misses(near_miss: RawSignal) -> None:
    rule = benign(kinds=["log_error"], assets=["task.daily_warehouse.*"], sources=["logs:air*"])
    assert NoiseFilter(noise(benign=[rule])).decide(near_miss, T0).rule == "default"


def test_an_expired_benign_pattern_stops_dropping_and_check_warns() -> None:
    rule = benign(expires=date(2026, 11, 20))
    f = NoiseFilter(noise(benign=[rule]))
    last_day = datetime(2026, 11, 20, 23, 59, tzinfo=UTC)
    assert f.decide(signal(title=FUTURE), last_day).verdict == "drop"
    assert f.check(last_day) == []
    assert f.decide(signal(title=FUTURE), T0).verdict == "keep"
    [problem] = f.check(T0)
    assert "'pandas_future' expired on 2026-11-20" in problem


# ---------------------------------------------------------------- maintenance windows


def window(**kw: Any) -> MaintenanceWindow:
    return MaintenanceWindow(**{"name": "patching", **kw})


def test_a_fixed_window_drops_inside_and_keeps_at_its_edges() -> None:
    w = window(start=T0, end=T0 + timedelta(hours=1))
    f = NoiseFilter(noise(maintenance=[w]))
    d = f.decide(signal(at=T0 + timedelta(minutes=30)), T0)
    assert (d.verdict, d.rule) == ("drop", "maintenance:patching")
    assert "'patching'" in d.reason and d.detail["window_end"] == "2026-11-21T03:00:00+00:00"
    assert f.decide(signal(at=T0), T0).verdict == "drop"
    assert f.decide(signal(at=T0 + timedelta(hours=1)), T0).verdict == "keep"  # end exclusive
    assert f.decide(signal(at=T0 - timedelta(seconds=1)), T0).verdict == "keep"


def test_a_window_compares_instants_not_wall_clocks() -> None:
    f = NoiseFilter(noise(maintenance=[window(start=T0, end=T0 + timedelta(hours=1))]))
    plus2 = timezone(timedelta(hours=2))
    assert f.decide(signal(at=datetime(2026, 11, 21, 4, 30, tzinfo=plus2)), T0).verdict == "drop"
    assert f.decide(signal(at=datetime(2026, 11, 21, 2, 30, tzinfo=plus2)), T0).verdict == "keep"


def test_a_window_scoped_to_assets_and_kinds_leaves_the_rest() -> None:
    w = window(start=T0, end=T0 + timedelta(hours=1), assets=["model.*"], kinds=["model_error"])
    f = NoiseFilter(noise(maintenance=[w]))
    inside = T0 + timedelta(minutes=5)
    assert f.decide(signal("model_error", asset="model.p.fct_orders", at=inside), T0).verdict \
        == "drop"
    assert f.decide(signal("model_error", asset=ASSET, at=inside), T0).verdict == "keep"
    assert f.decide(signal("test_failed", asset="model.p.fct_orders", at=inside), T0).verdict \
        == "keep"


def test_a_cron_window_spans_midnight() -> None:
    f = NoiseFilter(noise(maintenance=[window(cron="0 23 * * *", duration="2h")]))
    day = datetime(2026, 11, 21, tzinfo=UTC)
    verdicts = {h: f.decide(signal(at=day + timedelta(hours=h)), T0).verdict
                for h in (22.9, 23, 24.5, 24.99, 25, 26)}
    assert verdicts == {22.9: "keep", 23: "drop", 24.5: "drop", 24.99: "drop", 25: "keep",
                        26: "keep"}


def test_a_cron_window_follows_its_zone_across_dst() -> None:
    # 01:30 Berlin daily for 1h: 00:30 UTC in winter; 23:30 UTC the day before in summer.
    f = NoiseFilter(noise(maintenance=[window(cron="30 1 * * *", duration="1h",
                                              timezone="Europe/Berlin")]))
    def at(*args: int) -> str:
        return f.decide(signal(at=datetime(*args, tzinfo=UTC)), T0).verdict

    assert at(2026, 3, 28, 0, 45) == "drop"    # Saturday, still CET
    assert at(2026, 3, 29, 0, 45) == "drop"    # the morning clocks go forward (at 02:00)
    assert at(2026, 3, 29, 23, 45) == "drop"   # Monday 01:45 CEST
    assert at(2026, 3, 30, 0, 45) == "keep"    # a fixed UTC offset would drop this
    assert at(2026, 10, 25, 0, 15) == "drop"   # 01:30 still CEST: clocks go back at 03:00
    assert at(2026, 10, 25, 0, 45) == "keep"
    assert at(2026, 10, 26, 0, 45) == "drop"   # CET again


def test_a_weekly_window_fires_on_its_day_only() -> None:
    f = NoiseFilter(noise(maintenance=[window(cron="0 3 * * 0", duration="1h")]))
    sunday = datetime(2026, 11, 22, 3, 30, tzinfo=UTC)
    assert f.decide(signal(at=sunday), T0).verdict == "drop"
    assert f.decide(signal(at=sunday + timedelta(days=1)), T0).verdict == "keep"


def test_check_reports_windows_that_ended() -> None:
    f = NoiseFilter(noise(maintenance=[window(start=T0, end=T0 + timedelta(hours=1)),
                                       window(name="weekly", cron="0 3 * * 0", duration="1h")]))
    assert f.check(T0) == []
    [problem] = f.check(T0 + timedelta(days=1))
    assert "'patching' ended" in problem


# ---------------------------------------------------------------- flaky tries


def test_task_retried_is_dropped_as_flaky_with_the_story() -> None:
    s = signal("task_retried", source="airflow", title="Task try 1 failed, recovered on try 2",
               exception=RESET, dag_id=DAG, task_id=TASK, run_id=RUN, try_number=1,
               recovered_try=2, recovered_at=(T0 + timedelta(minutes=3)).isoformat())
    d = NoiseFilter(noise()).decide(s, T0 + timedelta(minutes=4))
    assert (d.verdict, d.rule) == ("drop", "flaky_try")
    assert d.reason == (f"try 1 of {ASSET} failed with ConnectionError; try 2 succeeded "
                        "3 min later")


def test_task_retried_that_recovered_after_the_window_is_kept() -> None:
    s = signal("task_retried", source="airflow", dag_id=DAG, task_id=TASK, run_id=RUN,
               try_number=1, recovered_try=4, recovered_at=(T0 + timedelta(hours=5)).isoformat())
    d = NoiseFilter(noise()).decide(s, T0 + timedelta(hours=6))
    assert (d.verdict, d.rule) == ("keep", "flaky_try") and "5 h" in d.reason


def test_a_log_error_of_a_try_whose_task_then_succeeded_is_dropped() -> None:
    states = States(TaskOutcome("success", T0 + timedelta(minutes=3, seconds=5), 2))
    d = NoiseFilter(noise(), states).decide(try_signal(), T0 + timedelta(minutes=10))
    assert (d.verdict, d.rule) == ("drop", "flaky_try")
    assert d.reason == (f"try 1 of {ASSET} failed with ConnectionError; try 2 succeeded "
                        "3 min later")
    assert states.asked == [(DAG, RUN, TASK)]


@pytest.mark.parametrize(("state", "after", "verdict", "says"), [
    ("running", timedelta(minutes=10), "hold", "task is running"),
    ("up_for_retry", timedelta(minutes=10), "hold", "up_for_retry"),
    (None, timedelta(minutes=10), "hold", "not yet known"),
    ("running", timedelta(hours=2), "keep", "had not succeeded 2 h later"),
    ("failed", timedelta(minutes=10), "keep", "ended failed"),
    ("upstream_failed", timedelta(minutes=10), "keep", "ended upstream_failed"),
])
def test_a_log_error_of_a_try_across_the_flaky_window(
        state: str | None, after: timedelta, verdict: str, says: str) -> None:
    states = States(TaskOutcome(state, None, 1) if state else None)
    d = NoiseFilter(noise(), states).decide(try_signal(), T0 + after)
    assert (d.verdict, d.rule) == (verdict, "flaky_try") and says in d.reason


def test_unreadable_task_states_hold_then_keep_never_drop() -> None:
    class Down:
        def outcome(self, dag_id: str, run_id: str, task_id: str) -> TaskOutcome | None:
            raise OSError("airflow API unreachable")

    f = NoiseFilter(noise(), Down())
    assert f.decide(try_signal(), T0 + timedelta(minutes=1)).verdict == "hold"
    assert f.decide(try_signal(), T0 + timedelta(hours=3)).verdict == "keep"


def test_a_hold_is_rechecked_soon_but_never_after_the_window_closes() -> None:
    f = NoiseFilter(noise(flaky_window="1h", recheck_every="10m"), States(TaskOutcome("running")))
    assert f.decide(try_signal(), T0 + timedelta(minutes=5)).recheck_at == \
        T0 + timedelta(minutes=15)
    assert f.decide(try_signal(), T0 + timedelta(minutes=55)).recheck_at == T0 + timedelta(hours=1)


def test_a_task_that_recovered_only_after_the_window_is_kept() -> None:
    states = States(TaskOutcome("success", T0 + timedelta(hours=3), 3))
    d = NoiseFilter(noise(), states).decide(try_signal(), T0 + timedelta(hours=4))
    assert (d.verdict, d.rule) == ("keep", "flaky_try")
    assert "only 3 h later, beyond the 2 h flaky window" in d.reason


def test_an_error_inside_the_try_that_succeeded_is_no_flaky_try() -> None:
    # the try logged an ERROR and still succeeded: a swallowed error, maybe half-written data
    states = States(TaskOutcome("success", T0 + timedelta(minutes=1), 2))
    d = NoiseFilter(noise(), states).decide(try_signal(try_number=2), T0 + timedelta(minutes=5))
    assert (d.verdict, d.rule) == ("keep", "default")


def test_without_task_states_or_try_facts_the_flaky_rule_stays_out() -> None:
    assert NoiseFilter(noise()).decide(try_signal(), T0).rule == "default"
    states = States(TaskOutcome("success", T0, 2))
    d = NoiseFilter(noise(), states).decide(signal(asset="file:/var/log/app.log"), T0)
    assert d.rule == "default" and states.asked == []


def test_tries_task_states_reads_the_last_try_of_a_dag_runs_backend() -> None:
    class Backend:
        def __init__(self, tries: list[TaskTry]) -> None:
            self.rows = tries

        def tries(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[TaskTry]:
            return [t for t in self.rows if (t.dag_id, t.run_id) == (dag_id, run_id)
                    and task_id in (None, t.task_id)]

    def attempt(n: int, state: str, end: timedelta | None) -> TaskTry:
        return TaskTry(dag_id=DAG, run_id=RUN, task_id=TASK, try_number=n, state=state,
                       end_date=T0 + end if end is not None else None)

    backend = Backend([attempt(1, "up_for_retry", timedelta(0))])
    f = NoiseFilter(noise(), TriesTaskStates(backend))
    assert f.decide(try_signal(), T0 + timedelta(minutes=1)).verdict == "hold"
    backend.rows.append(attempt(2, "running", None))
    assert f.decide(try_signal(), T0 + timedelta(minutes=2)).verdict == "hold"
    backend.rows[1] = attempt(2, "success", timedelta(minutes=4))
    d = f.decide(try_signal(), T0 + timedelta(minutes=5))
    assert d.verdict == "drop" and "try 2 succeeded 4 min later" in d.reason
    assert TriesTaskStates(Backend([])).outcome(DAG, RUN, TASK) is None


def test_a_real_airflow_log_error_of_a_retried_try_is_dropped(tmp_path: Path) -> None:
    """The demo's flaky-network failure, written as a worker writes it and read by the real
    log source, meets its run record on dag_id, run_id, task_id and try_number."""
    path = attempt_log_path(tmp_path / "logs", DAG, RUN, TASK, 1)
    info = TryInfo(DAG, TASK, RUN, T0, 1, 2, "PythonOperator", "data", 4242, 17, "worker-1",
                   "/opt/airflow/dags/daily_warehouse.py")

    def fetch_payments() -> None:
        """requests.get(...) in real life."""

    with AttemptLog(path, SimClock(T0)) as log:
        log_task_start(log, info)
        exc = airflow_errors.connection_reset("api.payments.example.com", "/v1/payments",
                                              airflow_errors.caller_frame(fetch_payments))
        text = airflow_errors.render_traceback(exc, airflow_errors.PYTHON_OPERATOR)
        log_task_failure(log, info, exc, text, T0, log.clock.now(), will_retry=True)
    source = LogFileSource(LogSourceConfig(name="airflow", paths=[f"{tmp_path}/logs/**/*.log"]),
                           limits=LogLimits(settle_seconds=0))
    signals, _ = source.poll()
    assert len(signals) == 2  # the traceback, and "Failed to execute job …"
    f = NoiseFilter(noise(), States(TaskOutcome("success", T0 + timedelta(minutes=2), 2)))
    decisions = [f.decide(s, T0 + timedelta(minutes=3)) for s in signals]
    assert [d.verdict for d in decisions] == ["drop", "drop"]
    assert decisions[0].reason.startswith(f"try 1 of {ASSET} failed with ConnectionError")


# ---------------------------------------------------------------- the order of the rules


def test_maintenance_comes_before_benign_before_flaky_before_classifier() -> None:
    w = window(start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1))
    b = benign(regex="Connection reset by peer")
    states = States(TaskOutcome("success", T0 + timedelta(minutes=2), 2))
    clf = Scripted(ClassifierVerdict(noise=True, confidence=0.99, reason="looks routine"))
    on = ClassifierConfig(enabled=True)
    now = T0 + timedelta(minutes=5)
    s = try_signal()
    assert NoiseFilter(noise(maintenance=[w], benign=[b], classifier=on), states, clf) \
        .decide(s, now).rule == "maintenance:patching"
    assert NoiseFilter(noise(benign=[b], classifier=on), states, clf).decide(s, now).rule \
        == "benign:pandas_future"
    assert NoiseFilter(noise(classifier=on), states, clf).decide(s, now).rule == "flaky_try"
    assert clf.calls == []  # the rules decided; the model was never asked
    assert NoiseFilter(noise(classifier=on), None, clf).decide(s, now).rule == "classifier"
    assert NoiseFilter(noise(), None, clf).decide(s, now).rule == "default"  # not enabled


# ---------------------------------------------------------------- the classifier


def test_the_classifier_drops_only_at_or_above_the_threshold() -> None:
    cfg = noise(classifier=ClassifierConfig(enabled=True, threshold=0.85))

    def decide(noisy: bool, confidence: float) -> Decision:
        verdict = ClassifierVerdict(noise=noisy, confidence=confidence, reason="because")
        return NoiseFilter(cfg, classifier=Scripted(verdict)).decide(signal(), T0)

    high = decide(True, 0.85)
    assert (high.verdict, high.rule) == ("drop", "classifier") and "because" in high.reason
    assert high.detail == {"noise": True, "confidence": 0.85, "threshold": 0.85}
    low = decide(True, 0.84)
    assert (low.verdict, low.rule) == ("keep", "classifier") and "only at 0.84" in low.reason
    assert decide(False, 0.99).verdict == "keep"


@pytest.mark.parametrize("kind", ["task_failed", "model_error", "test_failed"])
def test_severe_kinds_never_reach_the_classifier(kind: str) -> None:
    clf = Scripted(ClassifierVerdict(noise=True, confidence=1.0, reason="x"))
    f = NoiseFilter(noise(classifier=ClassifierConfig(enabled=True)), classifier=clf)
    assert f.decide(signal(kind), T0).verdict == "keep" and clf.calls == []


def test_a_failing_classifier_keeps_the_signal() -> None:
    clf = Scripted(TimeoutError("deadline exceeded"))
    d = NoiseFilter(noise(classifier=ClassifierConfig(enabled=True)), classifier=clf) \
        .decide(signal(), T0)
    assert (d.verdict, d.rule) == ("keep", "classifier") and "TimeoutError" in d.reason


def test_an_enabled_classifier_without_a_model_is_a_check_problem() -> None:
    f = NoiseFilter(noise(classifier=ClassifierConfig(enabled=True)))
    assert f.decide(signal(), T0).rule == "default"
    assert any("GEMINI_API_KEY" in p for p in f.check(T0))


def test_the_model_sees_the_signal_its_job_and_its_log_lines() -> None:
    asked: list[str] = []

    def complete(system: str, user: str) -> str:
        asked.append(user)
        return '{"noise": true, "confidence": 0.95, "reason": "vendor SDK chatter"}'

    s = try_signal(text="line one\nline two password=hunter2hunter2\nline three",
                   operator="PythonOperator")
    f = NoiseFilter(noise(classifier=ClassifierConfig(enabled=True)),
                    classifier=NoiseClassifier(complete))
    d = f.decide(s, T0)
    assert (d.verdict, d.rule) == ("drop", "classifier") and "vendor SDK chatter" in d.reason
    [user] = asked
    assert '"try_number": 1' in user and '"operator": "PythonOperator"' in user
    assert '"line three"' in user and "hunter2hunter2" not in user
    assert '"text"' not in user  # bulky fields go to the log lines, not the facts


# ---------------------------------------------------------------- decisions and time


def test_decide_needs_an_aware_now_and_reads_a_naive_signal_time_as_utc() -> None:
    f = NoiseFilter(noise(maintenance=[window(start=T0, end=T0 + timedelta(hours=1))]))
    with pytest.raises(ValueError, match="aware"):
        f.decide(signal(), datetime(2026, 11, 21, 2))
    naive = signal(at=datetime(2026, 11, 21, 2, 30))
    assert f.decide(naive, T0).verdict == "drop"


def test_only_a_hold_carries_a_recheck_time() -> None:
    with pytest.raises(ValidationError):
        Decision(verdict="hold", rule="flaky_try", reason="r")
    with pytest.raises(ValidationError):
        Decision(verdict="drop", rule="flaky_try", reason="r", recheck_at=T0)
