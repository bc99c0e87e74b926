"""The cohort: data dictionary (schema), reading, validation, dates, endpoints."""
