"""The rules behind alerts and logs that need no server: the row-count rule, what a webhook URL and a
topic may be, the alert settings read from the environment, and the message Slack gets."""

from pathlib import Path

import pytest

from etlwizard.alerts import Alert, AlertKind, ChannelUpdate, read_channels, row_check, topic_path, topic_problem
from etlwizard.config import Settings, webhook_problem
from etlwizard.errors import ConfigError, InvalidInput


@pytest.mark.parametrize(
    "rows, earlier, direction",
    [
        (1000, [1000] * 5, None),
        (100, [1000] * 5, None),  # a tenth: still usual
        (99, [1000] * 5, "fewer"),
        (10_000, [1000] * 5, None),
        (10_001, [1000] * 5, "more"),
        (0, [1000] * 5, "fewer"),  # a snapshot come back empty
        (5, [1000, 0, 1000, 0, 1000, 1000, 1000], "fewer"),  # runs that loaded nothing do not count
        (5, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 100_000, 100_000], None),  # only the last ten
    ],
)
def test_row_check_compares_with_the_median_of_the_last_ten_runs_that_loaded_rows(rows, earlier, direction):
    check = row_check(rows, earlier)
    assert check is not None and check.direction == direction


def test_row_check_waits_for_five_runs():
    assert row_check(1, [1000] * 4) is None
    assert row_check(1, [1000, 0, 1000, 0, 1000, 1000]) is None  # four that loaded rows
    check = row_check(3, [1000, 900, 1100, 1000, 5])
    assert (check.median, check.compared, check.low, check.high) == (1000.0, 5, 100.0, 10_000.0)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("https://hooks.slack.com/services/T0/B0/secret", None),
        ("https://127.0.0.1:8443/hook?token=abc", None),
        ("http://hooks.slack.com/services/T0/B0/secret", "a webhook must be an https:// URL"),
        ("hooks.slack.com/services", "a webhook must be an https:// URL"),
        ("https:///path", "a webhook URL needs a host"),
        ("https://me:pw@example.com/hook", "a webhook URL carries no user name or password"),
        ("https://example.com:port/hook", "not a URL"),
        ("https://example.com/a b", "a webhook URL has no spaces or control characters"),
    ],
)
def test_a_webhook_is_https_to_a_host(url, problem):
    assert webhook_problem(url) == problem


def test_alert_settings_come_from_the_environment_and_hide_the_webhook():
    env = {
        "ETL_ALERT_TOPIC": "etl-alerts",
        "ETL_ALERT_WEBHOOK": "https://hooks.slack.com/services/T0/B0/secret-token",
        "ETL_ALERT_CA_FILE": "/etc/ssl/receiver-ca.pem",
        "ETL_ALERT_TIMEOUT": "2.5",
        "ETL_LOG_FORMAT": "json",
    }
    settings = Settings.from_env(env)
    assert (settings.alert_topic, settings.alert_webhook) == ("etl-alerts", env["ETL_ALERT_WEBHOOK"])
    assert (settings.alert_ca_file, settings.alert_timeout) == (Path("/etc/ssl/receiver-ca.pem"), 2.5)
    assert settings.logs_as_json and "secret-token" not in repr(settings)
    assert Settings.from_env({}).alert_topic is None and Settings.from_env({}).alert_timeout == 5.0
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"ETL_ALERT_WEBHOOK": "http://hooks.slack.com/services/T0/B0/secret-token"})
    assert refused.value.message == "ETL_ALERT_WEBHOOK: a webhook must be an https:// URL"
    with pytest.raises(ConfigError):
        Settings.from_env({"ETL_LOG_FORMAT": "xml"})


def test_logs_are_json_on_google_cloud_and_text_elsewhere_unless_set():
    assert Settings(stack="gcp").logs_as_json and not Settings().logs_as_json
    assert Settings(log_format="json").logs_as_json and not Settings(stack="gcp", log_format="text").logs_as_json


def test_topics_are_names_in_the_project_or_full_paths():
    assert topic_problem("etl-alerts") is None and topic_problem("projects/other-proj/topics/ops.alerts") is None
    for bad in ("ab", "goog-alerts", "1alerts", "alerts/x", "projects/p/topics/x y"):
        assert topic_problem(bad), bad
    assert topic_path("my-proj", "etl-alerts") == "projects/my-proj/topics/etl-alerts"
    assert topic_path("my-proj", "projects/o/topics/t") == "projects/o/topics/t"


def test_a_jobs_alert_fields_left_out_stay_and_null_removes():
    assert read_channels(None) == ChannelUpdate() and ChannelUpdate().empty
    assert read_channels({"topic": "team-alerts"}) == ChannelUpdate(None, "team-alerts")
    assert read_channels({"webhook_url": None, "topic": ""}) == ChannelUpdate("", "")
    with pytest.raises(InvalidInput) as refused:
        read_channels({"webhook_url": "http://hooks.example.com/T0/secret"})
    assert refused.value.field == "alerts.webhook_url" and "secret" not in refused.value.message
    with pytest.raises(InvalidInput):
        read_channels({"topic": 7})
    with pytest.raises(InvalidInput):
        read_channels(["https://hooks.example.com"])


def test_slack_gets_text_and_blocks_with_its_markup_escaped():
    alert = Alert(
        "run_failed", "abc123abc123", "Orders <EU> & more", "run1", "x < y failed", "2026-12-01T10:00:00+00:00"
    )
    assert alert.kind is AlertKind.RUN_FAILED
    message = alert.slack_message()
    assert message["text"] == ":red_circle: Job Orders &lt;EU&gt; &amp; more: run run1 failed: x &lt; y failed"
    assert message["blocks"][1]["elements"][0]["text"] == (
        "ETL Wizard · job `abc123abc123` · run `run1` · 2026-12-01T10:00:00+00:00"
    )
    assert alert.to_dict()["message"] == "x < y failed"  # the event's own fields are not Slack's markup
    with pytest.raises(ValueError):
        Alert("exploded", "j", "n", None, "m", "2026-12-01T10:00:00+00:00")
