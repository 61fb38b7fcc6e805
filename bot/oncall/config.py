"""The `oncall:` section of CONFIG_FILE as typed models, with one message per mistake naming its path."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.oncall.durations import format_duration, parse_duration
from storage.models import CATEGORIES, SEVERITIES

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SLACK_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Shorter rotations are surely typos (PT1S for P1D) and would make every timeline huge.
MIN_ROTATION = timedelta(hours=1)
SCHEDULE_PREFIX = "schedule:"


class OnCallConfigError(ValueError):
    """The `oncall:` section is wrong; `problems` holds one line per mistake, each naming its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _user_id(value: str) -> str:
    if not _SLACK_USER.match(value):
        raise ValueError(f"{value!r} is not a Slack user id (U… or W…)")
    return value


def _group_id(value: str) -> str:
    if not _SLACK_GROUP.match(value):
        raise ValueError(f"{value!r} is not a Slack user-group id (S…)")
    return value


def _target(value: str) -> str:
    if value.startswith(SCHEDULE_PREFIX):
        if not _NAME.match(value[len(SCHEDULE_PREFIX) :]):
            raise ValueError(f"{value!r}: a schedule target is schedule:NAME")
        return value
    if _SLACK_USER.match(value) or _SLACK_GROUP.match(value):
        return value
    raise ValueError(f"{value!r} is neither a Slack user (U…/W…), a user group (S…) nor schedule:NAME")


def _severities(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _severity(value: str) -> str:
    if value not in SEVERITIES:
        raise ValueError(f"{value!r} is not a severity: use {', '.join(SEVERITIES)}")
    return value


UserId = Annotated[str, AfterValidator(_user_id)]
GroupId = Annotated[str, AfterValidator(_group_id)]
Target = Annotated[str, AfterValidator(_target)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Severity = Annotated[str, AfterValidator(_severity)]


class _Model(BaseModel):
    # A misspelt key is a mistake to report, not something to ignore.
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_rotation(value: str) -> timedelta:
    """`daily`, `weekly`, or an ISO 8601 duration: the wall-clock step between handoffs."""
    text = value.strip().lower()
    if text == "daily":
        return timedelta(days=1)
    if text == "weekly":
        return timedelta(weeks=1)
    try:
        step = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a rotation: use daily, weekly or an ISO 8601 duration such as P3D") from exc
    if step < MIN_ROTATION:
        raise ValueError(f"{value!r}: a rotation must be at least {format_duration(MIN_ROTATION)}")
    return step


def parse_handoff(value: str, rotation: str) -> tuple[int | None, time]:
    """(weekday or None, local time): "mon 09:00" for weekly rotations, "09:00" for the others."""
    weekly = rotation.strip().lower() == "weekly"
    words = value.strip().lower().split()
    if weekly:
        if len(words) != 2:
            raise ValueError(f"{value!r}: a weekly handoff is a weekday and a time, such as \"mon 09:00\"")
        day, clock = words
        if day in WEEKDAYS:
            weekday: int | None = WEEKDAYS.index(day)
        elif day in _FULL_WEEKDAYS:
            weekday = _FULL_WEEKDAYS.index(day)
        else:
            raise ValueError(f"{value!r}: {day!r} is not a weekday (mon, tue, … sun)")
    else:
        if len(words) != 1:
            raise ValueError(f"{value!r}: a {rotation} handoff is a time of day, such as \"09:00\"")
        weekday, clock = None, words[0]
    match = _CLOCK.match(clock)
    if match is None:
        raise ValueError(f"{value!r}: {clock!r} is not a time of day (HH:MM, 24-hour)")
    return weekday, time(int(match.group(1)), int(match.group(2)))


class Schedule(_Model):
    timezone: str
    rotation: str
    handoff: str
    start: date
    members: list[UserId] = Field(min_length=1)
    usergroup: GroupId | None = None

    _zone: ZoneInfo = PrivateAttr()
    _step: timedelta = PrivateAttr()
    _weekday: int | None = PrivateAttr()
    _handoff_time: time = PrivateAttr()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone (IANA name such as Europe/Berlin)") from exc
        return value

    @field_validator("rotation")
    @classmethod
    def _rotation(cls, value: str) -> str:
        parse_rotation(value)
        return value

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str, info: ValidationInfo) -> str:
        rotation = info.data.get("rotation")
        if rotation is not None:  # a bad rotation is reported on its own line
            parse_handoff(value, rotation)
        return value

    @model_validator(mode="after")
    def _parsed(self) -> Schedule:
        self._zone = ZoneInfo(self.timezone)
        self._step = parse_rotation(self.rotation)
        self._weekday, self._handoff_time = parse_handoff(self.handoff, self.rotation)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def step(self) -> timedelta:
        """The wall-clock time from one handoff to the next."""
        return self._step

    @property
    def handoff_weekday(self) -> int | None:
        return self._weekday

    @property
    def handoff_time(self) -> time:
        return self._handoff_time


class Person(_Model):
    name: str | None = None
    email: str | None = None
    phone: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (value.count("@") != 1 or value.startswith("@") or value.endswith("@")):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value


class Step(_Model):
    after: Duration
    notify: list[Target] = Field(min_length=1)


class Policy(_Model):
    steps: list[Step] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0)


