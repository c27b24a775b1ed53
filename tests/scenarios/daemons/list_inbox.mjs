// A Node daemon with fetch only: trusts the emulator through NODE_EXTRA_CA_CERTS, finds it through the environment.
const env = process.env;
const form = new URLSearchParams({
  grant_type: "client_credentials",
  client_id: env.M365_MOCK_CLIENT_ID,
  client_secret: env.M365_MOCK_CLIENT_SECRET,
  scope: env.M365_MOCK_SCOPE,
});
const token = await (await fetch(env.M365_MOCK_TOKEN_ENDPOINT, { method: "POST", body: form })).json();
const url = `${env.M365_MOCK_GRAPH_URL}/users/${env.QUEUE_MAILBOX}/mailFolders/inbox/messages?$select=subject`;
const page = await (await fetch(url, { headers: { Authorization: `Bearer ${token.access_token}` } })).json();
console.log(page.value.map((m) => m.subject).join("\n"));
