"""`status_page:` in CONFIG_FILE: the components shown and what maps to them, with one error per mistake."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from storage.models import CATEGORIES

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class StatusPageConfigError(ValueError):
    """`status_page` is wrong: one line per mistake, each naming its path in the config file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))  # one line, as every settings error is
        self.problems = problems


class ComponentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str  # stable id in URLs, the API and the database; the name may change freely
    name: str = Field(min_length=1, max_length=100)
    description: str | None = None
    group: str | None = Field(default=None, min_length=1, max_length=100)
    only_show_if_degraded: bool = False
    categories: tuple[str, ...] = ()  # incident categories (DOMAIN.md) that affect this component
    services: tuple[str, ...] = ()  # an incident's service / an alert's `service` label
    # Alert labels that, all together, mean this component (like an Alertmanager matcher set);
    # a list of values means any one of them.
    alert_labels: dict[str, str | tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY_RE.match(value):
            raise ValueError("must be 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit")
        return value

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in value if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown category {unknown[0]!r} (one of: {', '.join(CATEGORIES)})")
        return value

    def matches_alert(self, labels: Mapping[str, str]) -> bool:
        if self.services and labels.get("service") in self.services:
            return True
        if self.categories and labels.get("category") in self.categories:
            return True
        if not self.alert_labels:
            return False
        for name, wanted in self.alert_labels.items():
            values = (wanted,) if isinstance(wanted, str) else wanted
            if labels.get(name) not in values:
                return False
        return True

    def matches_incident(self, *, category: str | None, service: str | None) -> bool:
        return bool((category and category in self.categories) or (service and service in self.services))


class StatusPageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    components: tuple[ComponentConfig, ...] = ()
    time_zone: str = "UTC"  # the days of the uptime bars and the page's dates

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Berlin)") from None
        return value

    @model_validator(mode="after")
    def _unique_keys(self) -> StatusPageConfig:
        seen: set[str] = set()
        for component in self.components:
            if component.key in seen:
                raise ValueError(f"component key {component.key!r} is used twice")
            seen.add(component.key)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.components)

    def component(self, key: str) -> ComponentConfig | None:
        return next((c for c in self.components if c.key == key), None)

    def components_for_alert(self, labels: Mapping[str, str]) -> list[str]:
        return [c.key for c in self.components if c.matches_alert(labels)]

    def components_for_incident(self, *, category: str | None, service: str | None) -> list[str]:
        return [c.key for c in self.components if c.matches_incident(category=category, service=service)]


def _path(location: tuple[int | str, ...]) -> str:
    path = "status_page"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _normalise(raw: Any) -> Any:
    """Accept `components` as a list of mappings or as a mapping keyed by component key."""
    if isinstance(raw, Mapping) and isinstance(raw.get("components"), Mapping):
        components = []
        for key, body in raw["components"].items():
            entry = dict(body) if isinstance(body, Mapping) else {"name": body}
            entry.setdefault("key", key)
            components.append(entry)
        return {**raw, "components": components}
    return raw


def parse_status_page(raw: Any) -> StatusPageConfig:
    """The `status_page` value of CONFIG_FILE (None: no components) as a checked config."""
    if raw is None:
        return StatusPageConfig()
    if not isinstance(raw, Mapping):
        raise StatusPageConfigError([f"status_page: must be a mapping with a `components` list, not {raw!r}"])
    try:
        return StatusPageConfig.model_validate(_normalise(raw))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{_path(tuple(error['loc']))}: {message}")
        raise StatusPageConfigError(problems) from None


def split_config_file(data: dict[str, Any]) -> dict[str, Any]:
    """CONFIG_FILE's keys with its `status_page:` mapping moved to `status_page_config`.

    Settings lower-cases names, so the env flag STATUS_PAGE and the file's `status_page:` section
    are one key; the section goes to a field of its own, and its optional `enabled` is the flag.
    """
    section = data.get("status_page")
    if not isinstance(section, Mapping):
        return data  # absent, or the flag itself (`status_page: true`)
    data = dict(data)
    section = dict(section)
    if "enabled" in section:
        data["status_page"] = section.pop("enabled")
    else:
        del data["status_page"]
    data["status_page_config"] = section
    return data
