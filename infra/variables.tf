variable "project" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the wizard, Cloud Scheduler jobs and the function source bucket."
  type        = string
  default     = "europe-west1"
}

variable "dataset" {
  description = "Default BigQuery dataset for new destination tables."
  type        = string
  default     = "etl_wizard"
}

variable "bigquery_location" {
  description = "Location of the default dataset."
  type        = string
  default     = "EU"
}

variable "functions_zip" {
  description = "The packaged functions (bin/package-functions): main.py, the etlwizard library, requirements.txt."
  type        = string
  default     = "../build/functions.zip"
}

variable "wizard_image" {
  description = "The wizard's container image (built by cloudbuild.yaml)."
  type        = string
}

variable "wizard_users" {
  description = "Who may open the wizard, as IAM members (user:alice@example.com, group:data@example.com)."
  type        = list(string)
}

# --- Reaching production databases (run_job and etl_api) ----------------------------------------------

variable "cloudsql_instances" {
  description = <<-EOT
    Cloud SQL instances, as instance connection names (project:region:instance), whose Unix sockets
    run_job and etl_api get at /cloudsql/<instance>: the bulk readers' way to a Cloud SQL database.
    Connections to instances not listed still work, reading through Google's connector instead (the
    catalog driver's way, which needs no socket). Mounting them runs gcloud where terraform runs.
  EOT
  type        = list(string)
  default     = []
  validation {
    condition = alltrue([
      for name in var.cloudsql_instances :
      can(regex("^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]:[a-z]+-[a-z]+[0-9]:[a-z][a-z0-9-]{0,97}$", name))
    ])
    error_message = "Each Cloud SQL instance is its instance connection name: project:region:instance."
  }
}

variable "vpc_network" {
  description = <<-EOT
    Direct VPC egress for databases on private IPs (a Cloud SQL instance's private IP, a database VM):
    the VPC network run_job and etl_api send private-range traffic into. With vpc_subnetwork, or alone
    (then the subnetwork of the same name); null: no VPC egress. Not together with vpc_connector.
  EOT
  type        = string
  default     = null
}

variable "vpc_subnetwork" {
  description = "Direct VPC egress: the subnetwork (in var.region) run_job's and etl_api's instances take addresses from; null: the one named like vpc_network."
  type        = string
  default     = null
}

variable "vpc_connector" {
  description = <<-EOT
    Instead of Direct VPC egress: a Serverless VPC Access connector (projects/PROJECT/locations/REGION/connectors/NAME)
    run_job and etl_api send private-range traffic through; null: none.
  EOT
  type        = string
  default     = null
}

# --- Alerts (README, "Alerts" and "Logs") ------------------------------------------------------------

variable "alert_notification_channels" {
  description = <<-EOT
    Cloud Monitoring notification channels (projects/PROJECT/notificationChannels/ID: e-mail, SMS,
    Slack, PagerDuty, a webhook) the failed-runs alert policy notifies. Empty: its incidents show in
    the console only. Make one with `gcloud beta monitoring channels create`.
  EOT
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for id in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", id))])
    error_message = "Each notification channel is its full name: projects/PROJECT/notificationChannels/ID."
  }
}

variable "alert_webhook_secret" {
  description = <<-EOT
    The default alert webhook (Slack's incoming webhook, or any HTTPS receiver of JSON) every job's
    alerts are POSTed to: the id of a Secret Manager secret, named etl-alert-*, holding its URL
    (printf %s "$URL" | gcloud secrets create etl-alert-webhook --data-file=-). null: none.
  EOT
  type        = string
  default     = null
  validation {
    condition     = var.alert_webhook_secret == null || can(regex("^etl-alert-[A-Za-z0-9_-]{1,245}$", var.alert_webhook_secret))
    error_message = "The webhook's secret is named etl-alert-* (the functions may read those secrets only)."
  }
}
