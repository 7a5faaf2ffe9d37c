"""Offline checks of what deploys: Terraform and cloudbuild.yaml parse, name exactly what the code
uses, and grant no broader permission than the code needs."""

import ast
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import hcl2
import pytest
import yaml

from etlwizard.alerts import WEBHOOK_SECRET_PREFIX, webhook_secret_name
from etlwizard.config import Settings
from etlwizard.connections import SECRET_PREFIX
from etlwizard.reach.cloudsql import ADMIN_API, CLIENT_ROLE, LOGIN_ROLE

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"


def unquote(value):
    """python-hcl2 keeps HCL's quotes on names and strings: drop them."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@pytest.fixture(scope="module")
def tf():
    parsed = {}
    for path in sorted(INFRA.glob("*.tf")):
        with path.open() as f:
            for key, blocks in unquote(hcl2.load(f)).items():
                parsed.setdefault(key, []).extend(blocks)
    return parsed


def resources(tf, kind):
    return {
        name: body
        for block in tf.get("resource", [])
        for k, named in block.items()
        if k == kind
        for name, body in named.items()
    }


def locals_(tf):
    out = {}
    for block in tf.get("locals", []):
        out.update(block)
    return out


def variables(tf):
    out = {}
    for block in tf.get("variable", []):
        out.update(block)
    return out


def evaluate(expression, **scope):
    """One of infra's expressions, evaluated in Python: the few HCL forms the settings that depend on
    the function and the variables use (&&, ||, !, ==, !=, null, one `c ? a : b`, `[for k, v in m :
    x if c]`, `{for k, v in m : k => v if c}`, `{NAME = x}`, merge, length, toset, tostring). Names
    are each, var and local, as SimpleNamespaces; anything else fails."""
    text = expression.removeprefix("${").removesuffix("}") if expression.startswith("${") else repr(expression)
    if " ? " in text:  # one conditional, at the top
        condition, branches = text.split(" ? ", 1)
        yes, no = branches.split(" : ", 1)
        text = f"({yes}) if ({condition}) else ({no})"
    text = re.sub(r"\[for (\w+), (\w+) in ([\w.]+) : (\w+) if ([^\]]+)\]", r"[\4 for \1, \2 in \3.items() if \5]", text)
    text = re.sub(
        r"\{for (\w+), (\w+) in ([\w.]+) : (\w+) => (\w+) if ([^}]+)\}",
        r"{\4: \5 for \1, \2 in \3.items() if \6}",
        text,
    )
    text = re.sub(r"\{(\w+) = ", r"{'\1': ", text)
    text = text.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"!(?!=)", " not ", text)
    text = re.sub(r"\bnull\b", "None", text)
    functions = {
        "merge": lambda *maps: {k: v for m in maps for k, v in m.items()},
        "length": len,
        "toset": set,
        "tostring": str,
        "contains": lambda values, value: value in values,
    }
    # globals, not locals: comprehensions see only those (the repository's own expressions)
    return eval(text, {"__builtins__": {}, **functions, **scope})


def function_scope(tf, name, **values):
    """each, var and local for the function `name`, with the variables at their defaults but for `values`."""
    local = locals_(tf)
    var = SimpleNamespace(**{**{n: v.get("default") for n, v in variables(tf).items()}, **values})
    functions = {n: SimpleNamespace(**f) for n, f in local["functions"].items()}
    scope = {"var": var}
    direct_vpc = evaluate(local["direct_vpc"], **scope)
    scope["local"] = SimpleNamespace(
        functions=functions,
        function_env=local["function_env"],
        reach_env=local["reach_env"],
        direct_vpc=direct_vpc,
        alerting=local["alerting"],
    )
    scope["each"] = SimpleNamespace(key=name, value=functions[name])
    return scope


def entry_points():
    """Functions in functions/main.py decorated as HTTP or CloudEvent entry points."""
    tree = ast.parse((ROOT / "functions" / "main.py").read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).startswith("functions_framework.") for d in node.decorator_list)
    }


def test_every_entry_point_is_deployed_and_nothing_else(tf):
    assert (
        set(locals_(tf)["functions"])
        == entry_points()
        == {"preview_table", "validate_schema", "create_job", "etl_api", "run_job"}
    )
    fn = resources(tf, "google_cloudfunctions2_function")["fn"]
    assert fn["build_config"][0]["entry_point"] == "${each.key}"
    assert fn["build_config"][0]["runtime"] == "python311"


def test_topic_secret_prefix_and_environment_match_the_code(tf):
    local = locals_(tf)
    assert local["run_topic"] == Settings().run_topic
    assert local["secret_prefix"] == SECRET_PREFIX
    env = local["function_env"]
    assert env["ETL_STACK"] == "gcp" and env["ETL_RUN_TOPIC"] == "${local.run_topic}"
    config_source = (ROOT / "shared" / "etlwizard" / "config.py").read_text()
    ours = [name for name in env if name.startswith("ETL_")]
    assert all(f'"{name}"' in config_source for name in local["reach_env"]), "and every one the reaching ones get"
    assert all(f'"{name}"' in config_source for name in ours), "every ETL_ variable set is one config.py reads"
    assert env["MALLOC_ARENA_MAX"] == "2"  # glibc's, for flat memory in runs
    assert set(env) == {*ours, "MALLOC_ARENA_MAX"}
    wizard_env = {
        e["name"] for e in resources(tf, "google_cloud_run_v2_service")["wizard"]["template"][0]["containers"][0]["env"]
    }
    assert "ETL_API_URL" in wizard_env  # it passes /api/ to etl_api


def test_requests_are_served_in_parallel_and_source_pools_stay_bounded(tf):
    """The HTTP functions serve several requests per instance on as many threads (functions-framework
    reads THREADS; Cloud Run needs a whole vCPU for it), run_job one run per instance; the wizard's
    Cloud Run concurrency is what the Dockerfile's gunicorn serves at once; and a function's pools
    of catalog connections, over all its instances, stay within PostgreSQL's default 100."""
    fn = resources(tf, "google_cloudfunctions2_function")["fn"]["service_config"][0]
    assert fn["max_instance_request_concurrency"] == "${each.value.concurrency}"
    assert fn["available_cpu"] == "${each.value.cpu}"
    for name, size in locals_(tf)["functions"].items():
        env = evaluate(fn["environment_variables"], **function_scope(tf, name))
        assert env["THREADS"] == str(size["concurrency"])
        assert {k: env[k] for k in locals_(tf)["function_env"]} == locals_(tf)["function_env"]
    for name, size in locals_(tf)["functions"].items():
        if name == "run_job":
            assert size["concurrency"] == 1
        else:
            assert size["concurrency"] > 1 and float(size["cpu"]) >= 1, name
    pool_size = int(locals_(tf)["function_env"]["ETL_POOL_SIZE"])
    assert fn["max_instance_count"] == '${each.key == "run_job" ? 20 : 10}'
    assert 1 <= pool_size < Settings().pool_size and pool_size * 10 < 100

    gunicorn = re.search(r"gunicorn .*--workers (\d+) --threads (\d+)", (ROOT / "Dockerfile").read_text())
    assert gunicorn, "the Dockerfile starts gunicorn with --workers and --threads"
    wizard = resources(tf, "google_cloud_run_v2_service")["wizard"]["template"][0]
    assert wizard["max_instance_request_concurrency"] == int(gunicorn[1]) * int(gunicorn[2])
    assert wizard["containers"][0]["resources"][0]["limits"]["memory"] == "1Gi"


