output "wizard_url" {
  description = "Open this (as one of var.wizard_users) to use the wizard."
  value       = google_cloud_run_v2_service.wizard.uri
}

output "function_urls" {
  value = { for name, fn in google_cloudfunctions2_function.fn : name => fn.service_config[0].uri }
}

output "run_topic" {
  value = google_pubsub_topic.run.id
}

output "alert_topic" {
  description = "Every job's alerts, one JSON message per event (README, \"Alerts\"): subscribe to it."
  value       = google_pubsub_topic.alerts.id
}

output "cloudsql_iam_users" {
  description = <<-EOT
    For IAM database login: the database user names of the runner and API service accounts, to create
    on each Cloud SQL instance (gcloud sql users create NAME --instance=INSTANCE
    --type=cloud_iam_service_account) and grant read access to, and to give as a connection's user.
  EOT
  value = {
    runner = {
      postgresql = trimsuffix(google_service_account.runner.email, ".gserviceaccount.com")
      mysql      = google_service_account.runner.account_id
    }
    api = {
      postgresql = trimsuffix(google_service_account.api.email, ".gserviceaccount.com")
      mysql      = google_service_account.api.account_id
    }
  }
}
