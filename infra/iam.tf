# Service accounts, one per role in the design, each with only what its code does.
#   wizard : serves pages; may invoke the etl_api function (the whole JSON API), nothing else
#   api    : preview_table, validate_schema, create_job, etl_api
#   runner : run_job
#   pusher : the identity Pub/Sub pushes run messages to run_job with

resource "google_service_account" "wizard" {
  account_id   = "etl-wizard"
  display_name = "ETL Wizard: the web wizard"
}

resource "google_service_account" "api" {
  account_id   = "etl-wizard-api"
  display_name = "ETL Wizard: preview, validate, create-job and API functions"
}

resource "google_service_account" "runner" {
  account_id   = "etl-wizard-runner"
  display_name = "ETL Wizard: run-job"
}

resource "google_service_account" "pusher" {
  account_id   = "etl-wizard-pusher"
  display_name = "ETL Wizard: Pub/Sub push to run-job"
}

# secret_condition: the connection secrets, and the alert webhooks' (their URLs hold tokens)
locals {
  number           = data.google_project.this.number
  http_functions   = ["preview_table", "validate_schema", "create_job", "etl_api"]
  secret_condition = "resource.name.startsWith(\"projects/${local.number}/secrets/${local.secret_prefix}\") || resource.name.startsWith(\"projects/${local.number}/secrets/${local.alert_secret_prefix}\")"
  pubsub_agent     = "serviceAccount:service-${local.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  scheduler_agent  = "serviceAccount:service-${local.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
  data_writers     = { api = google_service_account.api.member, runner = google_service_account.runner.member }
  # The accounts of the functions that reach source databases: etl_api's (the API functions') and run_job's
  source_readers = { api = google_service_account.api.member, runner = google_service_account.runner.member }
}

# --- Who may call what (no allUsers, no allAuthenticatedUsers anywhere) ---------------------------

resource "google_cloud_run_v2_service_iam_member" "wizard_users" {
  for_each = toset(var.wizard_users)
  name     = google_cloud_run_v2_service.wizard.name
  location = var.region
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service_iam_member" "wizard_calls_etl_api" {
  name     = google_cloudfunctions2_function.fn["etl_api"].service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.wizard.member
}

resource "google_cloud_run_v2_service_iam_member" "pusher_calls_run_job" {
  name     = google_cloudfunctions2_function.fn["run_job"].service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.pusher.member
}

# Pub/Sub signs its pushes as the pusher, and moves undeliverable messages to the dead-letter topic.
resource "google_service_account_iam_member" "pubsub_signs_as_pusher" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "pubsub_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_forwards_dead_letters" {
  subscription = google_pubsub_subscription.run_job.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Cloud Scheduler publishes scheduled run messages; the API functions publish "Run now".
resource "google_pubsub_topic_iam_member" "scheduler_publishes" {
  topic  = google_pubsub_topic.run.id
  role   = "roles/pubsub.publisher"
  member = local.scheduler_agent
}

resource "google_pubsub_topic_iam_member" "api_publishes" {
  topic  = google_pubsub_topic.run.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.api.member
}

# run_job publishes its jobs' alerts (README, "Alerts").
resource "google_pubsub_topic_iam_member" "runner_publishes_alerts" {
  topic  = google_pubsub_topic.alerts.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.runner.member
}

# --- Job store and BigQuery: the API functions and run_job ------------------------------------------

resource "google_project_iam_member" "firestore" {
  for_each = local.data_writers
  project  = var.project
  role     = "roles/datastore.user"
  member   = each.value
}

resource "google_project_iam_member" "bigquery_jobs" {
  for_each = local.data_writers
  project  = var.project
  role     = "roles/bigquery.jobUser"
  member   = each.value
}

# Destination tables may be created in any dataset the user names, and BigQuery sources read tables.
resource "google_project_iam_member" "bigquery_data" {
  for_each = local.data_writers
  project  = var.project
  role     = "roles/bigquery.dataEditor"
  member   = each.value
}

# --- Connection passwords and alert webhooks: only secrets named etl-connection-* and etl-alert-* -----

resource "google_project_iam_custom_role" "connection_secrets" {
  role_id     = "etlWizardConnectionSecrets"
  title       = "ETL Wizard connection secrets"
  description = "Create, rotate, read and delete the etl-connection-* secrets."
  permissions = [
    "secretmanager.secrets.create", "secretmanager.secrets.delete", "secretmanager.secrets.get",
    "secretmanager.versions.add", "secretmanager.versions.access",
  ]
}

resource "google_project_iam_member" "api_secrets" {
  project = var.project
  role    = google_project_iam_custom_role.connection_secrets.id
  member  = google_service_account.api.member
  condition {
    title      = "connection secrets only"
    expression = local.secret_condition
  }
}

resource "google_project_iam_member" "runner_reads_secrets" {
  project = var.project
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.runner.member
  condition {
    title      = "connection secrets only"
    expression = local.secret_condition
  }
}

# --- Schedules: the API functions keep one Cloud Scheduler job per ETL job -------------------------

resource "google_project_iam_custom_role" "schedules" {
  role_id     = "etlWizardSchedules"
  title       = "ETL Wizard schedules"
  description = "Create, change, pause, resume and delete Cloud Scheduler jobs."
  permissions = [
    "cloudscheduler.jobs.create", "cloudscheduler.jobs.update", "cloudscheduler.jobs.pause",
    "cloudscheduler.jobs.enable", "cloudscheduler.jobs.delete", "cloudscheduler.jobs.get",
  ]
}

resource "google_project_iam_member" "api_schedules" {
  project = var.project
  role    = google_project_iam_custom_role.schedules.id
  member  = google_service_account.api.member
}

# --- Cloud SQL: Google's connector, the /cloudsql sockets, and IAM database login ------------------
# In this project; for an instance in another project, grant both there too.

# Connect to instances (cloudsql.instances.connect and get): the connector's and the sockets' calls
resource "google_project_iam_member" "cloudsql_client" {
  for_each = local.source_readers
  project  = var.project
  role     = "roles/cloudsql.client"
  member   = each.value
}

# Log in to a database as the service account (cloudsql.instances.login), for connections with IAM
# login; the database user itself is made on each instance (output cloudsql_iam_users).
resource "google_project_iam_member" "cloudsql_instance_user" {
  for_each = local.source_readers
  project  = var.project
  role     = "roles/cloudsql.instanceUser"
  member   = each.value
}
