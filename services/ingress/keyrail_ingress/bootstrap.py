"""First start: create the organization and its owner, exactly once across all ingress processes."""

from __future__ import annotations

import logging
import sys

from keyrail_common.config_events import OrgCreated, UserCreated
from keyrail_common.projection import ConcurrencyConflict, ConfigProjection, ConfigPublisher
from keyrail_common.security import hash_secret, new_admin_token

log = logging.getLogger("keyrail.bootstrap")

BOOTSTRAP_ORG_ID = "org_default"


async def bootstrap(projection: ConfigProjection, publisher: ConfigPublisher, configured_token: str) -> None:
    state = projection.state
    try:
        if state.org is None:
            org = OrgCreated(org_id=BOOTSTRAP_ORG_ID, name="default")
            await publisher.publish(org, actor="bootstrap", expect_new=True)
        if not any(u.owner for u in state.users.values()):
            token = configured_token or new_admin_token()
            # v1 on purpose: the owner and its token in one event, one create-once append.
            owner = UserCreated(
                user_id="user_owner",
                org_id=BOOTSTRAP_ORG_ID,
                name="owner",
                role="owner",
                token_hash=hash_secret(token),
            )
            await publisher.publish(owner, actor="bootstrap", expect_new=True)
            if not configured_token:
                # Printed once, on stdout only, and never logged: it is the only copy.
                sys.stdout.write(f"\nKeyrail owner admin token (shown once, store it now): {token}\n\n")
                sys.stdout.flush()
    except ConcurrencyConflict:
        log.info("another ingress bootstrapped the organization first")
