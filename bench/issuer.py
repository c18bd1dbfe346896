"""A one-shot stand-in for Cloudflare Access, for the benchmark only.

Writes into OUT_DIR:
  certs.json  - the signing key in Cloudflare's certs shape (served by fast-upstream)
  token       - an RS256 application token with Cloudflare's claims
  products.json - a Polar `ListResource[Product]` page of 10 products (the upstream body)

usage: issuer.py OUT_DIR TEAM AUDIENCE
"""

import base64
import hashlib
import json
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def products_page(count: int) -> dict:
    items = []
    for n in range(count):
        product_id = f"0b7e3c54-8d3a-4c8e-9f7a-{n:012d}"
        items.append(
            {
                "id": product_id,
                "created_at": "2026-01-15T10:00:00Z",
                "modified_at": "2026-03-01T12:30:00Z",
                "trial_interval": None,
                "trial_interval_count": None,
                "name": f"Pro plan {n}",
                "description": "Everything in Starter, plus priority support and "
                "higher limits for growing teams.",
                "recurring_interval": "month",
                "is_recurring": True,
                "is_archived": False,
                "organization_id": "1dbfc517-0bbf-4301-9ba8-555ca42b9737",
                "metadata": {"tier": "pro", "seats": 5},
                "prices": [
                    {
                        "created_at": "2026-01-15T10:00:00Z",
                        "modified_at": None,
                        "id": f"7c1f6a2e-1b1d-4c3a-8e2f-{n:012d}",
                        "amount_type": "fixed",
                        "is_archived": False,
                        "product_id": product_id,
                        "type": "recurring",
                        "recurring_interval": "month",
                        "price_currency": "usd",
                        "price_amount": 2900,
                    }
                ],
                "benefits": [],
                "medias": [],
                "attached_custom_fields": [],
            }
        )
    return {"items": items, "pagination": {"total_count": count, "max_page": 1}}


def main() -> None:
    out_dir, team, audience = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    out_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    n = b64url_uint(numbers.n)
    kid = hashlib.sha256(n.encode()).hexdigest()[:32]
    jwk = {"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig", "e": b64url_uint(numbers.e), "n": n}
    (out_dir / "certs.json").write_text(json.dumps({"keys": [jwk]}))

    now = int(time.time())
    claims = {
        "aud": [audience],
        "email": "bench@example.com",
        "exp": now + 8 * 3600,
        "iat": now,
        "nbf": now,
        "iss": f"https://{team}.cloudflareaccess.com",
        "type": "app",
        "identity_nonce": "bench-nonce",
        "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
        "country": "XX",
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    (out_dir / "token").write_text(token)
    (out_dir / "products.json").write_text(json.dumps(products_page(10)))


if __name__ == "__main__":
    main()
