"""A small Microsoft Graph mail client for app-only daemons: tokens by secret or certificate, typed errors,
retries that honour Retry-After. Talks to the real Microsoft 365 by default, or to the m365-mock emulator.

    from client import ClientSettings, MailClient
    mail = MailClient(ClientSettings.from_env())
    for message in mail.messages("support@contoso.com", folder="inbox", unread=True):
        ...
"""

from client.auth import CertificateCredential, TokenProvider
from client.errors import AuthError, ClientError, ConfigError, GraphError
from client.mail import MailClient
from client.settings import ClientSettings

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
