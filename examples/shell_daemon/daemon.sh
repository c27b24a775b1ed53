#!/bin/sh
# Contact-centre queue watcher in POSIX shell with curl only: the token by hand (client credentials), kept and
# reused until shortly before it expires; then the queue mailbox's unread messages, with $filter, $select and
# $top, one subject per line.
#
# Configured from the environment only: M365_MOCK_AUTHORITY (or M365_MOCK_TOKEN_ENDPOINT), M365_MOCK_CLIENT_ID,
# M365_MOCK_CLIENT_SECRET, M365_MOCK_GRAPH_URL, CURL_CA_BUNDLE (the CA curl trusts), QUEUE_MAILBOX, POLL_SECONDS,
# ONCE (1: one poll, then exit). Exit status: 0 when stopped or after ONCE, 1 when a request fails, 2 when the
# configuration is incomplete.
set -eu

for name in M365_MOCK_AUTHORITY M365_MOCK_CLIENT_ID M365_MOCK_CLIENT_SECRET QUEUE_MAILBOX; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        echo "missing configuration: $name" >&2
        exit 2
    fi
done
TOKEN_ENDPOINT=${M365_MOCK_TOKEN_ENDPOINT:-${M365_MOCK_AUTHORITY%/}/oauth2/v2.0/token}
GRAPH_URL=${M365_MOCK_GRAPH_URL:-https://graph.microsoft.com/v1.0}
POLL_SECONDS=${POLL_SECONDS:-30}
token=""
token_until=0

request_id() {
    cat /proc/sys/kernel/random/uuid 2>/dev/null || date +%s%N
}

# A JSON string property of a flat JSON text: json_string NAME < json
json_string() {
    sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"
}

get_token() {
    now=$(date +%s)
    if [ -n "$token" ] && [ "$now" -lt "$token_until" ]; then
        return
    fi
    answer=$(curl -sS -X POST "$TOKEN_ENDPOINT" -H "client-request-id: $(request_id)" \
        --data-urlencode "client_id=$M365_MOCK_CLIENT_ID" \
        --data-urlencode "client_secret=$M365_MOCK_CLIENT_SECRET" \
        --data-urlencode "grant_type=client_credentials" \
        --data-urlencode "scope=https://graph.microsoft.com/.default")
    token=$(printf '%s' "$answer" | json_string access_token)
    if [ -z "$token" ]; then
        echo "cannot get a token: $answer" >&2
        exit 1
    fi
    lifetime=$(printf '%s' "$answer" | sed -n 's/.*"expires_in":"\{0,1\}\([0-9]*\).*/\1/p')
    token_until=$((now + ${lifetime:-600} - 300))
}

poll() {
    get_token
    query='$filter=isRead%20eq%20false&$select=subject,receivedDateTime&$top=25'
    listing=$(curl -sS --fail-with-body "$GRAPH_URL/users/$QUEUE_MAILBOX/mailFolders/inbox/messages?$query" \
        -H "Authorization: Bearer $token" -H "client-request-id: $(request_id)") || {
        echo "listing $QUEUE_MAILBOX failed: $listing" >&2
        exit 1
    }
    subjects=$(printf '%s' "$listing" | grep -o '"subject":"[^"]*"' | sed 's/^"subject":"//; s/"$//' || true)
    count=$(printf '%s' "$subjects" | grep -c . || true)
    echo "$QUEUE_MAILBOX: $count unread"
    printf '%s\n' "$subjects" | sed -n 's/^./- &/p'
}

sleeper=""
trap '[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; echo stopped; exit 0' TERM INT
while :; do
    poll
    case "${ONCE:-}" in 1 | true | yes) break ;; esac
    sleep "$POLL_SECONDS" &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=""
done
