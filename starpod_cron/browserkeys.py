"""The browser keys of ``[gateway]``: ``allowed_hosts``, ``public_url``, ``allowed_origins``
(checked when the file is read; gateway/origin.py applies them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError


def check_browser_keys(config: Any) -> None:
    """``allowed_hosts``: bare names or addresses; ``public_url`` and ``allowed_origins``:
    http(s) URLs with a host (``allowed_origins`` without a path)."""
    for host in config.allowed_hosts:
        bare = host.strip()
        if bare.startswith("[") and bare.endswith("]"):
            bare = bare[1:-1]
        if not bare or any(c in bare for c in "/@ *?#") or (":" in bare and bare.count(":") < 2):
            raise ConfigError(
                f"allowed_hosts: {host!r} is not a host name: give names or addresses without "
                'scheme, port or wildcard, e.g. ["cron.example.com", "127.0.0.1"]'
            )
    if config.public_url and not _web_url(config.public_url):
        raise ConfigError(
            f"public_url: {config.public_url!r} must be an http:// or https:// URL with a host, "
            'e.g. "https://cron.example.com"'
        )
    for origin in config.allowed_origins:
        if not _web_url(origin) or urlsplit(origin).path not in ("", "/"):
            raise ConfigError(
                f'allowed_origins: {origin!r} must be an origin like "https://host[:port]" '
                "(scheme, host and port only)"
            )


def _web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