class Match(_Model):
    category: str | None = None
    severity: Annotated[list[Severity] | None, BeforeValidator(_severities)] = None
    service: str | None = None

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"{value!r} is not a category: use one of {', '.join(CATEGORIES)}")
        return value


class Route(_Model):
    match: Match = Field(default_factory=Match)
    policy: str


class Email(_Model):
    to: list[str] = Field(min_length=1)
    severities: list[Severity] = Field(default_factory=lambda: list(SEVERITIES))


class OnCallConfig(_Model):
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    people: dict[UserId, Person] = Field(default_factory=dict)
    policies: dict[str, Policy] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    email: Email | None = None

    @model_validator(mode="after")
    def _references(self) -> OnCallConfig:
        problems = cross_check(self)
        if problems:
            # Carried out through pydantic so that Settings reports it like any other field.
            raise OnCallConfigError(problems)
        return self


def cross_check(config: OnCallConfig) -> list[str]:
    """The mistakes that span fields: unknown names, steps that go backwards, unspaced repeats."""
    problems: list[str] = []
    for name in config.schedules:
        if not _NAME.match(name):
            problems.append(f"oncall.schedules.{name}: a schedule name is letters, digits, - and _")
    for name, policy in config.policies.items():
        previous: timedelta | None = None
        for i, step in enumerate(policy.steps):
            path = f"oncall.policies.{name}.steps[{i}]"
            if previous is not None and step.after < previous:
                problems.append(
                    f"{path}.after: {format_duration(step.after)} is before the previous step's "
                    f"{format_duration(previous)}: steps must not go backwards"
                )
            previous = step.after
            for j, target in enumerate(step.notify):
                schedule = target.removeprefix(SCHEDULE_PREFIX)
                if target.startswith(SCHEDULE_PREFIX) and schedule not in config.schedules:
                    problems.append(f"{path}.notify[{j}]: unknown schedule {schedule!r}")
        if policy.repeat and round_length(policy) <= timedelta(0):
            problems.append(
                f"oncall.policies.{name}.repeat: the steps take no time (all at PT0M), so repeats would all "
                "fire at once: give the last step an `after`"
            )
    for i, route in enumerate(config.routes):
        if route.policy not in config.policies:
            problems.append(f"oncall.routes[{i}].policy: unknown policy {route.policy!r}")
    return problems


def round_length(policy: Policy) -> timedelta:
    """How far apart the rounds of a repeated policy start (round r's step i is due at r × this + its after).

    Chosen so that the rhythm carries on: the next round's first step comes one "last gap" after
    the last step (the gap between the last two steps; for a single step, its own `after`).
    Steps at 0, 10, 20 minutes repeat at 30, 40, 50; one step at 15 minutes repeats at 30, 45.
    """
    first, last = policy.steps[0].after, policy.steps[-1].after
    gap = last - policy.steps[-2].after if len(policy.steps) > 1 else last
    return last + gap - first


def _path(loc: tuple[int | str, ...]) -> str:
    path = "oncall"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _message(error: Any) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key (misspelt?)"
    if kind == "missing":
        return "required"
    return message


def parse_oncall(raw: dict[str, Any] | None) -> OnCallConfig:
    """The validated `oncall:` section (empty when absent); OnCallConfigError lists every mistake."""
    if raw is None:
        return OnCallConfig()
    if not isinstance(raw, dict):
        raise OnCallConfigError([f"oncall: must be a mapping, not {type(raw).__name__}"])
    try:
        return OnCallConfig.model_validate(raw)
    except OnCallConfigError:
        raise
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors():
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, OnCallConfigError):
                problems.extend(cause.problems)
            else:
                problems.append(f"{_path(tuple(error['loc']))}: {_message(error)}")
        # The cross-checks did not run (the fields failed first): the names they check are still known.
        problems.extend(p for p in _raw_references(raw) if p not in problems)
        raise OnCallConfigError(problems) from None


def _raw_references(raw: dict[str, Any]) -> list[str]:
    """Unknown schedule and policy names, read from the raw section (every mistake in one go)."""
    def mapping(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    schedules, policies = mapping(raw.get("schedules")), mapping(raw.get("policies"))
    problems: list[str] = []
    for name, policy in policies.items():
        steps = mapping(policy).get("steps")
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            notify = mapping(step).get("notify")
            for j, target in enumerate(notify if isinstance(notify, list) else []):
                if isinstance(target, str) and target.startswith(SCHEDULE_PREFIX):
                    schedule = target[len(SCHEDULE_PREFIX) :]
                    if _NAME.match(schedule) and schedule not in schedules:
                        problems.append(f"oncall.policies.{name}.steps[{i}].notify[{j}]: unknown schedule {schedule!r}")
    routes = raw.get("routes")
    for i, route in enumerate(routes if isinstance(routes, list) else []):
        policy_name = mapping(route).get("policy")
        if isinstance(policy_name, str) and policy_name not in policies:
            problems.append(f"oncall.routes[{i}].policy: unknown policy {policy_name!r}")
    return problems


TargetKind = Literal["user", "usergroup", "schedule"]


def target_kind(target: str) -> TargetKind:
    if target.startswith(SCHEDULE_PREFIX):
        return "schedule"
    return "usergroup" if target.startswith("S") else "user"
