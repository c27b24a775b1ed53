"""m365-mock: an offline stand-in for the Entra ID token endpoint and Microsoft Graph mail."""

__version__ = "0.1.0"
