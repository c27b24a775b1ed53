"""Microsoft Graph mail v1.0."""
