"""Writes golden.json (and rsa1024.pem, a key too small to accept): v2 (Okta agent identity)
assertions and a v3 (workload identity) client assertion made by OpenBox's Python base package
for fixed inputs (key, clock, jti), which the Rust signer must reproduce byte for byte.

Run once with `openbox-sdk-python==1.4.0` installed (it brings `cryptography`):

    python3 -m venv /tmp/v && /tmp/v/bin/pip install openbox-sdk-python==1.4.0
    /tmp/v/bin/python openbox/testdata/identity/generate.py

The RSA key is made here, for these tests only; it signs nothing else.
"""

import json
import pathlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from openbox_core.identity_okta import OktaAgentIdentity, prepare_okta_signed_request
from openbox_core.identity_types import OktaAiAgentIdentityConfig
from openbox_core.jwk_thumbprint import jwk_thumbprint_sha256
from openbox_core.workload_identity import WorkloadBootstrapDocument, build_private_key_jwt

HERE = pathlib.Path(__file__).parent

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode("ascii")

config = OktaAiAgentIdentityConfig(
    openbox_agent_id="5b0d3c9e-7a51-4f8e-9d0c-2f6a1e4b8c73",
    organization_id="org_01HZXK3Q9V",
    deployment_id="dep_eu_1",
    external_agent_id="wlp8x5q7mvH86KvFJ0g4",
    key_id="kid-2026-12",
    # Non-ASCII, a control character and characters Go's encoder would escape: the claims are
    # Python's sorted, compact, ASCII-only JSON.
    audience="https://core.example/api/v2 \u00e4\u20ac\U0001f600 \x7f <&> \"q\" \\ \t",
    private_key=pem,
)
identity = OktaAgentIdentity.from_config(config)

cases = []
for method, path, payload, jti, iat, extra in [
    ("POST", "/api/v2/governance/evaluate",
     {"event_type": "ActivityStarted", "note": "caf\u00e9", "n": 3}, "A" * 32, 1_700_000_000, None),
    ("get", "/api/v2/auth/validate", None, "abcdefghijklmnopqrstuvwxyz012-_9", 1_765_432_100, None),
    ("POST", "/api/v2/auth/transition-proof", {"transition_id": "tr-1"}, "Z" * 32, 1_765_432_160,
     {"obx_transition_purpose": "okta_ai_agent", "obx_transition_id": "tr-1",
      "obx_transition_challenge": "ch-\u00df"}),
]:
    headers, body = prepare_okta_signed_request(
        method, path, payload, api_key="obx_live_test_key_\u00fc", identity=identity,
        extra_claims=extra, _jti=jti, _iat=iat,
    )
    cases.append({
        "method": method,
        "path": path,
        "body": body.decode("utf-8"),
        "jti": jti,
        "iat": iat,
        "extra_claims": extra,
        "assertion": headers["X-OpenBox-Agent-Assertion"],
    })

# The workload identity's (v3) client assertion (RFC 7523 private_key_jwt), with the same key.
document = WorkloadBootstrapDocument(
    bootstrap_version=3,
    contract_version=3,
    token_endpoint="https://id.example/realms/obx/protocol/openid-connect/token",
    issuer="https://id.example/realms/obx",
    audience="openbox-core",
    client_id="svc-agent-\u00e9",
    service_account_id="0b7d2c4e-1f3a-4c5b-8d9e-7a6b5c4d3e2f",
    activation_version="6f1e2d3c-4b5a-4968-8776-655443322110",
    identity_source="openbox",
    kid="wl-kid-1",
)
workload = {
    "token_endpoint": document.token_endpoint,
    "client_id": document.client_id,
    "kid": document.kid,
    "jti": "W" * 32,
    "iat": 1_765_432_222,
}
workload["assertion"] = build_private_key_jwt(
    pem, document, issued_at=workload["iat"], jti=workload["jti"])

golden = {
    "generated_by": "openbox-sdk-python 1.4.0 (openbox_core.identity_okta), generate.py",
    "private_key_pem": pem,
    "identity": {k: getattr(config, k) for k in (
        "openbox_agent_id", "organization_id", "deployment_id", "external_agent_id", "key_id",
        "audience")},
    "api_key": "obx_live_test_key_\u00fc",
    "jwk_thumbprint": jwk_thumbprint_sha256(key.public_key()),
    "cases": cases,
    "workload": workload,
}
small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
(HERE / "rsa1024.pem").write_bytes(small.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
))
(HERE / "golden.json").write_text(json.dumps(golden, indent=2, ensure_ascii=False) + "\n")
print("wrote", HERE / "golden.json")
