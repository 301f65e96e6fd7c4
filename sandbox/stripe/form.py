"""Stripe's form bodies, server side: ``items[0][price]=p`` back into nested dicts and lists.

Written independently of the connector's encoder so a bug in one is caught by the other.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class FormError(ValueError):
    """A key that is not Stripe's bracket syntax."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Invalid parameter name: {key}")
        self.key = key


def decode_form(text: str) -> dict[str, Any]:
    """Nested params from an urlencoded string. Values stay strings, as Stripe receives them."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            raise FormError(key)
        parts = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # ``expand[]=a`` appends
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise FormError(key)
                node = child
    return _listify(root)


def _listify(value: Any) -> Any:
    """Dicts whose keys are all indexes become lists (in index order)."""
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return value
