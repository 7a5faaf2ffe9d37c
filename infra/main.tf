# ETL Wizard on Google Cloud: every resource the code uses, and no permission it does not.
#
#   browser --(Cloud Run IAM)--> wizard --(ID token)--> preview_table, validate_schema, create_job, etl_api
#   Cloud Scheduler --> topic etl-run-job --(push, OIDC)--> run_job      (dead letters: etl-run-job-dead-letter)

terraform {
  required_version = ">= 1.5"
  backend "gcs" {
    prefix = "etl-wizard"
  }
  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.21: google_cloudfunctions2_function's direct_vpc_network_interface and direct_vpc_egress
      version = ">= 7.21, < 8"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {}

locals {
  run_topic     = "etl-run-job"
  secret_prefix = "etl-connection-"
  # Alerts (README, "Alerts"): the default topic every job's alerts go to, and the prefix of the
  # webhook secrets (a job's own webhook URL, and var.alert_webhook_secret)
  alert_topic         = "etl-alerts"
  alert_secret_prefix = "etl-alert-"
  # entry point => sizing. run_job loads one window or chunk: the longest timeout an HTTP-triggered
  # 2nd-gen function allows, one run per instance (a run uses the instance's memory and CPU). The
  # HTTP functions wait on databases and BigQuery most of a request: an instance serves
  # `concurrency` requests at once on as many threads (THREADS, functions-framework's gunicorn),
  # which needs a whole vCPU; their catalog connections come from a pool of ETL_POOL_SIZE per
  # saved connection per instance. `reach`: the function reaches production databases (run_job's
  # runs; etl_api's connection tests, catalogs and previews), so it gets the Cloud SQL sockets and
  # the VPC egress below.
  # run_job's memory from the measured peak: bench/load.py's 2M-row catalog run and its replace
  # (PostgreSQL, 10 columns) peak at 280 MB RSS, 197 MB of it the process with the library
  # imported, flat in the table's size. /tmp is memory on Cloud Functions: the Parquet files in
  # flight (at most ETL_LOADS_IN_FLIGHT + 1 of ETL_CHUNK_ROWS rows: 1.25M rows) hold 12 MB of that
  # table (zstd, ~10 bytes a row). Headroom ~730 MB: rows of up to ~500 bytes compressed; a wider
  # table wants a smaller ETL_CHUNK_ROWS, or more memory here.
  functions = {
    preview_table   = { memory = "512Mi", cpu = "1", concurrency = 16, timeout = 60, sa = "api", reach = false }
    validate_schema = { memory = "256Mi", cpu = "1", concurrency = 16, timeout = 60, sa = "api", reach = false }
    create_job      = { memory = "512Mi", cpu = "1", concurrency = 16, timeout = 120, sa = "api", reach = false }
    etl_api         = { memory = "512Mi", cpu = "1", concurrency = 16, timeout = 120, sa = "api", reach = true }
    run_job         = { memory = "1Gi", cpu = "1", concurrency = 1, timeout = 3600, sa = "runner", reach = true }
  }
  # The functions that send alerts (run_job's runs: failed, stuck, unusual row counts, mismatches):
  # they get the default webhook (var.alert_webhook_secret) and may publish to the alert topic.
  alerting = ["run_job"]
  function_env = {
    ETL_STACK     = "gcp"
    ETL_PROJECT   = var.project
    ETL_REGION    = var.region
    ETL_DATASET   = var.dataset
    ETL_RUN_TOPIC = local.run_topic
    # Every job's alerts are published here (one JSON message per event); subscribe to it as you like
    ETL_ALERT_TOPIC = local.alert_topic
    # Catalog connections per saved connection per instance: times max_instance_count (10), at
    # most 40 of a database's connections for one function (PostgreSQL allows 100 by default).
    ETL_POOL_SIZE = "4"
    # glibc: two malloc arenas, so a run's memory stays flat in the table's size (README, Benchmarks)
    MALLOC_ARENA_MAX = "2"
  }
  # What the reaching functions get besides: where the Cloud SQL sockets are (terraform_data.cloudsql_sockets)
  reach_env = {
    ETL_CLOUDSQL_SOCKET_DIR = "/cloudsql"
  }
  # Private-IP databases: Direct VPC egress (a network and/or subnetwork) or a Serverless VPC Access
  # connector, for the reaching functions only; only private ranges go through it, so BigQuery and
  # Google's other APIs stay on the default path (no Cloud NAT needed).
  direct_vpc = var.vpc_network != null || var.vpc_subnetwork != null
}

resource "google_project_service" "apis" {
  for_each = toset([
    "bigquery.googleapis.com", "cloudbuild.googleapis.com", "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com", "firestore.googleapis.com", "iam.googleapis.com", "pubsub.googleapis.com",
    "run.googleapis.com", "secretmanager.googleapis.com", "artifactregistry.googleapis.com",
    "sqladmin.googleapis.com", # the Cloud SQL connector asks it for an instance's address and certificate
    # the failed-runs metric and its alert policy
    "logging.googleapis.com", "monitoring.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

# --- Job store, destination, run topic ---------------------------------------------------------

resource "google_firestore_database" "jobs" {
  name        = "(default)"
  location_id = var.region
  type        = "FIRESTORE_NATIVE"
  depends_on  = [google_project_service.apis]
}
# The job store reads documents by id and lists collections: Firestore's automatic single-field
# indexes serve every query it makes, so no composite index is declared.

resource "google_bigquery_dataset" "default" {
  dataset_id = var.dataset
  location   = var.bigquery_location
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "run" {
  name       = local.run_topic
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  name = "${local.run_topic}-dead-letter"
}

resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${local.run_topic}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "1209600s" # 14 days to look at what failed
}

# run_job receives the topic's messages by push (functions-framework turns the push body into a
# CloudEvent); failures are retried with backoff, then parked on the dead-letter topic.
resource "google_pubsub_subscription" "run_job" {
  name                 = "${local.run_topic}-run-job"
  topic                = google_pubsub_topic.run.id
  ack_deadline_seconds = 600
  push_config {
    push_endpoint = google_cloudfunctions2_function.fn["run_job"].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
    }
  }
  retry_policy {
    minimum_backoff = "30s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = 5
  }
}

# --- Alerts: the topic, the failed-runs metric and its policy ---------------------------------------

resource "google_pubsub_topic" "alerts" {
  name       = local.alert_topic
  depends_on = [google_project_service.apis]
}

# run_job logs one line per failed run, {"event": "run_failed", ...} with the labels job_id, run_id
# and trigger (shared/etlwizard/logs.py): counted here, per job.
resource "google_logging_metric" "failed_runs" {
  name        = "etl_wizard_failed_runs"
  description = "ETL Wizard runs recorded failed, by job (one log line each from run-job)."
  filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"run_failed\""
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "ETL Wizard failed runs"
    labels {
      key         = "job_id"
      value_type  = "STRING"
      description = "The job whose run failed"
    }
  }
  label_extractors = {
    job_id = "EXTRACT(labels.job_id)"
  }
  depends_on = [google_project_service.apis]
}

# An incident (and a notification on each channel of var.alert_notification_channels) for every job
# with a failed run in the last 5 minutes; closed a day after the job stops failing.
resource "google_monitoring_alert_policy" "failed_runs" {
  display_name          = "ETL Wizard: a run failed"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  conditions {
    display_name = "Failed ETL Wizard runs"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.failed_runs.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.job_id"]
      }
      trigger {
        count = 1
      }
    }
  }
  alert_strategy {
    auto_close = "86400s"
  }
  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A run of ETL Wizard job `$${metric.label.job_id}` failed. Its run history (the wizard's Jobs page)
      says why; its log lines: `labels.job_id="$${metric.label.job_id}"` in Logs Explorer.
    EOT
  }
}

