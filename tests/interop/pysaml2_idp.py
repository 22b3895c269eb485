#!/usr/bin/env python3
"""Independent SAML 2.0 IdP for entree-bridge interop tests, built on pysaml2.

Responses are produced by pysaml2's own IdP code (saml2.server.Server,
create_authn_response) and signed/encrypted by pysaml2's xmlsec1 backend.
Everything is local: no network, pysaml2 temp files live in a private temp dir.

  metadata --entity-id ID --sso-url URL --key KEY.pem --cert CERT.pem
      Print IdP metadata XML. KEY/CERT are generated (RSA-2048, self-signed)
      if neither file exists.

  respond --entity-id ID --key KEY.pem --cert CERT.pem --sp-metadata SP.xml
          --acs-url URL --sp-entity-id SPID [--in-response-to REQID]
          --name-id VALUE [--attr NAME=VALUE]... [--sign-response]
          [--sign-assertion] [--encrypt-assertion]
      Print one line: base64 of the <samlp:Response> (the SAMLResponse POST
      value). Default signing: assertion only. rsa-sha256 / sha256.

stdout carries only the result; diagnostics go to stderr; errors exit 1.
"""

import argparse
import base64
import contextlib
import datetime
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings

PROG = "pysaml2_idp"

NAME_FORMAT_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"

NAMEID_FORMATS = {
    "unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    "transient": "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
    "persistent": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "email": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
}

# --enc-alg NAME -> (xmlenc data EncryptionMethod URI, xmlsec1 --session-key)
DATA_ENC_ALGS = {
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "tripledes-cbc": ("http://www.w3.org/2001/04/xmlenc#tripledes-cbc", "des-192"),
}
KEY_TRANSPORT_ALG = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"


class CliError(Exception):
    pass


# --------------------------------------------------------------------------
# key material


def _write_new(path, data, mode):
    """Create `path` atomically; returns False if it already exists."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-" + os.path.basename(path))
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.close(fd)
        fd = None
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        if fd is not None:
            os.close(fd)
        os.unlink(tmp)


def ensure_keypair(key_path, cert_path, entity_id):
    """Generate an RSA-2048 key and self-signed cert if neither file exists."""
    have_key, have_cert = os.path.exists(key_path), os.path.exists(cert_path)
    if have_key and have_cert:
        return
    if have_key != have_cert:
        # Possibly another process is generating right now: give it a moment.
        for _ in range(100):
            if os.path.exists(key_path) and os.path.exists(cert_path):
                return
            time.sleep(0.05)
        raise CliError(
            f"only one of --key {key_path} / --cert {cert_path} exists; "
            "provide both or neither"
        )

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cn = entity_id.split("://", 1)[-1].split("/", 1)[0][:64] or "pysaml2-idp"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "entree-bridge interop test IdP"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)

    for p in (key_path, cert_path):
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    if not _write_new(key_path, key_pem, 0o600):
        # Lost a race with a concurrent invocation: use its pair.
        for _ in range(100):
            if os.path.exists(cert_path):
                return
            time.sleep(0.05)
        raise CliError(f"{key_path} appeared but {cert_path} did not")
    if not _write_new(cert_path, cert_pem, 0o644):
        raise CliError(f"{cert_path} appeared while generating a new key pair")


# --------------------------------------------------------------------------
# pysaml2 setup


def find_xmlsec1():
    for cand in (os.environ.get("XMLSEC1"), shutil.which("xmlsec1"), "/usr/bin/xmlsec1"):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise CliError("xmlsec1 not found (install Debian package xmlsec1 or set XMLSEC1)")


def idp_config(args, sp_metadata=None, sso_url=None, lifetime_minutes=5):
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    idp = {
        "name_id_format": [NAMEID_FORMATS[k] for k in ("transient", "persistent", "unspecified")],
        "policy": {
            "default": {
                "name_form": NAME_FORMAT_UNSPECIFIED,
                "lifetime": {"minutes": lifetime_minutes},
            }
        },
    }
    if sso_url:
        idp["endpoints"] = {"single_sign_on_service": [(sso_url, BINDING_HTTP_REDIRECT)]}

    cnf = {
        "entityid": args.entity_id,
        "xmlsec_binary": find_xmlsec1(),
        "crypto_backend": "xmlsec1",
        "key_file": os.path.abspath(args.key),
        "cert_file": os.path.abspath(args.cert),
        "metadata_key_usage": "signing",
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "delete_tmpfiles": True,
        "service": {"idp": idp},
    }
    if sp_metadata:
        cnf["metadata"] = {"local": [os.path.abspath(sp_metadata)]}
    conf = IdPConfig()
    conf.load(cnf)
    return conf


def make_server_class():
    from saml2.attribute_converter import AttributeConverterNOOP
    from saml2.assertion import Policy
    from saml2.saml import Attribute
    from saml2.server import Server
    from saml2.sigver import get_pem_wrapped_unwrapped, make_temp, pre_encryption_part
    from saml2.s_utils import do_ava, factory

    class PlainNameConverter(AttributeConverterNOOP):
        """Emit attributes as Entree does: Name=<plain name as given>,
        NameFormat=unspecified, no FriendlyName (NOOP would lowercase)."""

        def to_(self, attrvals):
            return [
                factory(Attribute, name=key, name_format=self.name_format, attribute_value=do_ava(val))
                for key, val in attrvals.items()
            ]

    class ReleaseEverythingPolicy(Policy):
        """Release exactly the attributes given on the command line, even if
        the SP metadata lists RequestedAttributes."""

        def restrict(self, ava, sp_entity_id, metadata=None):
            return dict(ava)

    class InteropServer(Server):
        """pysaml2 Server whose assertion encryption uses a selectable data
        cipher. Stock pysaml2 7.x always uses tripledes-cbc (session key
        des-192); this mirrors Entity._encrypt_assertion with another
        template/session key and still runs pysaml2's xmlsec1 backend."""

        data_enc_alg = DATA_ENC_ALGS["aes256-cbc"]

        def _encrypt_assertion(self, encrypt_cert, sp_entity_id, response, node_xpath=None):
            if encrypt_cert:
                certs = [(None, encrypt_cert)]
            else:
                certs = self.metadata.certs(sp_entity_id, "any", "encryption")
            if not certs:
                raise CliError(f"no encryption certificate for {sp_entity_id}")
            msg_enc, session_key = self.data_enc_alg
            last_exc = None
            for cert_name, cert in certs:
                wrapped, unwrapped = get_pem_wrapped_unwrapped(cert)
                tmp = make_temp(
                    wrapped.encode("ascii"),
                    decode=False,
                    delete_tmpfiles=self.config.delete_tmpfiles,
                )
                try:
                    return self.sec.encrypt_assertion(
                        response,
                        tmp.name,
                        pre_encryption_part(
                            msg_enc=msg_enc,
                            key_enc=KEY_TRANSPORT_ALG,
                            key_name=cert_name,
                            encrypt_cert=unwrapped,
                        ),
                        key_type=session_key,
                        node_xpath=node_xpath,
                    )
                except Exception as exc:  # try the next certificate
                    last_exc = exc
            raise last_exc

    return InteropServer, PlainNameConverter, ReleaseEverythingPolicy


