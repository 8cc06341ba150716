"""Mint a development token: `gonghui-token --role county_admin --org-id … --org-path …`.

Token issuing belongs to the gateway; until it exists this CLI signs with the
configured key (`GONGHUI_JWT_PRIVATE_KEY`) or the generated dev key.
"""

from __future__ import annotations

import argparse
import sys

from gonghui_shared.auth import Principal, TokenIssuer
from gonghui_shared.permissions import Role
from gonghui_shared.runtime import load_jwt_private_key
from gonghui_shared.settings import ServiceSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--subject", default="dev-user")
    parser.add_argument("--org-id")
    parser.add_argument("--org-path", help="materialised path of the org, e.g. /<county id>/")
    parser.add_argument("--member-no")
    parser.add_argument("--ttl", type=int, default=8 * 3600, help="seconds (default 8 hours)")
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    try:
        key = load_jwt_private_key(settings)
    except Exception as exc:  # noqa: BLE001 - a CLI says what went wrong in one line
        sys.exit(f"cannot load the signing key: {exc}")
    principal = Principal(
        subject=args.subject,
        role=Role(args.role),
        org_id=args.org_id,
        org_path=args.org_path,
        member_no=args.member_no,
    )
    print(TokenIssuer(key).issue(principal, args.ttl))


if __name__ == "__main__":
    main()
