"""Pure paging rules: which policy an incident gets, which steps are due, whom they reach, on-call load."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.oncall.config import SCHEDULE_PREFIX, Policy, Route, Schedule, Step, round_length
from bot.oncall.schedules import Overrides, on_call_at

# On-call load counts a page as out of hours outside this local window (DOMAIN.md).
WORKDAY = (time(8), time(20))
Channel = Literal["dm", "email", "webhook", "mention"]


@dataclass(frozen=True)
class DueStep:
    round: int  # 0 for the first run of the steps, 1… for the repeats
    index: int  # the step's position in the policy
    step: Step
    due_at: datetime


@dataclass(frozen=True)
class Target:
    """Someone to notify: a user (DM, e-mail, webhook) or a user group (a mention in the thread)."""

    kind: Literal["user", "usergroup"]
    id: str
    schedule: str | None = None  # the schedule that put this user on the page, if any


def route_for(incident_fields: Mapping[str, Any], routes: Sequence[Route]) -> str | None:
    """The policy of the first route whose every condition matches (category, severity, service).

    `incident_fields` needs `severity`, and `category` and `service` when routes ask for them
    (an alert-declared incident's service is its `service` label). An empty match matches all.
    """
    for route in routes:
        match = route.match
        if match.category is not None and incident_fields.get("category") != match.category:
            continue
        if match.severity is not None and incident_fields.get("severity") not in match.severity:
            continue
        if match.service is not None and incident_fields.get("service") != match.service:
            continue
        return route.policy
    return None


def step_due_at(policy: Policy, page_started_at: datetime, round_: int, index: int) -> datetime:
    return page_started_at + round_ * round_length(policy) + policy.steps[index].after


def due_steps(policy: Policy, page_started_at: datetime, now: datetime, acknowledged: bool) -> list[DueStep]:
    """Every step due by `now` (all of them, not only new ones: claiming each is what makes it once).

    Round r (0 … repeat) reruns the steps from `page_started_at + r × round_length(policy)`; see
    `bot.oncall.config.round_length` for the spacing. An acknowledged page has nothing due.
    """
    if acknowledged:
        return []
    due: list[DueStep] = []
    for round_ in range(policy.repeat + 1):
        for index, step in enumerate(policy.steps):
            at = step_due_at(policy, page_started_at, round_, index)
            if at > now:
                return due
            due.append(DueStep(round_, index, step, at))
    return due


def next_due_at(policy: Policy, page_started_at: datetime, now: datetime) -> datetime | None:
    """When the next step falls due after `now` (for the scheduler); None once all are past."""
    for round_ in range(policy.repeat + 1):
        for index in range(len(policy.steps)):
            at = step_due_at(policy, page_started_at, round_, index)
            if at > now:
                return at
    return None


def resolve_targets(
    step: Step,
    schedules: Mapping[str, Schedule],
    overrides: Mapping[str, Overrides],
    t: datetime,
) -> list[Target]:
    """The step's targets at t: `schedule:NAME` becomes whoever is on call there then (skipped when
    nobody is, before the schedule starts); each person or group once, in the step's order."""
    targets: list[Target] = []
    seen: set[tuple[str, str]] = set()
    for target in step.notify:
        if target.startswith(SCHEDULE_PREFIX):
            name = target[len(SCHEDULE_PREFIX) :]
            user = on_call_at(schedules[name], overrides.get(name), t)
            if user is None:
                continue
            resolved = Target("user", user, name)
        elif target.startswith("S"):
            resolved = Target("usergroup", target)
        else:
            resolved = Target("user", target)
        if (resolved.kind, resolved.id) not in seen:
            seen.add((resolved.kind, resolved.id))
            targets.append(resolved)
    return targets


@dataclass(frozen=True)
class Notice:
    """One notice to claim and send: a page step's target through one channel."""

    round: int
    step: int
    target: str
    channel: Channel
    schedule: str | None = None


def plan_notices(
    policy: Policy,
    page_started_at: datetime,
    now: datetime,
    *,
    acknowledged: bool,
    schedules: Mapping[str, Schedule],
    overrides: Mapping[str, Overrides],
    email_known: Callable[[str], bool],
    webhook: bool,
) -> list[Notice]:
    """Every notice due by `now`: each due step's targets through each of their channels.

    A schedule is resolved at the step's due time, not at `now`, so a sweep that runs late still
    pages whoever was on call when the step fell due. Claiming the notices (bot.oncall.service)
    is what makes each one go out once; planning the same notices again is harmless.
    """
    notices: list[Notice] = []
    for due in due_steps(policy, page_started_at, now, acknowledged):
        for target in resolve_targets(due.step, schedules, overrides, due.due_at):
            for channel in channels_for(target, email_known=email_known(target.id), webhook=webhook):
                notices.append(Notice(due.round, due.index, target.id, channel, target.schedule))
    return notices