# --- Functions -----------------------------------------------------------------------------------

resource "google_storage_bucket" "sources" {
  name                        = "${var.project}-etl-wizard-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
}

resource "google_storage_bucket_object" "functions" {
  name   = "functions-${filemd5(var.functions_zip)}.zip"
  bucket = google_storage_bucket.sources.name
  source = var.functions_zip
}

resource "google_cloudfunctions2_function" "fn" {
  for_each = local.functions
  name     = replace(each.key, "_", "-")
  location = var.region

  build_config {
    runtime     = "python311"
    entry_point = each.key
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout
    max_instance_count               = each.key == "run_job" ? 20 : 10
    max_instance_request_concurrency = each.value.concurrency
    service_account_email            = each.value.sa == "runner" ? google_service_account.runner.email : google_service_account.api.email
    environment_variables = merge(
      local.function_env,
      { THREADS = tostring(each.value.concurrency) },
      { for name, value in local.reach_env : name => value if each.value.reach },
    )
    ingress_settings = "ALLOW_ALL" # reachable, but only with an ID token IAM accepts

    # The default alert webhook, from Secret Manager (its URL holds a token): for the alerting functions
    dynamic "secret_environment_variables" {
      for_each = contains(local.alerting, each.key) && var.alert_webhook_secret != null ? ["webhook"] : []
      content {
        key        = "ETL_ALERT_WEBHOOK"
        project_id = var.project
        secret     = var.alert_webhook_secret
        version    = "latest"
      }
    }

    # Private-IP databases (locals.direct_vpc): unset, the functions have no VPC egress at all.
    vpc_connector                 = each.value.reach ? var.vpc_connector : null
    vpc_connector_egress_settings = each.value.reach && var.vpc_connector != null ? "PRIVATE_RANGES_ONLY" : null
    direct_vpc_egress             = each.value.reach && local.direct_vpc ? "VPC_EGRESS_PRIVATE_RANGES_ONLY" : null
    dynamic "direct_vpc_network_interface" {
      for_each = each.value.reach && local.direct_vpc ? ["vpc"] : []
      content {
        network    = var.vpc_network
        subnetwork = var.vpc_subnetwork
      }
    }
  }
  lifecycle {
    precondition {
      condition     = var.vpc_connector == null || !local.direct_vpc
      error_message = "Give Direct VPC egress (vpc_network, vpc_subnetwork) or a VPC connector (vpc_connector), not both."
    }
  }
  depends_on = [google_project_service.apis]
}

