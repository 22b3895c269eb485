#!/usr/bin/env python3
"""pysaml2 (the SAML engine inside SATOSA) validating the ACS benchmark's own responses.

  bench-pysaml2.py BODIES IDP_METADATA SP_ENTITY_ID ACS_URL [COUNT]

BODIES is the acs_bench file (one `SAMLResponse=...` form body per line). Each response is
parsed and validated the way a pysaml2 SP does it (`Saml2Client.parse_authn_request_response`:
schema, signature through Debian's xmlsec1, conditions, audience, unsolicited allowed), in one
process, one after the other. Prints the rate as `PYSAML2 <validations/s> <count>`.
"""

import logging
import shutil
import sys
import time
import urllib.parse
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)

from saml2 import BINDING_HTTP_POST  # noqa: E402
from saml2.client import Saml2Client  # noqa: E402
from saml2.config import SPConfig  # noqa: E402


def main():
    bodies_path, idp_metadata, sp_entity_id, acs_url = sys.argv[1:5]
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    responses = []
    with open(bodies_path) as f:
        for line in f:
            if len(responses) == count:
                break
            responses.append(urllib.parse.unquote_plus(line.strip().split("=", 1)[1]))
    config = SPConfig()
    config.load(
        {
            "entityid": sp_entity_id,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                    "allow_unsolicited": True,
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                }
            },
            "metadata": {"local": [idp_metadata]},
            "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
            "accepted_time_diff": 120,
        }
    )
    client = Saml2Client(config)
    # One untimed validation first: imports, schema loading and metadata caches warm up.
    client.parse_authn_request_response(responses[0], BINDING_HTTP_POST)
    started = time.perf_counter()
    for response in responses[1:]:
        parsed = client.parse_authn_request_response(response, BINDING_HTTP_POST)
        if parsed is None or parsed.assertion is None:
            sys.exit("pysaml2 did not accept a response the bridge accepts")
    elapsed = time.perf_counter() - started
    done = len(responses) - 1
    print(f"PYSAML2 {done / elapsed:.1f} {done}")


if __name__ == "__main__":
    main()
