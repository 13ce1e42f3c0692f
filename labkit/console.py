"""What the lab prints for people: banners for what must not be missed, counts in words."""

from __future__ import annotations

RULE = "!" * 78


def banner(title: str, body: str = "") -> str:
    """A block that stands out in a terminal, a notebook output or a log: for fallbacks and
    numbers that must not be mistaken for real ones."""
    lines = [f"!! {title}"] + [f"!! {line}" if line else "!!" for line in body.splitlines()]
    return "\n".join([RULE, *lines, RULE])


def plural(count: int, one: str, many: str) -> str:
    """`1 entry`, `3 entries`."""
    return f"{count} {one if count == 1 else many}"