# --- Cloud SQL sockets for the bulk readers ---------------------------------------------------------
# The bulk readers (libpq, MySQL's client) reach a Cloud SQL instance through the Unix socket Cloud Run
# mounts at /cloudsql/<instance> for each of a service's Cloud SQL connections. A 2nd-gen function is a
# Cloud Run service (service_config[0].service), but google_cloudfunctions2_function has no field for
# them, unlike google_cloud_run_v2_service's cloud_sql_instance volume (hashicorp/terraform-provider-google
# issues 12578 and 20735, open). So they are set on the function's Cloud Run service as Cloud Run
# documents it for a service, `gcloud run services update --set-cloudsql-instances` (the workaround
# those issues give), for run_job and etl_api when var.cloudsql_instances names any: again whenever
# Terraform redeploys the function (update_time) or the list changes, since a redeployment makes a
# new revision from the function's own configuration.
# This needs gcloud, signed in, where terraform runs. (The catalog driver needs no socket: Google's
# Python connector reaches the instance itself.) Emptying the list leaves the last sockets mounted:
#   gcloud run services update SERVICE --region=REGION --clear-cloudsql-instances
resource "terraform_data" "cloudsql_sockets" {
  for_each         = toset([for name, fn in local.functions : name if fn.reach && length(var.cloudsql_instances) > 0])
  triggers_replace = [google_cloudfunctions2_function.fn[each.key].update_time, var.cloudsql_instances]

  provisioner "local-exec" {
    command = join(" ", [
      "command -v gcloud >/dev/null || { echo 'cloudsql_instances: gcloud is needed where terraform runs' >&2; exit 1; };",
      "gcloud run services update",
      reverse(split("/", google_cloudfunctions2_function.fn[each.key].service_config[0].service))[0],
      "--project=${var.project}",
      "--region=${var.region}",
      "--set-cloudsql-instances=${join(",", var.cloudsql_instances)}",
      "--quiet",
    ])
  }
}

# --- The wizard on Cloud Run -----------------------------------------------------------------------

resource "google_cloud_run_v2_service" "wizard" {
  name     = "etl-wizard"
  location = var.region
  ingress  = "INGRESS_TRAFFIC_ALL"

  template {
    service_account = google_service_account.wizard.email
    # As many requests as the Dockerfile's gunicorn serves at once (2 workers x 16 threads): more
    # would queue inside the instance instead of starting another.
    max_instance_request_concurrency = 32
    containers {
      image = var.wizard_image
      resources {
        limits = { cpu = "1", memory = "1Gi" } # two workers of about 190 MB each (the library imported)
      }
      env {
        name  = "ETL_STACK"
        value = "gcp"
      }
      env {
        name  = "ETL_PROJECT"
        value = var.project
      }
      env {
        name  = "ETL_DATASET"
        value = var.dataset
      }
      env {
        name  = "ETL_API_URL"
        value = google_cloudfunctions2_function.fn["etl_api"].service_config[0].uri
      }
    }
    scaling {
      min_instance_count = 0
      max_instance_count = 3
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_artifact_registry_repository" "images" {
  repository_id = "etl-wizard"
  location      = var.region
  format        = "DOCKER"
  depends_on    = [google_project_service.apis]
}
