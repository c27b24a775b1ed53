#!/bin/sh
# A daemon in another language: curl and the environment only. Its token, then the subjects in $QUEUE_MAILBOX's
# Inbox. With USE_CACERT=1 it names the emulator's CA (--cacert); otherwise curl trusts CURL_CA_BUNDLE.
set -eu
trust=""
if [ "${USE_CACERT:-}" = 1 ]; then trust="--cacert $M365_MOCK_CA_FILE"; fi
token=$(curl -sS --fail $trust --data "grant_type=client_credentials" \
  --data-urlencode "client_id=$M365_MOCK_CLIENT_ID" --data-urlencode "client_secret=$M365_MOCK_CLIENT_SECRET" \
  --data-urlencode "scope=$M365_MOCK_SCOPE" "$M365_MOCK_TOKEN_ENDPOINT" |
  sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
curl -sS --fail $trust -H "Authorization: Bearer $token" \
  "$M365_MOCK_GRAPH_URL/users/$QUEUE_MAILBOX/mailFolders/inbox/messages?\$select=subject&\$top=50"
