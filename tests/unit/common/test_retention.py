"""Retention (KEYRAIL_ACTIVITY_TTL_DAYS, KEYRAIL_COSTS_TTL_DAYS) as table TTLs: the ALTERs that
bring a store to the setting, none when it is there already, the same on a cluster's shards."""

from __future__ import annotations

import pytest

from keyrail_common.clickhouse import ON_CLUSTER, Retention, retention_statements, ttl_expression
from keyrail_common.cluster_ddl import cluster_statements, render
from keyrail_common.settings import load_settings

NO_TTL: dict[str, str | None] = {"activity": None, "costs_daily": None, "costs_daily_by_tag": None}


def test_keep_forever_on_tables_without_a_ttl_changes_nothing() -> None:
    assert retention_statements(Retention(), NO_TTL) == []


def test_a_retention_sets_each_tables_ttl_on_the_column_its_rows_age_by() -> None:
    statements = retention_statements(Retention(activity_days=30, costs_days=400), NO_TTL)

    assert statements == [
        "ALTER TABLE keyrail.activity MODIFY TTL ts + toIntervalDay(30)",
        "ALTER TABLE keyrail.costs_daily MODIFY TTL day + toIntervalDay(400)",
        "ALTER TABLE keyrail.costs_daily_by_tag MODIFY TTL day + toIntervalDay(400)",
    ]


def test_the_same_setting_again_changes_nothing_and_a_new_one_only_what_differs() -> None:
    current = {
        "activity": ttl_expression("activity", 30),
        "costs_daily": ttl_expression("costs_daily", 400),
        "costs_daily_by_tag": ttl_expression("costs_daily_by_tag", 400),
    }

    assert retention_statements(Retention(activity_days=30, costs_days=400), current) == []
    assert retention_statements(Retention(activity_days=7, costs_days=400), current) == [
        "ALTER TABLE keyrail.activity MODIFY TTL ts + toIntervalDay(7)"
    ]


def test_back_to_forever_removes_the_ttl() -> None:
    current = {**NO_TTL, "activity": ttl_expression("activity", 30)}

    assert retention_statements(Retention(), current) == ["ALTER TABLE keyrail.activity REMOVE TTL"]


def test_on_a_cluster_the_ttl_goes_to_every_shards_local_table() -> None:
    statements = retention_statements(Retention(activity_days=90), NO_TTL, ON_CLUSTER)

    assert statements == [
        "ALTER TABLE keyrail.activity_local ON CLUSTER '{cluster}' MODIFY TTL ts + toIntervalDay(90)"
    ]


def test_the_generated_cluster_ddl_carries_a_retention_only_when_asked() -> None:
    assert not any("TTL" in statement for statement in cluster_statements())
    assert "TTL" not in render().split("\n-- Retention")[0]  # the header's note aside
    with_ttl = cluster_statements(Retention(activity_days=90, costs_days=730))

    assert with_ttl[-3:] == [
        f"ALTER TABLE keyrail.activity_local {ON_CLUSTER} MODIFY TTL ts + toIntervalDay(90)",
        f"ALTER TABLE keyrail.costs_daily_local {ON_CLUSTER} MODIFY TTL day + toIntervalDay(730)",
        f"ALTER TABLE keyrail.costs_daily_by_tag_local {ON_CLUSTER} MODIFY TTL day + toIntervalDay(730)",
    ]


def test_the_settings_default_to_keeping_rows_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYRAIL_ACTIVITY_TTL_DAYS", raising=False)
    monkeypatch.delenv("KEYRAIL_COSTS_TTL_DAYS", raising=False)
    settings = load_settings()

    assert (settings.activity_ttl_days, settings.costs_ttl_days) == (0, 0)


@pytest.mark.parametrize("value", ["-1", "30d", "1.5"])
def test_a_retention_that_is_not_a_whole_number_of_days_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("KEYRAIL_ACTIVITY_TTL_DAYS", value)

    with pytest.raises(ValueError, match=r"KEYRAIL_ACTIVITY_TTL_DAYS=.*whole number of days"):
        load_settings()
