// The official TypeScript MCP SDK doing the OAuth flow itself against sshwarden (tests/it/oauth.rs):
// its ClientCredentialsProvider meets the 401 challenge, reads the protected resource metadata,
// discovers the authorization server (oidc-provider), gets a token for the resource by client
// credentials, and calls a tool. Prints one JSON line; exits non-zero on any failure.
//
// usage: node oauth_client.mjs MCP_URL ISSUER CLIENT_ID CLIENT_SECRET ALIAS
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";

const [url, issuer, clientId, clientSecret, alias] = process.argv.slice(2);
const authProvider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer: issuer, scope: "ssh:run" });
const client = new Client({ name: "oauth-interop", version: "1" });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider }));
  const result = await client.callTool({ name: "ssh_run", arguments: { alias, command: "echo via-oauth" } });
  const tokens = authProvider.tokens();
  console.log(JSON.stringify({ ok: !result.isError, stdout: result.structuredContent?.stdout, got_token: !!tokens?.access_token }));
  await client.close();
} catch (e) {
  console.error(`oauth interop: ${e?.stack ?? e}`);
  process.exit(1);
}
