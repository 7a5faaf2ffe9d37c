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
      source  = "hashicorp/google"
      version = ">= 5.30, < 7"
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
  # entry point => sizing. run_job loads one window or chunk: the longest timeout an HTTP-triggered
  # 2nd-gen function allows, one run per instance (a run uses the instance's memory and CPU). The
  # HTTP functions wait on databases and BigQuery most of a request: an instance serves
  # `concurrency` requests at once on as many threads (THREADS, functions-framework's gunicorn),
  # which needs a whole vCPU; their catalog connections come from a pool of ETL_POOL_SIZE per
  # saved connection per instance.
  functions = {
    preview_table   = { memory = "512Mi", cpu = "1", concurrency = 16, timeout = 60, sa = "api" }
    validate_schema = { memory = "256Mi", cpu = "1", concurrency = 16, timeout = 60, sa = "api" }
    create_job      = { memory = "512Mi", cpu = "1", concurrency = 16, timeout = 120, sa = "api" }
    etl_api         = { memory = "512Mi", cpu = "1", concurrency = 16, timeout = 120, sa = "api" }
    run_job         = { memory = "2Gi", cpu = "1", concurrency = 1, timeout = 3600, sa = "runner" }
  }
  function_env = {
    ETL_STACK     = "gcp"
    ETL_PROJECT   = var.project
    ETL_REGION    = var.region
    ETL_DATASET   = var.dataset
    ETL_RUN_TOPIC = local.run_topic
    # Catalog connections per saved connection per instance: times max_instance_count (10), at
    # most 40 of a database's connections for one function (PostgreSQL allows 100 by default).
    ETL_POOL_SIZE = "4"
    # glibc: two malloc arenas, so a run's memory stays flat in the table's size (README, Benchmarks)
    MALLOC_ARENA_MAX = "2"
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "bigquery.googleapis.com", "cloudbuild.googleapis.com", "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com", "firestore.googleapis.com", "iam.googleapis.com", "pubsub.googleapis.com",
    "run.googleapis.com", "secretmanager.googleapis.com", "artifactregistry.googleapis.com",
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
    environment_variables            = merge(local.function_env, { THREADS = tostring(each.value.concurrency) })
    ingress_settings                 = "ALLOW_ALL" # reachable, but only with an ID token IAM accepts
  }
  depends_on = [google_project_service.apis]
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
