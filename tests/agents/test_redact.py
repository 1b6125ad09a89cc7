from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from agents.redact import Redactor, redact, redact_data

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq83hf0a+/9==\n"
       "-----END RSA PRIVATE KEY-----")

# (text, secret that must vanish, marker that must appear)
SECRETS = [
    ("using key AKIAIOSFODNN7EXAMPLE now", "AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_access_key]"),
    ("session ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws_access_key]"),
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "[REDACTED:aws_secret_key]"),
    (f'{{"SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET, "[REDACTED:aws_secret_key]"),
    ("AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFy==;EndpointSuffix=core.windows.net",
     "Zm9vYmFyYmF6cXV4Zm9vYmFy==", "AccountKey=[REDACTED:azure_key];"),
    ("https://a.blob.core.windows.net/c/f.csv?sv=2021-08-06&sp=rl&sig=AbCdEfGh1234%2BXyZ%3D",
     "AbCdEfGh1234", "&sig=[REDACTED:azure_sas]"),
    ("SLACK_BOT_TOKEN=xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
     "AbCdEfGhIjKlMnOp", "[REDACTED:slack_token]"),
    ("user token xoxp-1234-5678-9012-abcdefgh", "xoxp-", "[REDACTED:slack_token]"),
    ("legacy xoxa-2-1234-abcdefgh", "xoxa-", "[REDACTED:slack_token]"),
    ("socket xapp-1-A0123ABC-4567-abcdef0123", "xapp-", "[REDACTED:slack_token]"),
    ("refresh xoxe-1-My4xLTEtMTIz", "xoxe-", "[REDACTED:slack_token]"),
    ("post to https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX now",
     "T000/B000", "[REDACTED:slack_webhook]"),
    ("OPENAI_API_KEY=sk-proj-abc123DEF456ghi789JKL012mno", "abc123DEF", "[REDACTED:openai_key]"),
    ("key sk-abcdefghij0123456789ABCDEFGHIJ here", "sk-abc", "[REDACTED:openai_key]"),
    ("x-api-key: sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-AA",
     "sk-ant", "[REDACTED:anthropic_key]"),
    ("maps AIzaSyA-1234567890abcdefghijklmnopqrst_ ok", "AIza", "[REDACTED:google_api_key]"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_", "[REDACTED:github_token]"),
    ("gho_abcdefghijklmnopqrstuvwxyz0123456789", "gho_", "[REDACTED:github_token]"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_",
     "[REDACTED:github_token]"),
    (f"cookie session={JWT};", "eyJzdWIi", "[REDACTED:jwt]"),
    ("Authorization: Bearer abc.def-ghi_jkl", "abc.def", "Authorization: Bearer [REDACTED:"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpw",
     "Basic [REDACTED:authorization]"),
    (f"Authorization: Bearer {JWT}", "eyJzdWIi", "Bearer [REDACTED:jwt]"),
    ("retrying with bearer 0123456789abcdefXYZ", "0123456789abcdef", "[REDACTED:bearer_token]"),
    ("postgresql://sleuth:hunter2@db:5432/sleuth", "hunter2",
     "postgresql://sleuth:[REDACTED:password]@db:5432/sleuth"),
    ("DB_PASSWORD=hunter2 other=1", "hunter2", "DB_PASSWORD=[REDACTED:password] other=1"),
    ("password: 'p@ss word'", "p@ss", "password: '[REDACTED:password]'"),
    ("spring.datasource.password=s3cr3t!", "s3cr3t", "[REDACTED:password]"),
    ("client_secret=abc123xyz&grant_type=x", "abc123xyz", "client_secret=[REDACTED:secret]&"),
    ("GET /v1?api_key=abc123&x=1", "abc123", "api_key=[REDACTED:api_key]&x=1"),
    ("auth token=9f8e7d6c5b", "9f8e7d6c5b", "token=[REDACTED:token]"),
    ("ssh_key_passphrase: correct-horse", "correct-horse", "[REDACTED:password]"),
    ("s3.amazonaws.com/b/k?X-Amz-Credential=x&X-Amz-Signature=abcdef0123456789",
     "abcdef0123456789", "X-Amz-Signature=[REDACTED:signature]"),
    (PEM + "\nafter", "MIIEowIBAAKCAQEA", "[REDACTED:private_key]\nafter"),
]


@pytest.mark.parametrize(("text", "secret", "expected"), SECRETS, ids=lambda v: str(v)[:24])
def test_each_secret_kind_is_replaced_by_its_marker(text: str, secret: str, expected: str):
    out = redact(text)
    assert secret not in out
    assert expected in out


def test_gcp_service_account_json_keeps_its_shape_and_loses_its_key():
    account = {
        "type": "service_account", "project_id": "acme-data",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                       "-----END PRIVATE KEY-----\n",
        "client_email": "loader@acme-data.iam.gserviceaccount.com",
    }
    out = json.loads(redact(json.dumps(account)))
    assert out["private_key"].startswith("[REDACTED:private_key]")
    assert out["private_key_id"] == "[REDACTED:private_key]"
    assert out["client_email"] == account["client_email"]


def test_truncated_pem_is_redacted_to_the_end():
    cut = "key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN"
    assert redact(cut) == "key:\n[REDACTED:private_key]"


ORDINARY = [
    "123e4567-e89b-12d3-a456-426614174000",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 by dana",
    "model.sleuth_demo.fct_orders test.sleuth_demo.unique_orders_order_id.1a2b3c4d5e",
    "run_id=scheduled__2026-11-20T02:00:00+00:00 manual__2026-11-20T02:13:07.123456+00:00",
    "dag_id=daily_warehouse task_id=run_dbt map_index=-1 try_number=2",
    "max_tokens=1000 input_tokens: 523 secret_name=foo token_type=bearer password_file=/run/pw",
    "postgresql://sleuth:${PGPASSWORD}@db/sleuth and password=${DB_PASSWORD}",
    "password authentication failed for user \"loader\"",
    "https://github.com/acme/pipelines/blob/9fceb02/models/fct_orders.sql#L10-L20",
    "s3://acme-raw/orders/2026/11/20/part-0001.parquet asia-east1",
    "Bearer token expired; task-sk-123 disk-sk-abc",
    "metric:orders_total{env=\"prod\"}@2026-11-20T00:00..2026-11-21T00:00",
    "is_secret=false token: null password: ''",
]


@pytest.mark.parametrize("text", ORDINARY, ids=lambda v: v[:24])
def test_ordinary_ids_are_left_alone(text: str):
    assert redact(text) == text


def test_known_values_are_replaced_wherever_they_appear():
    assert redact("login as ops with Tr0ub4dor&3 ok", known={"Tr0ub4dor&3"}) == (
        "login as ops with [REDACTED:known_secret] ok")


def test_short_known_values_are_ignored_so_common_words_survive():
    assert redact("/opt/airflow/logs", known={"airflow"}) == "/opt/airflow/logs"


def test_secrets_far_apart_in_a_long_log_are_all_found():
    line = "INFO - task_id=run_dbt run_id=scheduled__2026-11-20T02:00:00+00:00 rows=12345\n"
    text = line * 2000 + "password=one\n" + line * 2000 + "AKIAIOSFODNN7EXAMPLE\n" + line
    out = redact(text)
    assert "password=[REDACTED:password]" in out and "[REDACTED:aws_access_key]" in out
    assert out.count(line) == 4001


class _Conn(BaseModel):
    url: str
    password: str
    tags: tuple[str, ...] = ()


def test_redact_data_walks_containers_and_keys_and_models():
    data = {
        "password": "plain",
        "nested": [{"api_key": 12345, "max_tokens": 1000}],
        "tuple": ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz",),
        "conn": _Conn(url="mysql://u:pw123456@h/db", password="x", tags=("ok",)),
    }
    out = redact_data(data)
    assert out["password"] == "[REDACTED:password]"
    assert out["nested"] == [{"api_key": "[REDACTED:api_key]", "max_tokens": 1000}]
    assert out["tuple"] == ("[REDACTED:anthropic_key]",)
    assert isinstance(out["conn"], _Conn)
    assert out["conn"].url == "mysql://u:[REDACTED:password]@h/db"
    assert out["conn"].password == "[REDACTED:password]"
    assert data["password"] == "plain"  # the input is not changed


def test_a_redactor_is_reusable_and_idempotent():
    r = Redactor(known=["my-very-own-secret"])
    once = r.text("token=my-very-own-secret and AKIAIOSFODNN7EXAMPLE")
    assert r.text(once) == once
    assert "my-very-own-secret" not in once
