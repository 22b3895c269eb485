#!/usr/bin/env node
// OpenID Connect Relying Party driver built on openid-client v6, for
// entree-bridge's OIDC interop tests. Run `./setup.sh` in this folder first.
//
//   node rp.mjs begin --issuer URL --client-id ID [--client-secret S]
//       [--auth-method client_secret_basic|client_secret_post|none]
//       --redirect-uri URL --state-file PATH [--prompt none|login]
//     -> {"authorization_url": "..."}
//
//   node rp.mjs finish --state-file PATH --callback-url URL
//     -> {"id_token_claims": {...}, "userinfo": {...}, "token_response_keys": [...]}
//
//   node rp.mjs validate-logout-token --issuer URL --client-id ID --token JWT
//     -> {"claims": {...}}
//
// Exactly one JSON object is printed on stdout (the last line). Any failure,
// including every validation error raised by openid-client / jose, goes to
// stderr and the exit code is 1.
//
// Library code paths used:
//   * client.discovery(..., { execute: [client.allowInsecureRequests] }) (plain
//     http issuer on 127.0.0.1), client.randomState / randomNonce /
//     randomPKCECodeVerifier / calculatePKCECodeChallenge,
//     client.buildAuthorizationUrl;
//   * client.enableNonRepudiationChecks: without it openid-client v6 does NOT
//     verify the id_token signature of a token endpoint response (OIDC Core
//     3.1.3.7 lets TLS stand in for it); with it the signature is checked
//     against the discovered jwks_uri;
//   * client.authorizationCodeGrant (callback parsing incl. state and RFC 9207
//     iss, code redemption with PKCE and the chosen client auth, id_token iss,
//     aud, azp, exp, iat, sub, nonce checks), client.fetchUserInfo (sub check);
//   * Back-Channel Logout: openid-client v6 has no logout token validation, so
//     jose.jwtVerify (openid-client's own JOSE dependency) verifies the token
//     against createRemoteJWKSet(jwks_uri) with issuer, audience, typ and
//     required claims; events / nonce / sid-or-sub are checked on top.

import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as client from 'openid-client';
import * as jose from 'jose';

const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'];
const PROMPTS = ['none', 'login'];
const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
// openid-client's default clockTolerance for JWT timestamps (seconds).
const CLOCK_TOLERANCE = 30;

class DriverError extends Error {
  constructor(message) {
    super(message);
    this.name = 'DriverError';
  }
}

const SPECS = {
  begin: {
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'auth-method': { type: 'string' },
      'redirect-uri': { type: 'string' },
      'state-file': { type: 'string' },
      prompt: { type: 'string' },
    },
    required: ['issuer', 'client-id', 'redirect-uri', 'state-file'],
  },
  finish: {
    options: {
      'state-file': { type: 'string' },
      'callback-url': { type: 'string' },
    },
    required: ['state-file', 'callback-url'],
  },
  'validate-logout-token': {
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      token: { type: 'string' },
    },
    required: ['issuer', 'client-id', 'token'],
  },
};

function parseCommandLine(argv) {
  const [command, ...rest] = argv;
  const spec = SPECS[command];
  if (!spec) {
    throw new DriverError(
      `usage: rp.mjs {${Object.keys(SPECS).join('|')}} [options] (got ${JSON.stringify(command)})`,
    );
  }
  const { values } = parseArgs({ args: rest, options: spec.options, strict: true, allowPositionals: false });
  for (const name of spec.required) {
    if (values[name] === undefined) throw new DriverError(`${command}: --${name} is required`);
  }
  return { command, values };
}

function clientAuthFor(method, secret) {
  switch (method) {
    case 'client_secret_basic':
      return client.ClientSecretBasic(secret);
    case 'client_secret_post':
      return client.ClientSecretPost(secret);
    case 'none':
      return client.None();
    default:
      throw new DriverError(`unknown auth method ${JSON.stringify(method)}`);
  }
}

async function discover(st) {
  const metadata = { token_endpoint_auth_method: st.auth_method };
  if (st.redirect_uri) metadata.redirect_uris = [st.redirect_uri];
  if (st.client_secret !== undefined && st.client_secret !== null) metadata.client_secret = st.client_secret;
  const config = await client.discovery(
    new URL(st.issuer),
    st.client_id,
    metadata,
    clientAuthFor(st.auth_method, st.client_secret ?? undefined),
    { execute: [client.allowInsecureRequests] },
  );
  return config;
}

