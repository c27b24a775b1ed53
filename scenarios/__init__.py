"""Scenario files and their runner (built in a later issue)."""
