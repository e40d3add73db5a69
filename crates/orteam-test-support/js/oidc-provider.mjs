// A real OpenID provider for the single sign-on tests: the certified `oidc-provider` package,
// on loopback, on an ephemeral port, offline. Written once; started by
// `orteam_test_support::browser::OidcProvider`.
//
// Usage: node oidc-provider.mjs REDIRECT_URI CLIENT_ID CLIENT_SECRET
// Env:   ORTEAM_TEST_NODE_MODULES (where oidc-provider is installed)
//
// Prints one line `issuer http://127.0.0.1:PORT` once it listens. Accounts: the login typed in
// the provider's sign-in form is the account id; ACCOUNTS below gives its email and groups
// (claims `email`, `email_verified`, `groups`, all in the ID token).
//
// Faults for the next token answer (one shot), set with `POST /__fault/MODE`:
//   tamper     the ID token's groups become ["orteam-admins"] after signing (the signature no
//              longer holds)
//   expired    the ID token is re-signed with the provider's key, expired an hour ago
//   wrong_aud  the ID token is re-signed with the provider's key for another client
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";
import http from "node:http";

const [redirectUri, clientId, clientSecret] = process.argv.slice(2);
const modules = process.env.ORTEAM_TEST_NODE_MODULES;
if (!redirectUri || !clientId || !clientSecret || !modules) {
  console.error("usage: ORTEAM_TEST_NODE_MODULES=… node oidc-provider.mjs REDIRECT_URI CLIENT_ID CLIENT_SECRET");
  process.exit(2);
}
const load = (name, file) => import(pathToFileURL(path.join(modules, name, file)).href);
const { default: Provider } = await load("oidc-provider", "lib/index.js");
const require = createRequire(path.join(modules, "oidc-provider", "package.json"));
const jose = await import(pathToFileURL(require.resolve("jose")).href);

const ACCOUNTS = {
  root: { email: "root@example.com", groups: ["orteam-admins"] },
  fin: { email: "fin@example.com", groups: ["finance"] },
  lead: { email: "lead@example.com", groups: ["core-leads", "engineering"] },
  alice: { email: "alice@example.com", groups: ["engineering"] },
  carol: { email: "Carol@Example.com", groups: [] },
  mallory: { email: "mallory@example.com", groups: ["engineering"] },
};

const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: "test-key", alg: "RS256", use: "sig" };

// Bind first, so the issuer carries the real port.
const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { required: () => true },
  scopes: ["openid", "email", "profile", "groups"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], groups: ["groups"] },
  conformIdTokenClaims: false,
  jwks: { keys: [signingJwk] },
  cookies: { keys: ["orteam-test-cookie-key-0123456789"] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const account = ACCOUNTS[id] || { email: `${id}@example.com`, groups: [] };
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: true, groups: account.groups };
      },
    };
  },
});

let fault = null;
provider.use(async (ctx, next) => {
  if (ctx.method === "POST" && ctx.path.startsWith("/__fault/")) {
    fault = ctx.path.slice("/__fault/".length);
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === "/token" && fault && ctx.body && ctx.body.id_token) {
    const mode = fault;
    fault = null;
    const [head, body, sig] = ctx.body.id_token.split(".");
    const claims = JSON.parse(Buffer.from(body, "base64url").toString());
    if (mode === "tamper") {
      claims.groups = ["orteam-admins"];
      claims.tampered = true; // so the payload differs even for an account already in the group
      ctx.body.id_token = [head, Buffer.from(JSON.stringify(claims)).toString("base64url"), sig].join(".");
    } else {
      const now = Math.floor(Date.now() / 1000);
      if (mode === "expired") { claims.iat = now - 7200; claims.exp = now - 3600; }
      if (mode === "wrong_aud") { claims.aud = "someone-else"; }
      ctx.body.id_token = await new jose.SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: "test-key", typ: "JWT" })
        .sign(privateKey);
    }
    console.log(`fault ${mode} applied`);
  }
});

server.on("request", provider.callback());
console.log(`issuer ${issuer}`);
