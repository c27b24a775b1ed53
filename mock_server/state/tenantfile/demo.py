"""The built-in demo tenant: the setup an admin performs for a contact-centre mail connector."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from m365_mock.state.tenantfile.reader import LoadedWorld, load_world, new_secret_value

DEMO_DOMAINS = ["contoso.onmicrosoft.com", "contoso.com"]
DEMO_APP_NAME = "Contact Center Connector"
DEMO_SEED = 365
DEMO_MAIL: dict[str, dict[str, Any]] = {
    "support": {
        "generate": 12,
        "messages": [
            {
                "subject": "Order #10423 arrived damaged",
                "from": "Adele Vance <adele.vance@fabrikam.example>",
                "body": "Hello, the parcel arrived with a broken lid. Can you send a replacement? Adele",
            }
        ],
    },
    "sales": {"generate": 5},
    "billing": {"generate": 3},
}


def demo_tenant_data() -> dict[str, Any]:
    """The built-in tenant: the setup an admin performs for a contact-centre mail connector.

    Deterministic: the same ids, names and secret on every start (Faker and the secret use a fixed seed).
    """
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(DEMO_SEED)
    domain = DEMO_DOMAINS[0]
    users = []
    for _ in range(4):
        first, last = fake.unique.first_name(), fake.unique.last_name()
        local = f"{first}.{last}".lower()
        users.append(
            {
                "address": f"{local}@{domain}",
                "display_name": f"{first} {last}",
                "type": "user",
                "aliases": [f"{local}@{DEMO_DOMAINS[1]}"],
            }
        )
    shared = [
        ("support", "Customer Support"),
        ("sales", "Sales"),
        ("billing", "Billing"),
    ]
    return {
        "tenants": [
            {
                "name": "Contoso",
                "domains": list(DEMO_DOMAINS),
                "mailboxes": [
                    {
                        "address": f"{local}@{domain}",
                        "display_name": name,
                        "type": "shared",
                        "aliases": [f"{local}@{DEMO_DOMAINS[1]}"],
                        **DEMO_MAIL.get(local, {}),
                    }
                    for local, name in shared
                ]
                + users,
                "groups": [
                    {
                        "address": f"cctr_sec_group@{domain}",
                        "display_name": "cctr_sec_group",
                        "members": [f"support@{domain}", f"billing@{domain}"],
                    }
                ],
                "applications": [
                    {
                        "display_name": DEMO_APP_NAME,
                        "permissions": ["Mail.ReadWrite", "Mail.Send"],
                        "admin_consent": True,
                        "secrets": [{"display_name": "demo", "value": new_secret_value(random.Random(DEMO_SEED))}],
                    }
                ],
                "access_policies": [
                    {
                        "app_id": DEMO_APP_NAME,
                        "scope": f"cctr_sec_group@{domain}",
                        "access_right": "RestrictAccess",
                        "description": "Restrict this app to members of distribution group cctr_sec_group",
                    }
                ],
            }
        ],
    }


def load_demo_world(now: datetime | None = None) -> LoadedWorld:
    return load_world(demo_tenant_data(), now=now)
