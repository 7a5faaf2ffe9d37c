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
