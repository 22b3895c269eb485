#!/usr/bin/env python3
"""OpenID Connect Relying Party driver built on Authlib, for entree-bridge's
OIDC interop tests.

The Rust integration tests run this script with the python of the venv made by
tests/interop/oidc/setup-venv.sh.  It never drives a browser: the test follows
the authorization URL itself and hands the final callback URL back.

    authlib_rp.py begin --issuer URL --client-id ID [--client-secret S]
        [--auth-method client_secret_basic|client_secret_post|none]
        --redirect-uri URL --state-file PATH [--prompt none|login]
      -> {"authorization_url": "..."}

    authlib_rp.py finish --state-file PATH --callback-url URL
      -> {"id_token_claims": {...}, "userinfo": {...},
          "token_response_keys": [...]}

    authlib_rp.py validate-logout-token --issuer URL --client-id ID --token JWT
      -> {"claims": {...}}

Exactly one JSON object is printed on stdout (the last line).  Any failure,
including every validation error raised by Authlib/joserfc, is printed on
stderr and the exit code is 1.

Library code paths used:
  * discovery: authlib.oidc.discovery.get_well_known_url + OpenIDProviderMetadata.validate()
  * state / nonce / PKCE verifier: authlib.common.security.generate_token
  * authorization URL, callback parsing (state check), token request with the
    chosen client authentication and code_verifier:
    authlib.integrations.requests_client.OAuth2Session (code_challenge_method S256)
  * id_token: exactly what Authlib's own OIDC client does in
    OpenIDMixin.parse_id_token (Authlib 1.9): joserfc.jwt.decode with the
    issuer's KeySet and a JWSRegistry restricted to the discovered
    id_token_signing_alg_values_supported, then authlib.oidc.core.CodeIDToken
    with claims_options (iss, aud) and claims_params (nonce, client_id,
    access_token for at_hash), validate(leeway=120).  Authlib 1.9 delegates
    all JOSE work to joserfc (a hard dependency); its old authlib.jose module
    is deprecated and warns on import, so it is not used.
  * logout token: Authlib has no Back-Channel Logout support, so the token is
    verified with joserfc (jwt.decode + JWTClaimsRegistry) against the JWKS
    from the discovered jwks_uri, and the Back-Channel Logout 1.0 rules are
    checked on top (typ, events, no nonce, sid or sub).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from urllib.parse import parse_qs, urlsplit

import requests
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata, get_well_known_url

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Authlib's OpenIDMixin.parse_id_token default.
ID_TOKEN_LEEWAY = 120
HTTP_TIMEOUT = 30


class DriverError(Exception):
    """A failure detected by this driver (not by the library)."""


def fetch_json(url: str) -> dict:
    resp = requests.get(url, headers={"Accept": "application/json"}, timeout=HTTP_TIMEOUT)
    resp.raise_for_status()
    data = resp.json()
    if not isinstance(data, dict):
        raise DriverError(f"{url} did not return a JSON object")
    return data


def discover(issuer: str) -> dict:
    """OpenID Connect Discovery 1.0, section 4, validated by Authlib."""
    metadata = OpenIDProviderMetadata(fetch_json(get_well_known_url(issuer, external=True)))
    metadata.validate()
    # Discovery 1.0 section 4.3: the issuer MUST be identical to the one used
    # to build the discovery URL.  Authlib's clients do not compare it.
    if metadata["issuer"] != issuer:
        raise DriverError(
            f"discovered issuer {metadata['issuer']!r} does not match the expected issuer {issuer!r}"
        )
    return dict(metadata)


def fetch_key_set(metadata: dict) -> KeySet:
    return KeySet.import_key_set(fetch_json(metadata["jwks_uri"]))


def make_session(st: dict) -> OAuth2Session:
    return OAuth2Session(
        client_id=st["client_id"],
        client_secret=st.get("client_secret"),
        token_endpoint_auth_method=st["auth_method"],
        scope="openid",
        redirect_uri=st["redirect_uri"],
        code_challenge_method="S256",
    )


def cmd_begin(args: argparse.Namespace) -> dict:
    auth_method = args.auth_method or ("client_secret_basic" if args.client_secret else "none")
    if auth_method != "none" and not args.client_secret:
        raise DriverError(f"--auth-method {auth_method} needs --client-secret")
    metadata = discover(args.issuer)

    state = generate_token(32)
    nonce = generate_token(32)
    # RFC 7636 4.1: 43..128 characters of [A-Za-z0-9-._~]; generate_token's
    # default alphabet is [A-Za-z0-9].
    code_verifier = generate_token(64)

    st = {
        "driver": "authlib",
        "issuer": args.issuer,
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "auth_method": auth_method,
        "redirect_uri": args.redirect_uri,
        "state": state,
        "nonce": nonce,
        "code_verifier": code_verifier,
        "prompt": args.prompt,
        "server_metadata": metadata,
        "created_at": int(time.time()),
    }
    extra = {"nonce": nonce}
    if args.prompt:
        extra["prompt"] = args.prompt
    session = make_session(st)
    url, returned_state = session.create_authorization_url(
        metadata["authorization_endpoint"], state=state, code_verifier=code_verifier, **extra
    )
    assert returned_state == state

    tmp = args.state_file + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(st, fh, indent=2)
    os.replace(tmp, args.state_file)
    return {"authorization_url": url}


def check_authorization_response(st: dict, callback_url: str) -> None:
    """Error responses and RFC 9207, which Authlib does not handle itself.

    Authlib's parse_authorization_code_response only checks ``state`` (and
    raises missing_code when the OP answered with an error), so the error
    response and the RFC 9207 ``iss`` parameter are checked here, the way
    openid-client does: ``iss`` must be present when the discovery document
    says authorization_response_iss_parameter_supported, and must equal the
    issuer whenever present.
    """
    params = parse_qs(urlsplit(callback_url).query, keep_blank_values=True)
    for name, values in params.items():
        if len(values) > 1:
            raise DriverError(f"callback parameter {name!r} is repeated")
    if "error" in params:
        desc = params.get("error_description", [""])[0]
        got_state = params.get("state", [None])[0]
        raise DriverError(
            f"authorization error response: error={params['error'][0]!r} "
            f"error_description={desc!r} state_matches={got_state == st['state']}"
        )
    iss = params.get("iss", [None])[0]
    metadata = st["server_metadata"]
    if iss is None and metadata.get("authorization_response_iss_parameter_supported"):
        raise DriverError('RFC 9207: authorization response parameter "iss" is missing')
    if iss is not None and iss != metadata["issuer"]:
        raise DriverError(
            f'RFC 9207: authorization response "iss" {iss!r} != issuer {metadata["issuer"]!r}'
        )


def validate_id_token(st: dict, token: dict) -> CodeIDToken:
    """Mirror of authlib.integrations.base_client.sync_openid.OpenIDMixin.parse_id_token."""
    metadata = st["server_metadata"]
    if "id_token" not in token:
        raise DriverError("token response has no id_token")
    key_set = fetch_key_set(metadata)
    alg_values = metadata.get("id_token_signing_alg_values_supported")
    decoded = jose_jwt.decode(
        token["id_token"],
        key=key_set,
        registry=JWSRegistry(algorithms=alg_values, strict_check_header=False),
    )
    claims_options = {
        "iss": {"essential": True, "value": metadata["issuer"]},
        "aud": {"essential": True, "value": st["client_id"]},
    }
    claims_params = {
        "nonce": st["nonce"],
        "client_id": st["client_id"],
        "access_token": token.get("access_token"),
    }
    claims = CodeIDToken(decoded.claims, decoded.header, claims_options, claims_params)
    claims.validate(leeway=ID_TOKEN_LEEWAY)
    return claims


def cmd_finish(args: argparse.Namespace) -> dict:
    with open(args.state_file) as fh:
        st = json.load(fh)
    if st.get("driver") != "authlib":
        raise DriverError(f"{args.state_file} was not written by authlib_rp.py begin")
    metadata = st["server_metadata"]

    check_authorization_response(st, args.callback_url)

    session = make_session(st)
    raw_token_response: dict = {}

    def record_token_response(resp):
        # The keys the OP sent (Authlib's OAuth2Token adds "expires_at").
        raw_token_response.update(resp.json())
        return resp

    session.register_compliance_hook("access_token_response", record_token_response)
    # fetch_token parses the callback (state check, code) and redeems the code.
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=args.callback_url,
        state=st["state"],
        code_verifier=st["code_verifier"],
    )
    token_keys = sorted(raw_token_response.keys())
    claims = validate_id_token(st, token)

    # UserInfo request with the access token as a Bearer header (the session
    # holds the token after fetch_token).
    resp = session.get(
        metadata["userinfo_endpoint"], headers={"Accept": "application/json"}, timeout=HTTP_TIMEOUT
    )
    resp.raise_for_status()
    userinfo = resp.json()
    # OIDC Core 5.3.2: the sub in the UserInfo response MUST match the id_token's.
    if userinfo.get("sub") != claims["sub"]:
        raise DriverError(
            f"userinfo sub {userinfo.get('sub')!r} != id_token sub {claims['sub']!r}"
        )
    return {
        "id_token_claims": dict(claims),
        "userinfo": userinfo,
        "token_response_keys": token_keys,
    }


def cmd_validate_logout_token(args: argparse.Namespace) -> dict:
    metadata = discover(args.issuer)
    key_set = fetch_key_set(metadata)
    algs = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    decoded = jose_jwt.decode(args.token, key=key_set, registry=JWSRegistry(algorithms=algs))

    typ = decoded.header.get("typ")
    if typ not in ("logout+jwt", "application/logout+jwt"):
        raise DriverError(f'logout token header "typ" is {typ!r}, expected "logout+jwt"')

    claims = decoded.claims
    registry = jose_jwt.JWTClaimsRegistry(
        leeway=ID_TOKEN_LEEWAY,
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": args.client_id},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
        events={"essential": True},
    )
    registry.validate(claims)

    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise DriverError(f'logout token "events" lacks the {BACKCHANNEL_LOGOUT_EVENT} member')
    if "nonce" in claims:
        raise DriverError('logout token must not contain a "nonce" claim')
    if not claims.get("sid") and not claims.get("sub"):
        raise DriverError('logout token must contain "sid" or "sub"')
    return {"claims": claims}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authlib_rp.py", description="Authlib OIDC RP driver")
    sub = parser.add_subparsers(dest="command", required=True)

    begin = sub.add_parser("begin", help="discovery and authorization URL")
    begin.add_argument("--issuer", required=True)
    begin.add_argument("--client-id", required=True)
    begin.add_argument("--client-secret")
    begin.add_argument("--auth-method", choices=AUTH_METHODS)
    begin.add_argument("--redirect-uri", required=True)
    begin.add_argument("--state-file", required=True)
    begin.add_argument("--prompt", choices=("none", "login"))

    finish = sub.add_parser("finish", help="callback, token, id_token, userinfo")
    finish.add_argument("--state-file", required=True)
    finish.add_argument("--callback-url", required=True)

    logout = sub.add_parser("validate-logout-token", help="Back-Channel Logout token")
    logout.add_argument("--issuer", required=True)
    logout.add_argument("--client-id", required=True)
    logout.add_argument("--token", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return 1 if exc.code else 0
    handlers = {
        "begin": cmd_begin,
        "finish": cmd_finish,
        "validate-logout-token": cmd_validate_logout_token,
    }
    try:
        result = handlers[args.command](args)
    except Exception as exc:  # noqa: BLE001 - every failure is reported the same way
        if os.environ.get("OIDC_RP_DEBUG"):
            traceback.print_exc()
        print(f"authlib_rp {args.command}: {type(exc).__module__}.{type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
