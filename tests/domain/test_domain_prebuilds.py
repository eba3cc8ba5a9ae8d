"""The prebuild reconciler's decisions (DESIGN §10), from plain values."""

from __future__ import annotations

import datetime as dt
import uuid

from berth.domain.prebuilds import Failures, Plan, Pool, Prebuild, backoff, plan

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
SMALL = uuid.UUID(int=1)
BIG = uuid.UUID(int=2)
OLD = uuid.UUID(int=9)  # a preset of an older version


def _prebuild(preset: uuid.UUID | None, age_s: int = 60, **state: bool) -> Prebuild:
    return Prebuild(
        workspace_id=uuid.uuid4(),
        preset_id=preset,
        created_at=NOW - dt.timedelta(seconds=age_s),
        **state,
    )


def _plan(
    pools: list[Pool],
    prebuilds: list[Prebuild],
    failures: dict[uuid.UUID, Failures] | None = None,
    site_max: int = 100,
) -> Plan:
    return plan(pools, prebuilds, failures=failures or {}, now=NOW, site_max=site_max)


def test_an_empty_pool_builds_what_it_wants_and_a_full_one_nothing() -> None:
    assert _plan([Pool(SMALL, 2)], []).create == {SMALL: 2}
    full = [_prebuild(SMALL), _prebuild(SMALL, building=True)]
    assert _plan([Pool(SMALL, 2)], full).empty  # one still building counts as live


def test_prebuilds_of_old_versions_and_removed_pools_go_once_settled() -> None:
    old_ready = _prebuild(OLD)
    old_building = _prebuild(OLD, building=True)
    zeroed = _prebuild(BIG)
    planned = _plan([Pool(SMALL, 1), Pool(BIG, 0)], [old_ready, old_building, zeroed])
    assert set(planned.delete) == {old_ready.workspace_id, zeroed.workspace_id}
    assert planned.create == {SMALL: 1}
    assert _plan([], [_prebuild(None)]).delete  # a prebuild with no preset is no pool's


def test_a_failed_prebuild_is_deleted_and_its_pool_backs_off() -> None:
    failed = _prebuild(SMALL, failed=True)
    just_failed = {SMALL: Failures(count=1, last_at=NOW - dt.timedelta(seconds=3))}
    planned = _plan([Pool(SMALL, 1)], [failed], just_failed)
    assert planned.delete == [failed.workspace_id]
    assert planned.create == {}
    assert planned.waiting == {SMALL: NOW + dt.timedelta(seconds=7)}
    later = {SMALL: Failures(count=1, last_at=NOW - dt.timedelta(seconds=10))}
    assert _plan([Pool(SMALL, 1)], [], later).create == {SMALL: 1}


def test_backoff_doubles_from_ten_seconds_to_five_minutes() -> None:
    waits = [backoff(n).total_seconds() for n in range(0, 8)]
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300]
    assert backoff(10_000) == dt.timedelta(minutes=5)


def test_the_site_cap_bounds_all_pools_together_in_a_stable_order() -> None:
    existing = [_prebuild(BIG)]
    planned = _plan([Pool(BIG, 3), Pool(SMALL, 3)], existing, site_max=3)
    assert planned.create == {SMALL: 2}  # SMALL sorts first: 1 live + 2 = the cap
    assert _plan([Pool(SMALL, 3)], [], site_max=0).empty


def test_a_surplus_goes_idle_first_then_newest_first() -> None:
    old_idle = _prebuild(SMALL, age_s=300)
    new_idle = _prebuild(SMALL, age_s=10)
    building = _prebuild(SMALL, age_s=1, building=True)
    planned = _plan([Pool(SMALL, 1)], [old_idle, new_idle, building])
    assert planned.delete == [new_idle.workspace_id, old_idle.workspace_id]
    assert planned.create == {}


def test_the_same_state_gives_the_same_plan() -> None:
    state = [_prebuild(SMALL), _prebuild(OLD), _prebuild(BIG, failed=True)]
    pools = [Pool(SMALL, 2), Pool(BIG, 1)]
    assert _plan(pools, state) == _plan(pools, state)
