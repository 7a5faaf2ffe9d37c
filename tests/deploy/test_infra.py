"""Offline checks of what deploys: Terraform and cloudbuild.yaml parse, name exactly what the code
uses, and grant no broader permission than the code needs."""

import ast
import re
from pathlib import Path

import hcl2
import pytest
import yaml

from etlwizard.config import Settings
from etlwizard.connections import SECRET_PREFIX

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
    assert fn["environment_variables"] == "${merge(local.function_env, {THREADS = tostring(each.value.concurrency)})}"
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
    assert locals_(tf)["secret_condition"].startswith('resource.name.startsWith(\\"projects/${local.number}/secrets/')
    assert "${local.secret_prefix}" in locals_(tf)["secret_condition"]


def test_the_wizard_may_only_invoke_the_etl_api_function(tf):
    local = locals_(tf)
    assert set(local["http_functions"]) == entry_points() - {"run_job"}
    invokers = resources(tf, "google_cloud_run_v2_service_iam_member")
    wizard_grants = [b for b in invokers.values() if b["member"] == "${google_service_account.wizard.member}"]
    assert len(wizard_grants) == 1 and "for_each" not in wizard_grants[0]
    assert wizard_grants[0]["name"] == '${google_cloudfunctions2_function.fn["etl_api"].service_config[0].service}'
    assert all("wizard" not in str(b["member"]) for b in resources(tf, "google_project_iam_member").values())


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
