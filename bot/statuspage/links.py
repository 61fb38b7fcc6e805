"""Links between the site's pages, for serving (an absolute path prefix) or a static export (relative)."""

from __future__ import annotations

PAGES = ("status", "status/history")


def is_relative(base: str) -> bool:
    """An export's pages link relatively ("../"), so the site works from any folder or file://."""
    return not base.startswith("/") and "://" not in base


def link(base: str, path: str) -> str:
    """`path` is a site path without its leading slash: "status", "status/incidents/7", "api/v2/summary.json".

    Pages are folders in an export (status/history/index.html), so a relative link names the file.
    """
    is_page = "." not in path.rsplit("/", 1)[-1]
    if is_relative(base) and is_page:
        return f"{base}{path}/index.html"
    return f"{base}{path}"


def depth_base(path: str) -> str:
    """The relative base from the exported file that serves `path` back to the site's root."""
    parts = path.strip("/").split("/")
    is_page = "." not in parts[-1]
    depth = len(parts) if is_page else len(parts) - 1
    return "../" * depth
