// Contact-centre queue watcher in Node.js: @azure/msal-node for the token, fetch for Graph.
//
// Each poll lists the unread messages of the queue mailbox (with $filter, $select and $top), prints each one,
// marks it read and moves it to the "Processed" folder (made when missing). Configured from the environment only:
//   M365_MOCK_AUTHORITY, M365_MOCK_CLIENT_ID, M365_MOCK_CLIENT_SECRET, M365_MOCK_GRAPH_URL,
//   NODE_EXTRA_CA_CERTS (the CA to trust, read by Node itself), QUEUE_MAILBOX, POLL_SECONDS, ONCE.
import { randomUUID } from "node:crypto";
import { ConfidentialClientApplication } from "@azure/msal-node";

const env = process.env;
for (const name of ["M365_MOCK_AUTHORITY", "M365_MOCK_CLIENT_ID", "M365_MOCK_CLIENT_SECRET", "QUEUE_MAILBOX"]) {
  if (!env[name]) {
    console.error(`missing configuration: ${name}`);
    process.exit(2);
  }
}
const graphUrl = (env.M365_MOCK_GRAPH_URL || "https://graph.microsoft.com/v1.0").replace(/\/$/, "");
const mailbox = env.QUEUE_MAILBOX;
const pollSeconds = Number(env.POLL_SECONDS || 30);
const once = ["1", "true", "yes"].includes((env.ONCE || "").toLowerCase());

// knownAuthorities: the authority's host is trusted as given, so MSAL asks no Microsoft host about it.
const msal = new ConfidentialClientApplication({
  auth: {
    clientId: env.M365_MOCK_CLIENT_ID,
    clientSecret: env.M365_MOCK_CLIENT_SECRET,
    authority: env.M365_MOCK_AUTHORITY,
    knownAuthorities: [new URL(env.M365_MOCK_AUTHORITY).host],
  },
});

async function token() {
  // MSAL keeps the token in its in-memory cache and asks for a new one only when it is about to expire.
  const result = await msal.acquireTokenByClientCredential({ scopes: ["https://graph.microsoft.com/.default"] });
  return result.accessToken;
}

async function graph(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path.startsWith("https://") ? path : graphUrl + path, {
      method,
      headers: {
        Authorization: `Bearer ${await token()}`,
        "client-request-id": randomUUID(),
        ...(body ? { "Content-Type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    if ((response.status === 429 || response.status === 503) && attempt < 5) {
      const wait = Number(response.headers.get("Retry-After") || 2 ** attempt);
      console.error(`${method} ${path}: ${response.status}, retrying in ${wait} s`);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      continue;
    }
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : {};
  }
}

let processedId;
async function processedFolder() {
  if (!processedId) {
    const folders = await graph("GET", `/users/${mailbox}/mailFolders?$top=100`);
    const found = folders.value.find((f) => f.displayName.toLowerCase() === "processed");
    processedId = found ? found.id : (await graph("POST", `/users/${mailbox}/mailFolders`, { displayName: "Processed" })).id;
  }
  return processedId;
}

async function poll() {
  const query = "$filter=isRead eq false&$select=subject,from,receivedDateTime&$top=25";
  const page = await graph("GET", `/users/${mailbox}/mailFolders/inbox/messages?${encodeURI(query)}`);
  console.log(`${mailbox}: ${page.value.length} unread`);
  for (const message of page.value) {
    console.log(`- ${message.subject} (from ${message.from?.emailAddress?.address})`);
    await graph("PATCH", `/users/${mailbox}/messages/${message.id}`, { isRead: true });
    await graph("POST", `/users/${mailbox}/messages/${message.id}/move`, { destinationId: await processedFolder() });
  }
}

let stopping = false;
let wake = () => {};
process.on("SIGTERM", () => {
  stopping = true;
  wake();
});

function sleep(seconds) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, seconds * 1000);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

try {
  while (!stopping) {
    await poll();
    if (once) break;
    await sleep(pollSeconds);
  }
} catch (error) {
  console.error(`connector failed: ${error.message}`);
  process.exit(1);
}
console.log("stopped");
