"""ETL Wizard: load PostgreSQL, MySQL and BigQuery tables into BigQuery."""
