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