def test_run_topic_has_retries_and_a_dead_letter_topic(tf):
    push = resources(tf, "google_pubsub_subscription")["run_job"]
    assert push["topic"] == "${google_pubsub_topic.run.id}"
    assert push["dead_letter_policy"][0]["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert push["retry_policy"][0]["maximum_backoff"] == "600s"
    assert "oidc_token" in push["push_config"][0]
    sizes = locals_(tf)["functions"]
    assert sizes["run_job"]["timeout"] >= 3600 > sizes["preview_table"]["timeout"]


def test_no_public_access_and_no_broad_roles():
    text = "\n".join(
        line for p in INFRA.glob("*.tf") for line in p.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    assert "allUsers" not in text and "allAuthenticatedUsers" not in text
    roles = set(re.findall(r'role\s*=\s*"(roles/[^"]+)"', text))
    assert roles <= {
        "roles/cloudsql.client",
        "roles/cloudsql.instanceUser",
        "roles/run.invoker",
        "roles/iam.serviceAccountTokenCreator",
        "roles/pubsub.publisher",
        "roles/pubsub.subscriber",
        "roles/datastore.user",
        "roles/bigquery.jobUser",
        "roles/bigquery.dataEditor",
        "roles/secretmanager.secretAccessor",
    }, roles
    assert not {"roles/owner", "roles/editor"} & roles


def test_secrets_are_granted_only_by_name_prefix(tf):
    members = resources(tf, "google_project_iam_member")
    for name in ("api_secrets", "runner_reads_secrets"):
        assert members[name]["condition"][0]["expression"] == "${local.secret_condition}"
    # the connections' secrets, and the alert webhooks' (a job's own, and var.alert_webhook_secret)
    assert locals_(tf)["secret_condition"] == " || ".join(
        f'resource.name.startsWith(\\"projects/${{local.number}}/secrets/${{local.{prefix}}}\\")'
        for prefix in ("secret_prefix", "alert_secret_prefix")
    )
    assert locals_(tf)["alert_secret_prefix"] == WEBHOOK_SECRET_PREFIX
    assert webhook_secret_name("abc123abc123").startswith(WEBHOOK_SECRET_PREFIX)
    assert not WEBHOOK_SECRET_PREFIX.startswith(SECRET_PREFIX) and not SECRET_PREFIX.startswith(WEBHOOK_SECRET_PREFIX)


def test_the_wizard_may_only_invoke_the_etl_api_function(tf):
    local = locals_(tf)
    assert set(local["http_functions"]) == entry_points() - {"run_job"}
    invokers = resources(tf, "google_cloud_run_v2_service_iam_member")
    wizard_grants = [b for b in invokers.values() if b["member"] == "${google_service_account.wizard.member}"]
    assert len(wizard_grants) == 1 and "for_each" not in wizard_grants[0]
    assert wizard_grants[0]["name"] == '${google_cloudfunctions2_function.fn["etl_api"].service_config[0].service}'
    assert all("wizard" not in str(b["member"]) for b in resources(tf, "google_project_iam_member").values())


# --- Reaching production databases: Cloud SQL and private networks -----------------------------------

READERS = {"api": "${google_service_account.api.member}", "runner": "${google_service_account.runner.member}"}
INSTANCES = ["etl-proj:europe-west1:orders", "example.com:etl-proj:us-east4:shop"]


def test_cloud_sql_roles_go_to_the_runner_and_api_accounts_only(tf):
    """The connector and the sockets need roles/cloudsql.client, IAM database login
    roles/cloudsql.instanceUser: for the accounts of run_job and the API functions, no other."""
    assert locals_(tf)["source_readers"] == READERS
    members = resources(tf, "google_project_iam_member")
    granted = {name: body for name, body in members.items() if str(body["role"]).startswith("roles/cloudsql.")}
    assert {body["role"] for body in granted.values()} == {CLIENT_ROLE, LOGIN_ROLE}  # what the adapter's errors name
    for body in granted.values():
        assert body["for_each"] == "${local.source_readers}" and body["member"] == "${each.value}"
        assert body["project"] == "${var.project}" and "condition" not in body
    services = resources(tf, "google_project_service")["apis"]["for_each"]
    assert f'"{ADMIN_API}"' in services  # the connector's API


def test_the_cloud_sql_instances_variable_is_a_list_of_instance_connection_names(tf):
    variable = variables(tf)["cloudsql_instances"]
    assert variable["type"] == "${list(string)}" and variable["default"] == []
    pattern = re.search(r'regex\("(.+?)", name\)', variable["validation"][0]["condition"])[1].replace("\\\\", "\\")
    for name in INSTANCES:
        assert re.fullmatch(pattern, name), name
    for name in ("orders", "etl-proj:orders", "etl-proj/europe-west1/orders", "ETL-PROJ:europe-west1:orders"):
        assert not re.fullmatch(pattern, name), name


def test_cloud_sql_sockets_are_mounted_into_run_job_and_etl_api_when_instances_are_named(tf):
    reaching = {name for name, f in locals_(tf)["functions"].items() if f["reach"]}
    assert reaching == {"run_job", "etl_api"}
    sockets = resources(tf, "terraform_data")["cloudsql_sockets"]
    scope = function_scope(tf, "run_job")
    assert evaluate(sockets["for_each"], **scope) == set()  # none named: nothing mounted, no gcloud needed
    scope = function_scope(tf, "run_job", cloudsql_instances=INSTANCES)
    assert evaluate(sockets["for_each"], **scope) == reaching
    # set again when the function is redeployed or the list changes
    assert sockets["triggers_replace"] == [
        "${google_cloudfunctions2_function.fn[each.key].update_time}",
        "${var.cloudsql_instances}",
    ]
    command = sockets["provisioner"][0]["local-exec"]["command"]
    assert command.startswith('${join(" ", [')
    for part in (
        '"gcloud run services update"',
        'reverse(split("/", google_cloudfunctions2_function.fn[each.key].service_config[0].service))[0]',
        '"--project=${var.project}"',
        '"--region=${var.region}"',
        '"--set-cloudsql-instances=${join(",", var.cloudsql_instances)}"',
        '"--quiet"',
    ):
        assert part in command, part

    # where the code looks for them, in the reaching functions only
    fn = resources(tf, "google_cloudfunctions2_function")["fn"]["service_config"][0]
    for name, f in locals_(tf)["functions"].items():
        env = evaluate(fn["environment_variables"], **function_scope(tf, name, cloudsql_instances=INSTANCES))
        if f["reach"]:
            assert env["ETL_CLOUDSQL_SOCKET_DIR"] == str(Settings().cloudsql_socket_dir) == "/cloudsql"
            assert Settings.from_env(env).cloudsql_socket_dir == Path("/cloudsql")
        else:
            assert "ETL_CLOUDSQL_SOCKET_DIR" not in env


VPC_FIELDS = ("vpc_connector", "vpc_connector_egress_settings", "direct_vpc_egress")


def vpc_settings(tf, name, **values):
    """What the function `name` gets for its VPC egress, with the variables at `values`."""
    config = resources(tf, "google_cloudfunctions2_function")["fn"]["service_config"][0]
    scope = function_scope(tf, name, **values)
    [interface] = [d["direct_vpc_network_interface"] for d in config["dynamic"] if "direct_vpc_network_interface" in d]
    return {
        **{field: evaluate(config[field], **scope) for field in VPC_FIELDS},
        "interfaces": [
            {key: evaluate(interface["content"][0][key], **scope) for key in ("network", "subnetwork")}
            for _ in evaluate(interface["for_each"], **scope)
        ],
    }


NO_EGRESS = {"vpc_connector": None, "vpc_connector_egress_settings": None, "direct_vpc_egress": None, "interfaces": []}
CONNECTOR = "projects/etl-proj/locations/europe-west1/connectors/db-connector"


@pytest.mark.parametrize(
    ("values", "reaching"),
    [
        ({}, NO_EGRESS),
        (
            {"vpc_network": "db-net", "vpc_subnetwork": "db-subnet"},
            {
                **NO_EGRESS,
                "direct_vpc_egress": "VPC_EGRESS_PRIVATE_RANGES_ONLY",
                "interfaces": [{"network": "db-net", "subnetwork": "db-subnet"}],
            },
        ),
        (
            {"vpc_network": "db-net"},  # the subnetwork of the same name
            {
                **NO_EGRESS,
                "direct_vpc_egress": "VPC_EGRESS_PRIVATE_RANGES_ONLY",
                "interfaces": [{"network": "db-net", "subnetwork": None}],
            },
        ),
        (
            {"vpc_connector": CONNECTOR},
            {**NO_EGRESS, "vpc_connector": CONNECTOR, "vpc_connector_egress_settings": "PRIVATE_RANGES_ONLY"},
        ),
    ],
    ids=["unset", "direct-vpc", "direct-vpc-network-only", "connector"],
)
def test_vpc_egress_is_wired_to_run_job_and_etl_api_only_when_set(tf, values, reaching):
    """Private ranges only (BigQuery and Google's APIs keep the default path), and only for the
    functions that reach databases; with nothing set, no function has any VPC egress."""
    for name in ("network", "subnetwork", "connector"):
        variable = variables(tf)[f"vpc_{name}"]
        assert variable["type"] == "string" and variable["default"] is None
    for name, f in locals_(tf)["functions"].items():
        assert vpc_settings(tf, name, **values) == (reaching if f["reach"] else NO_EGRESS), name


def test_direct_vpc_egress_and_a_connector_are_not_both_given(tf):
    [check] = resources(tf, "google_cloudfunctions2_function")["fn"]["lifecycle"][0]["precondition"]
    for values, allowed in (
        ({}, True),
        ({"vpc_network": "db-net"}, True),
        ({"vpc_connector": CONNECTOR}, True),
        ({"vpc_subnetwork": "db-subnet", "vpc_connector": CONNECTOR}, False),
        ({"vpc_network": "db-net", "vpc_connector": CONNECTOR}, False),
    ):
        assert evaluate(check["condition"], **function_scope(tf, "run_job", **values)) is allowed, values
    # the provider has the direct VPC fields of google_cloudfunctions2_function from 7.21
    [providers] = tf["terraform"][0]["required_providers"]
    assert providers["google"]["version"] == ">= 7.21, < 8"


def test_the_iam_database_user_names_are_output(tf):
    outputs = {}
    for block in tf["output"]:
        outputs.update(block)
    users = outputs["cloudsql_iam_users"]["value"]
    for account in ("runner", "api"):
        assert users[account] == {
            "postgresql": f'${{trimsuffix(google_service_account.{account}.email, ".gserviceaccount.com")}}',
            "mysql": f"${{google_service_account.{account}.account_id}}",
        }


def test_cloudbuild_tests_then_packages_then_deploys():
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    ids = [step["id"] for step in build["steps"]]
    assert ids.index("test") < ids.index("package-functions") < ids.index("deploy")
    assert ids.index("push-wizard-image") < ids.index("deploy")
    scripts = "\n".join(str(step.get("args")) for step in build["steps"])
    for path in re.findall(r"(?<![\w/.])(bin/[\w-]+|requirements[\w-]*\.txt|tests/\w+)", scripts):
        assert (ROOT / path).exists(), path
    for step in build["steps"]:
        if "dir" in step:
            assert (ROOT / step["dir"]).is_dir()
    assert (ROOT / "Dockerfile").exists()


def deploy_command(instances):
    """The deploy step's script as Cloud Build would run it (its substitutions made), with terraform
    replaced by echo: the arguments it would get."""
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    step = next(s for s in build["steps"] if s["id"] == "deploy")
    values = {"_CLOUDSQL_INSTANCES": instances, "_REGION": "europe-west1", "_WIZARD_USERS": "user:me@example.com"}
    script = re.sub(r"\$\{(_[A-Z_]+)\}", lambda m: values[m.group(1)], step["args"][-1])
    script = re.sub(r"\$(PROJECT_ID|BUILD_ID)\b", lambda m: m.group(1).lower(), script).replace("$$", "$")
    script = script.replace("/workspace/terraform", "printf '%s\\n'")
    done = subprocess.run(["bash", "-ceu", script], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    "instances, expected",
    [
        ("", "[]"),
        ("p:europe-west1:orders", '["p:europe-west1:orders"]'),
        ("p:europe-west1:orders q:us-central1:crm", '["p:europe-west1:orders","q:us-central1:crm"]'),
    ],
)
def test_cloudbuild_passes_the_cloudsql_instances_to_terraform(instances, expected):
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    ids = [step["id"] for step in build["steps"]]
    assert ids.index("terraform-binary") < ids.index("deploy")
    deploy = build["steps"][ids.index("deploy")]
    assert "cloud-cli" in deploy["name"]  # gcloud, which mounting the sockets needs, is in its image
    assert "_CLOUDSQL_INSTANCES" in build["substitutions"]
    arguments = deploy_command(instances)
    assert arguments[0] == "apply" and f"-var=cloudsql_instances={expected}" in arguments
    assert "-var=project=project_id" in arguments and '-var=wizard_users=["user:me@example.com"]' in arguments


# --- Alerts and logs: the alert topic, the default webhook, the failed-runs metric and its policy -----


def test_the_alert_topic_is_the_one_the_functions_are_told_and_run_job_may_publish_to_it(tf):
    local = locals_(tf)
    assert resources(tf, "google_pubsub_topic")["alerts"]["name"] == "${local.alert_topic}"
    assert local["function_env"]["ETL_ALERT_TOPIC"] == "${local.alert_topic}"
    assert Settings.from_env({"ETL_ALERT_TOPIC": local["alert_topic"]}).alert_topic == "etl-alerts"
    publishers = {
        name: body
        for name, body in resources(tf, "google_pubsub_topic_iam_member").items()
        if body["topic"] == "${google_pubsub_topic.alerts.id}"
    }
    assert [(b["role"], b["member"]) for b in publishers.values()] == [
        ("roles/pubsub.publisher", "${google_service_account.runner.member}")
    ]
    assert local["alerting"] == ["run_job"]
    outputs = {k: v for block in tf["output"] for k, v in block.items()}
    assert outputs["alert_topic"]["value"] == "${google_pubsub_topic.alerts.id}"


def webhook_env(tf, name, **values):
    """The secret environment variables the function `name` gets, with the variables at `values`."""
    config = resources(tf, "google_cloudfunctions2_function")["fn"]["service_config"][0]
    scope = function_scope(tf, name, **values)
    [block] = [d["secret_environment_variables"] for d in config["dynamic"] if "secret_environment_variables" in d]
    content = {key: value for key, value in block["content"][0].items() if not key.startswith("__")}
    return [
        {key: evaluate(value, **scope) if isinstance(value, str) else value for key, value in content.items()}
        for _ in evaluate(block["for_each"], **scope)
    ]


def test_the_default_webhook_comes_from_secret_manager_to_run_job_only(tf):
    variable = variables(tf)["alert_webhook_secret"]
    assert variable["type"] == "string" and variable["default"] is None
    pattern = re.search(r'regex\("(.+?)", var', variable["validation"][0]["condition"])[1].replace("\\\\", "\\")
    assert re.fullmatch(pattern, "etl-alert-webhook") and re.fullmatch(pattern, "etl-alert-slack_ops")
    for name in ("etl-connection-webhook", "slack-webhook", "etl-alert-"):
        assert not re.fullmatch(pattern, name), name
    for name in locals_(tf)["functions"]:
        assert webhook_env(tf, name) == [], name  # unset: no function gets one
        expected = (
            [{"key": "ETL_ALERT_WEBHOOK", "project_id": "etl-proj", "secret": "etl-alert-webhook", "version": "latest"}]
            if name == "run_job"
            else []
        )
        assert webhook_env(tf, name, alert_webhook_secret="etl-alert-webhook", project="etl-proj") == expected, name
    assert '"ETL_ALERT_WEBHOOK"' in (ROOT / "shared" / "etlwizard" / "config.py").read_text()


def structured_line(event, labels):
    """The JSON line the library logs for an event in a run (logs.py), as Cloud Run hands it to
    Cloud Logging: a LogEntry's jsonPayload, labels and resource."""
    import io
    import json
    import logging

    from etlwizard.logs import configure_logging, fields, run_context

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    out = io.StringIO()
    try:
        configure_logging(Settings(log_format="json"), stream=out)
        with run_context(**labels):
            logging.getLogger("etlwizard.run.engine").warning("job j run r failed: x", extra=fields(event=event))
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = json.loads(out.getvalue().splitlines()[-1])
    return {
        "resource": {"type": "cloud_run_revision"},
        "labels": line.pop("logging.googleapis.com/labels"),
        "severity": line.pop("severity"),
        "jsonPayload": line,
    }


def matches(log_filter, entry):
    """A Logging query of `field="value"` clauses joined by AND, against a LogEntry as a dict."""
    clauses = log_filter.split(" AND ")
    for clause in clauses:
        path, value = re.fullmatch(r'([\w.]+)=\\"([^"\\]*)\\"', clause.strip()).groups()
        found = entry
        for part in path.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if found != value:
            return False
    return True


def test_the_failed_runs_metric_counts_the_line_a_failed_run_logs(tf):
    from etlwizard.logs import FAILED_RUN_EVENT

    metric = resources(tf, "google_logging_metric")["failed_runs"]
    labels = {"job_id": "abc123abc123", "run_id": "r1", "trigger": "schedule"}
    assert matches(metric["filter"], structured_line(FAILED_RUN_EVENT, labels))
    assert not matches(metric["filter"], structured_line("run_succeeded", labels))
    descriptor = metric["metric_descriptor"][0]
    assert (descriptor["metric_kind"], descriptor["value_type"]) == ("DELTA", "INT64")
    assert [label["key"] for label in descriptor["labels"]] == ["job_id"]
    extract = re.fullmatch(r"EXTRACT\((labels\.\w+)\)", metric["label_extractors"]["job_id"])
    assert extract and structured_line(FAILED_RUN_EVENT, labels)["labels"]["job_id"] == labels["job_id"]
    apis = resources(tf, "google_project_service")["apis"]["for_each"]
    assert '"logging.googleapis.com"' in apis and '"monitoring.googleapis.com"' in apis


def test_the_alert_policy_notifies_the_channels_given_of_failed_runs_per_job(tf):
    policy = resources(tf, "google_monitoring_alert_policy")["failed_runs"]
    assert policy["notification_channels"] == "${var.alert_notification_channels}"
    [condition] = policy["conditions"][0]["condition_threshold"]
    metric = 'metric.type=\\"logging.googleapis.com/user/${google_logging_metric.failed_runs.name}\\"'
    assert metric in condition["filter"]
    assert (condition["comparison"], condition["threshold_value"]) == ("COMPARISON_GT", 0)
    [aggregation] = condition["aggregations"]
    assert aggregation["group_by_fields"] == ["metric.label.job_id"]  # an incident per failing job
    assert aggregation["per_series_aligner"] == "ALIGN_SUM" and aggregation["cross_series_reducer"] == "REDUCE_SUM"
    assert "$${metric.label.job_id}" in policy["documentation"][0]["content"]  # Monitoring's variable, not Terraform's

    variable = variables(tf)["alert_notification_channels"]
    assert variable["type"] == "${list(string)}" and variable["default"] == []
    pattern = re.search(r'regex\("(.+?)", id', variable["validation"][0]["condition"])[1].replace("\\\\", "\\")
    assert re.fullmatch(pattern, "projects/etl-proj/notificationChannels/1234567890")
    for bad in ("1234567890", "projects/etl-proj/notificationChannels/", "notificationChannels/12"):
        assert not re.fullmatch(pattern, bad), bad
