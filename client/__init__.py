"""A small Microsoft Graph mail client for app-only daemons: tokens by secret or certificate, typed errors,
retries that honour Retry-After. Talks to the real Microsoft 365 by default, or to the m365-mock emulator.

    from m365_mock.client import ClientSettings, MailClient
    mail = MailClient(ClientSettings.from_env())
    for message in mail.messages("support@contoso.com", folder="inbox", unread=True):
        ...
"""

from m365_mock.client.auth import CertificateCredential, TokenProvider
from m365_mock.client.errors import AuthError, ClientError, ConfigError, GraphError
from m365_mock.client.mail import MailClient
from m365_mock.client.settings import ClientSettings

__all__ = [
    "AuthError",
    "CertificateCredential",
    "ClientError",
    "ClientSettings",
    "ConfigError",
    "GraphError",
    "MailClient",
    "TokenProvider",
]
