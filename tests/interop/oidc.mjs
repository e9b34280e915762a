// A real OpenID provider (oidc-provider, certified) for tests/it/oauth.rs: client-credentials
// clients alice, bob, carol (no ssh:run) and brief (one-second tokens), JWT access tokens (ES256 and RS256 keys made at
// start) for one resource, a `groups` claim. Prints {"ready": true} once listening.
//   node oidc.mjs PORT RESOURCE[,OTHER_RESOURCE…]
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, resourceList] = process.argv.slice(2);
const resources = resourceList.split(',');
const resource = resources[0];
const issuer = `http://127.0.0.1:${port}`;
const jwk = (type, opts, alg, kid) => ({
  ...generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }),
  alg, use: 'sig', kid,
});
const keys = [
  jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es-1'),
  jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs-1'),
];
const groups = { alice: ['oncall'], bob: ['interns'], carol: [], brief: [] };
const client = (id, scope) => ({
  client_id: id, client_secret: `${id}-secret-0123456789`, grant_types: ['client_credentials'],
  redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope,
});
const provider = new Provider(issuer, {
  clients: [client('alice', 'ssh:run ssh:approve'), client('bob', 'ssh:run'), client('carol', 'ssh:approve'), client('brief', 'ssh:run')],
  jwks: { keys },
  scopes: ['ssh:run', 'ssh:approve', 'ssh:admin'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (!resources.includes(indicator)) throw new Error(`unknown resource ${indicator}`);
        // `brief` gets one-second tokens, for the expiry test.
        const ttl = ctx.oidc.client?.clientId === 'brief' ? 1 : 300;
        return { scope: 'ssh:run ssh:approve ssh:admin', audience: indicator, accessTokenFormat: 'jwt', accessTokenTTL: ttl, jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
  extraTokenClaims: (ctx, token) => ({ groups: groups[token.clientId] ?? [] }),
});
provider.listen(Number(port), '127.0.0.1', () => console.log(JSON.stringify({ ready: true, issuer })));