# --------------------------------------------------------------------------
# subcommands


def cmd_metadata(args):
    from saml2 import md, xmldsig
    from saml2.extension import algsupport
    from saml2.metadata import entity_descriptor

    ensure_keypair(args.key, args.cert, args.entity_id)
    conf = idp_config(args, sso_url=args.sso_url)
    ed = entity_descriptor(conf)
    nspair = {"md": md.NAMESPACE, "ds": xmldsig.NAMESPACE, "alg": algsupport.NAMESPACE}
    return ed.to_string(nspair).decode("utf-8")


def parse_attrs(pairs):
    attrs = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--attr expects NAME=VALUE, got {pair!r}")
        attrs.setdefault(name, []).append(value)
    return attrs


def cmd_respond(args):
    from saml2 import saml
    from saml2.saml import AUTHN_PASSWORD_PROTECTED, NameID

    for p, what in ((args.key, "--key"), (args.cert, "--cert"), (args.sp_metadata, "--sp-metadata")):
        if not os.path.isfile(p):
            raise CliError(f"{what} {p}: no such file")

    identity = parse_attrs(args.attr)
    InteropServer, PlainNameConverter, ReleaseEverythingPolicy = make_server_class()
    InteropServer.data_enc_alg = DATA_ENC_ALGS[args.enc_alg]

    conf = idp_config(args, sp_metadata=args.sp_metadata, lifetime_minutes=args.lifetime_minutes)
    server = InteropServer(config=conf)
    server.config.attribute_converters = [PlainNameConverter(NAME_FORMAT_UNSPECIFIED)]

    try:
        server.metadata[args.sp_entity_id]["spsso_descriptor"]
    except (KeyError, TypeError):
        known = ", ".join(sorted(server.metadata.keys())) or "none"
        raise CliError(
            f"SP {args.sp_entity_id!r} (with SPSSODescriptor) not found in "
            f"{args.sp_metadata} (entities: {known})"
        )
    if args.encrypt_assertion and not server.has_encrypt_cert_in_metadata(args.sp_entity_id):
        # pysaml2 would silently skip encryption in that case.
        raise CliError(f"--encrypt-assertion: no encryption certificate for {args.sp_entity_id} in {args.sp_metadata}")

    policy = ReleaseEverythingPolicy(
        restrictions={
            "default": {
                "name_form": NAME_FORMAT_UNSPECIFIED,
                "lifetime": {"minutes": args.lifetime_minutes},
            }
        },
        mds=server.metadata,
    )

    nid_format = NAMEID_FORMATS.get(args.name_id_format, args.name_id_format)
    name_id = NameID(format=nid_format, text=args.name_id)
    if nid_format in (saml.NAMEID_FORMAT_TRANSIENT, saml.NAMEID_FORMAT_PERSISTENT):
        name_id.name_qualifier = args.entity_id
        name_id.sp_name_qualifier = args.sp_entity_id

    sign_response = bool(args.sign_response)
    sign_assertion = bool(args.sign_assertion) or not sign_response

    resp = server.create_authn_response(
        identity,
        args.in_response_to,
        args.acs_url,
        args.sp_entity_id,
        name_id=name_id,
        authn={"class_ref": AUTHN_PASSWORD_PROTECTED},
        release_policy=policy,
        sign_response=sign_response,
        sign_assertion=sign_assertion,
        encrypt_assertion=bool(args.encrypt_assertion),
        encrypt_assertion_self_contained=True,
        sign_alg=conf.signing_algorithm,
        digest_alg=conf.digest_algorithm,
    )
    if isinstance(resp, list):  # pysaml2 returns an error response as lines
        resp = "\n".join(resp)
    xml = resp if isinstance(resp, str) else str(resp)
    if "<" not in xml or "Response" not in xml:
        raise CliError(f"pysaml2 produced no Response: {xml[:500]!r}")
    if "urn:oasis:names:tc:SAML:2.0:status:Success" not in xml:
        raise CliError(f"pysaml2 produced an error Response: {xml[:2000]}")
    if args.encrypt_assertion:
        if "EncryptedAssertion" not in xml or ":Assertion " in xml or "<Assertion " in xml:
            raise CliError("pysaml2 did not encrypt the assertion")
        if sign_response and "Signature" not in xml:
            raise CliError("pysaml2 produced an unsigned Response")
    elif "Signature" not in xml:
        raise CliError("pysaml2 produced an unsigned Response")
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


