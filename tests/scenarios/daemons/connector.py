"""A contact-centre connector as teams write them (MSAL + requests), configured only from its environment: poll the
queue mailbox, answer each customer with a receipt attached, move the message to Processed; stop on SIGTERM."""

import base64
import os
import signal
import sys
import time

import msal
import requests

GRAPH = os.environ["M365_MOCK_GRAPH_URL"]
QUEUE = os.environ["QUEUE_MAILBOX"]
RECEIPT = b"ticket received\n"
stopping = False


def stop(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
app = msal.ConfidentialClientApplication(
    os.environ["M365_MOCK_CLIENT_ID"],
    client_credential=os.environ["M365_MOCK_CLIENT_SECRET"],
    authority=os.environ["M365_MOCK_AUTHORITY"],
    instance_discovery=False,
)


def headers():
    result = app.acquire_token_for_client(scopes=[os.environ["M365_MOCK_SCOPE"]])
    if "access_token" not in result:
        sys.exit(f"no token: {result.get('error_description')}")
    return {"Authorization": f"Bearer {result['access_token']}"}


def processed_folder():
    folders = requests.get(f"{GRAPH}/users/{QUEUE}/mailFolders?$top=100", headers=headers(), timeout=10).json()
    for folder in folders["value"]:
        if folder["displayName"] == "Processed":
            return folder["id"]
    made = requests.post(
        f"{GRAPH}/users/{QUEUE}/mailFolders", json={"displayName": "Processed"}, headers=headers(), timeout=10
    )
    return made.json()["id"]


handled = 0
destination = processed_folder()
while not stopping:
    page = requests.get(
        f"{GRAPH}/users/{QUEUE}/mailFolders/inbox/messages?$filter=isRead eq false&$select=subject,from&$top=10",
        headers=headers(),
        timeout=10,
    )
    page.raise_for_status()
    for message in page.json()["value"]:
        reply = {
            "message": {
                "subject": f"Re: {message['subject']}",
                "body": {"contentType": "text", "content": "We have your ticket."},
                "toRecipients": [message["from"]],
                "attachments": [
                    {
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": "receipt.txt",
                        "contentBytes": base64.b64encode(RECEIPT).decode(),
                    }
                ],
            }
        }
        requests.post(f"{GRAPH}/users/{QUEUE}/sendMail", json=reply, headers=headers(), timeout=10).raise_for_status()
        moved = requests.post(
            f"{GRAPH}/users/{QUEUE}/messages/{message['id']}/move",
            json={"destinationId": destination},
            headers=headers(),
            timeout=10,
        )
        moved.raise_for_status()
        handled += 1
        print(f"handled {message['subject']}")
    time.sleep(0.2)
print(f"stopped after {handled} message(s)")
