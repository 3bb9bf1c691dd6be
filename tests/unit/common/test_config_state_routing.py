"""Virtual models and gateway configs in the projection: set replaces whole, removed forgets, the
aggregate's version follows, and the events round-trip through the envelope unchanged."""

from __future__ import annotations

from keyrail_common.config_events import (
    ConfigEnvelope,
    GatewayConfigRemoved,
    GatewayConfigSet,
    RouteRetry,
    RouteTarget,
    VirtualModelRemoved,
    VirtualModelSet,
    aggregate_of,
    decode_envelope,
    encode_envelope,
)
from keyrail_common.config_state import ConfigState, EventMeta

CONFIG = GatewayConfigSet(
    config_id="chain",
    org_id="org",
    project_scope=["proj_a"],
    strategy="fallback",
    targets=[
        RouteTarget(provider_slug="a", model="m", retry=RouteRetry(2, 100), override_params={"t": 0}),
        RouteTarget(config="other"),
    ],
    fallback_on=[503, "timeout"],
)
ALIAS = VirtualModelSet(
    alias="classifier", org_id="org", project_scope="all", target=RouteTarget(config="chain")
)


def test_set_and_removed_fold_into_the_state_with_their_versions() -> None:
    state = ConfigState()
    state.apply(CONFIG, EventMeta(seq=5, aggregate_key="gatewayconfig.chain"))
    state.apply(ALIAS, EventMeta(seq=6, aggregate_key="virtualmodel.classifier"))
    assert state.configs == {"chain": CONFIG} and state.virtual_models == {"classifier": ALIAS}
    assert (state.version("gatewayconfig", "chain"), state.version("virtualmodel", "classifier")) == (5, 6)

    state.apply(
        VirtualModelRemoved(alias="classifier"), EventMeta(seq=7, aggregate_key="virtualmodel.classifier")
    )
    state.apply(
        GatewayConfigRemoved(config_id="chain"), EventMeta(seq=8, aggregate_key="gatewayconfig.chain")
    )
    assert state.configs == {} and state.virtual_models == {}
    assert state.version("gatewayconfig", "chain") == 8  # a re-creation must expect this version


def test_the_events_have_their_own_aggregates_and_round_trip_through_the_envelope() -> None:
    assert aggregate_of(CONFIG) == ("gatewayconfig", "chain")
    assert aggregate_of(ALIAS) == ("virtualmodel", "classifier")
    for event in (CONFIG, ALIAS, GatewayConfigRemoved(config_id="chain"), VirtualModelRemoved(alias="x")):
        envelope = ConfigEnvelope(event=event, actor="user_1", ts=1.0)
        assert decode_envelope(encode_envelope(envelope)).event == event