# --------------------------------------------------------------------------
# CLI


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="pysaml2 debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--entity-id", required=True, help="IdP entityID")
        p.add_argument("--key", required=True, help="IdP signing key (PEM)")
        p.add_argument("--cert", required=True, help="IdP signing certificate (PEM)")

    m = sub.add_parser("metadata", help="print IdP metadata XML")
    common(m)
    m.add_argument("--sso-url", required=True, help="SingleSignOnService (HTTP-Redirect) URL")
    m.set_defaults(func=cmd_metadata)

    r = sub.add_parser("respond", help="print base64 SAMLResponse")
    common(r)
    r.add_argument("--sp-metadata", required=True, help="SP metadata XML file")
    r.add_argument("--acs-url", required=True, help="ACS URL (Destination, Recipient)")
    r.add_argument("--sp-entity-id", required=True, help="SP entityID (Audience)")
    r.add_argument("--in-response-to", default=None, help="AuthnRequest ID")
    r.add_argument("--name-id", required=True, help="NameID value")
    r.add_argument(
        "--name-id-format",
        default="unspecified",
        help="NameID format: " + ", ".join(NAMEID_FORMATS) + " or a full URN (default: unspecified)",
    )
    r.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE", help="attribute (repeat for multiple values)")
    r.add_argument("--sign-response", action="store_true", help="sign the Response")
    r.add_argument("--sign-assertion", action="store_true", help="sign the Assertion (default if no --sign-* given)")
    r.add_argument("--encrypt-assertion", action="store_true", help="encrypt the (signed) assertion to the SP encryption cert")
    r.add_argument("--enc-alg", choices=sorted(DATA_ENC_ALGS), default="aes256-cbc", help="data encryption algorithm (default aes256-cbc); key transport is rsa-oaep-mgf1p")
    r.add_argument("--lifetime-minutes", type=int, default=5, help="Conditions/SubjectConfirmationData NotOnOrAfter offset (default 5)")
    r.set_defaults(func=cmd_respond)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format=f"{PROG}: %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        warnings.simplefilter("ignore")

    real_stdout = sys.stdout
    old_tempdir = tempfile.tempdir
    try:
        with tempfile.TemporaryDirectory(prefix="pysaml2-idp-") as tmp:
            # pysaml2 writes its xmlsec1 temp files via the tempfile module.
            tempfile.tempdir = tmp
            os.environ["TMPDIR"] = tmp
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    out = args.func(args)
            finally:
                tempfile.tempdir = old_tempdir
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # anything from pysaml2 / xmlsec1
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    real_stdout.write(out.rstrip("\n") + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
