"""The reference daemon-side client for Microsoft Graph mail over OAuth (built in a later issue)."""
