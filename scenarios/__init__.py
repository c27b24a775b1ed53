"""Scenario files (format and schema), their runner, and reports for people and CI."""
