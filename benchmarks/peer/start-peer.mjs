// Starts the peer for the token benchmark: axa-group's oauth2-mock-server with one RS256 key.
//
//   node start-peer.mjs [--host 127.0.0.1] [--port 0] [--key tls-key.pem --cert tls-cert.pem]
//
// With --key and --cert it serves HTTPS. Once listening it prints one JSON line on stdout:
//   {"ready": true, "url": "https://127.0.0.1:PORT", "token_path": "/token", "version": "8.x", "node": "v20..."}
// and then runs until SIGTERM or SIGINT.
import { readFileSync } from "node:fs";
import { OAuth2Server } from "oauth2-mock-server";

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option("host", "127.0.0.1");
const port = Number(option("port", "0"));
const key = option("key", undefined);
const cert = option("cert", undefined);

const server = new OAuth2Server(key, cert);
await server.issuer.keys.generate("RS256");
await server.start(port, host);

const manifest = JSON.parse(
  readFileSync(new URL("./node_modules/oauth2-mock-server/package.json", import.meta.url), "utf8"),
);
const scheme = key && cert ? "https" : "http";
const shownHost = host.includes(":") ? `[${host}]` : host;
console.log(
  JSON.stringify({
    ready: true,
    url: `${scheme}://${shownHost}:${server.address().port}`,
    token_path: "/token",
    version: manifest.version,
    node: process.version,
  }),
);

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