async function cmdBegin(v) {
  const authMethod = v['auth-method'] ?? (v['client-secret'] !== undefined ? 'client_secret_basic' : 'none');
  if (!AUTH_METHODS.includes(authMethod)) {
    throw new DriverError(`--auth-method must be one of ${AUTH_METHODS.join(', ')}`);
  }
  if (authMethod !== 'none' && v['client-secret'] === undefined) {
    throw new DriverError(`--auth-method ${authMethod} needs --client-secret`);
  }
  if (v.prompt !== undefined && !PROMPTS.includes(v.prompt)) {
    throw new DriverError(`--prompt must be one of ${PROMPTS.join(', ')}`);
  }
  const st = {
    driver: 'openid-client',
    issuer: v.issuer,
    client_id: v['client-id'],
    client_secret: v['client-secret'] ?? null,
    auth_method: authMethod,
    redirect_uri: v['redirect-uri'],
    prompt: v.prompt ?? null,
  };
  const config = await discover(st);

  st.state = client.randomState();
  st.nonce = client.randomNonce();
  st.code_verifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(st.code_verifier);
  st.server_metadata = config.serverMetadata();
  st.created_at = Math.floor(Date.now() / 1000);

  const params = {
    redirect_uri: st.redirect_uri,
    scope: 'openid',
    response_type: 'code',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state: st.state,
    nonce: st.nonce,
  };
  if (st.prompt) params.prompt = st.prompt;
  const url = client.buildAuthorizationUrl(config, params);

  const tmp = `${v['state-file']}.tmp`;
  writeFileSync(tmp, JSON.stringify(st, null, 2), { mode: 0o600 });
  renameSync(tmp, v['state-file']);
  return { authorization_url: url.href };
}

async function cmdFinish(v) {
  const st = JSON.parse(readFileSync(v['state-file'], 'utf8'));
  if (st.driver !== 'openid-client') {
    throw new DriverError(`${v['state-file']} was not written by rp.mjs begin`);
  }
  const config = await discover(st);
  client.enableNonRepudiationChecks(config);

  const tokens = await client.authorizationCodeGrant(config, new URL(v['callback-url']), {
    pkceCodeVerifier: st.code_verifier,
    expectedState: st.state,
    expectedNonce: st.nonce,
    idTokenExpected: true,
  });
  // Own enumerable keys are the token endpoint's JSON members (openid-client's
  // helpers such as claims() are non-enumerable).
  const rawTokenKeys = Object.keys(tokens).sort();
  const claims = tokens.claims();
  if (!claims) throw new DriverError('token response has no id_token');
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return {
    id_token_claims: { ...claims },
    userinfo,
    token_response_keys: rawTokenKeys,
  };
}

async function cmdValidateLogoutToken(v) {
  // Discovery only for the issuer's metadata (jwks_uri, algorithms).
  const config = await client.discovery(new URL(v.issuer), v['client-id'], undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const as = config.serverMetadata();
  if (!as.jwks_uri) throw new DriverError('discovery document has no jwks_uri');
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload } = await jose.jwtVerify(v.token, jwks, {
    issuer: as.issuer,
    audience: v['client-id'],
    typ: 'logout+jwt',
    algorithms: as.id_token_signing_alg_values_supported ?? ['RS256'],
    requiredClaims: ['iat', 'exp', 'jti', 'events'],
    clockTolerance: CLOCK_TOLERANCE,
  });
  const events = payload.events;
  if (
    typeof events !== 'object' || events === null || Array.isArray(events) ||
    typeof events[BACKCHANNEL_LOGOUT_EVENT] !== 'object' || events[BACKCHANNEL_LOGOUT_EVENT] === null ||
    Array.isArray(events[BACKCHANNEL_LOGOUT_EVENT])
  ) {
    throw new DriverError(`logout token "events" lacks the ${BACKCHANNEL_LOGOUT_EVENT} member`);
  }
  if ('nonce' in payload) throw new DriverError('logout token must not contain a "nonce" claim');
  if (!payload.sid && !payload.sub) throw new DriverError('logout token must contain "sid" or "sub"');
  return { claims: payload };
}

function describeError(err) {
  const parts = [`${err?.name ?? 'Error'}: ${err?.message ?? String(err)}`];
  for (const key of ['code', 'error', 'error_description', 'status', 'claim', 'reason']) {
    if (err && err[key] !== undefined) parts.push(`${key}=${JSON.stringify(err[key])}`);
  }
  let cause = err?.cause;
  for (let depth = 0; cause !== undefined && depth < 3; depth += 1) {
    if (cause instanceof Error) {
      parts.push(`cause: ${cause.name}: ${cause.message}${cause.code ? ` code=${cause.code}` : ''}`);
      cause = cause.cause;
    } else {
      let text;
      try {
        text = JSON.stringify(cause, (_k, val) => {
          if (val instanceof URLSearchParams) return val.toString();
          if (ArrayBuffer.isView(val) || val instanceof ArrayBuffer) return `<${val.byteLength} bytes>`;
          if (typeof CryptoKey !== 'undefined' && val instanceof CryptoKey) return `<CryptoKey ${val.algorithm?.name}>`;
          if (typeof Response !== 'undefined' && val instanceof Response) return `<Response ${val.status} ${val.url}>`;
          return val;
        });
      } catch {
        text = String(cause);
      }
      if (text !== undefined) parts.push(`cause: ${text.length > 2000 ? `${text.slice(0, 2000)}...` : text}`);
      break;
    }
  }
  return parts.join('\n  ');
}

async function main() {
  let command = process.argv[2];
  try {
    const parsed = parseCommandLine(process.argv.slice(2));
    command = parsed.command;
    const handlers = {
      begin: cmdBegin,
      finish: cmdFinish,
      'validate-logout-token': cmdValidateLogoutToken,
    };
    const result = await handlers[command](parsed.values);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`rp.mjs ${command ?? ''}: ${describeError(err)}\n`);
    if (process.env.OIDC_RP_DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

process.exitCode = await main();