def channels_for(target: Target, *, email_known: bool, webhook: bool) -> list[Channel]:
    """How a target is told (CONTRACT.md On-call): a user by DM, e-mail and webhook; a group by a mention."""
    if target.kind == "usergroup":
        return ["mention"]
    channels: list[Channel] = ["dm"]
    if email_known:
        channels.append("email")
    if webhook:
        channels.append("webhook")
    return channels


# On-call load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageReceived:
    """One person notified for one page (however many steps, rounds and channels reached them)."""

    page_id: int
    user_id: str
    at: datetime
    schedule: str | None = None  # the schedule that paged them; their time zone for "out of hours"


@dataclass(frozen=True)
class OnCallStretch:
    """A stretch of someone's time on call (an effective shift, `bot.oncall.schedules.Segment`)."""

    user_id: str
    schedule: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Acknowledgement:
    incident_id: str
    user_id: str
    at: datetime


@dataclass
class Load:
    pages: int = 0
    pages_out_of_hours: int = 0
    hours_on_call: float = 0.0
    acknowledged: int = 0


def oncall_load(
    pages: Iterable[PageReceived],
    shifts: Iterable[OnCallStretch],
    acknowledgements: Iterable[Acknowledgement],
    period: tuple[datetime, datetime],
    zones: Mapping[str, ZoneInfo],
) -> dict[str, Load]:
    """Per person over [start, end): pages received, pages outside 08:00–20:00 in their schedule's
    time zone, hours on call (overlapping schedules counted once), incidents acknowledged.

    A page not tied to a schedule (someone named in a step) is judged in the time zone of a
    schedule they were on call for at that moment, else the first schedule they served, else UTC.
    """
    start, end = period
    load: dict[str, Load] = defaultdict(Load)
    stretches = [s for s in shifts if s.ends_at > start and s.starts_at < end]
    for stretch in stretches:  # everyone on call appears, paged or not
        load.setdefault(stretch.user_id, Load())
    for user, hours in _hours_on_call(stretches, start, end).items():
        load[user].hours_on_call = hours
    seen_pages: set[tuple[str, int]] = set()
    for page in sorted(pages, key=lambda p: p.at):
        if not start <= page.at < end or (page.user_id, page.page_id) in seen_pages:
            continue
        seen_pages.add((page.user_id, page.page_id))
        person = load[page.user_id]
        person.pages += 1
        zone = _zone_for(page, stretches, zones)
        local = page.at.astimezone(zone).time()
        if not WORKDAY[0] <= local < WORKDAY[1]:
            person.pages_out_of_hours += 1
    acknowledged: dict[str, set[str]] = defaultdict(set)
    for ack in acknowledgements:
        if start <= ack.at < end:
            acknowledged[ack.user_id].add(ack.incident_id)
    for user, incidents in acknowledged.items():
        load[user].acknowledged = len(incidents)
    return dict(load)


def _zone_for(page: PageReceived, stretches: Sequence[OnCallStretch], zones: Mapping[str, ZoneInfo]) -> ZoneInfo:
    if page.schedule in zones:
        return zones[page.schedule]  # type: ignore[index]
    theirs = [s for s in stretches if s.user_id == page.user_id and s.schedule in zones]
    for stretch in theirs:
        if stretch.starts_at <= page.at < stretch.ends_at:
            return zones[stretch.schedule]
    return zones[theirs[0].schedule] if theirs else ZoneInfo("UTC")


def _hours_on_call(stretches: Sequence[OnCallStretch], start: datetime, end: datetime) -> dict[str, float]:
    by_user: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for s in stretches:
        by_user[s.user_id].append((max(s.starts_at, start), min(s.ends_at, end)))
    hours: dict[str, float] = {}
    for user, spans in by_user.items():
        total = timedelta(0)
        current_start, current_end = datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)
        for a, b in sorted(spans):
            if a > current_end:
                total += current_end - current_start
                current_start, current_end = a, b
            else:
                current_end = max(current_end, b)
        total += current_end - current_start
        hours[user] = total.total_seconds() / 3600
    return hours
