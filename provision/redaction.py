"""What must never be shown: credentials, found by structure rather than by one regex.

- in any text: the userinfo of every URL (`scheme://user:pass@host`, `scheme://token@host`), and
  `password=`/`--password X`/`token: X`-style pairs;
- in JSON-like data (daemon.json, facts, plans): every value under a key that names a secret
  (password, passwd, secret, token, auth, credential, api key, private key), and the text rules
  inside every string (so `proxies.http-proxy` URLs lose their userinfo).

Used by every place that shows host-side content: --check plans and diffs, --json, facts, step
messages. A redacted value is replaced by MASK; nothing else about the document changes.
"""

from __future__ import annotations

import json
import re
from typing import Any

MASK = "********"

_SENSITIVE_KEY = re.compile(r"pass(word|wd|phrase)?$|secret|token|^auth$|authorization|credential|api[-_]?key"
                            r"|private[-_]?key|identitytoken", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s?#'\"]+)@")
_PAIR = re.compile(r"(?P<key>(?:--(?:password|passwd|token|secret|api[-_]?key)(?:=|\s+))"
                   r"|(?:\b(?:password|passwd|token|secret|api[-_]?key)\s*[=:]\s*))"
                   r"(?!'?<[^>\s]*>'?)(?P<value>'[^']*'|\"[^\"]*\"|[^\s'\"]+)", re.I)  # <placeholders> stay


def redact_text(text: str) -> str:
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}***:***@", text)
    return _PAIR.sub(lambda m: f"{m.group('key')}{MASK}", text)


def is_sensitive_key(key: str) -> bool:
    return bool(_SENSITIVE_KEY.search(str(key)))


def redact_value(value: Any) -> Any:
    """A copy of JSON-like data with secret-named keys masked and credentials in strings removed."""
    if isinstance(value, dict):
        return {k: (MASK if is_sensitive_key(k) and not isinstance(v, (dict, list)) and v not in (None, "")
                    else redact_value(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def holds_secrets(value: Any) -> bool:
    """Whether redaction would change this data: such files are written 0600."""
    return redact_value(value) != value


def redact_json_text(text: str | None) -> str | None:
    """A JSON document with its secrets masked (same layout as daemon.json's renderer); other text by the
    text rules."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return redact_text(text)
    if not holds_secrets(value):
        return text
    return json.dumps(redact_value(value), indent=2, sort_keys=True) + "\n"


_INLINE_CONTENT = re.compile(r"printf %s '?(?P<data>[A-Za-z0-9+/=]+)'? \| base64 -d")


def describe_command(command: str) -> str:
    """A command as --check and --json show it: file contents written inline (commands/files.py) become
    `<N bytes, sha256 …>`, and credentials are removed."""
    import base64
    import hashlib

    def digest(match: re.Match) -> str:
        try:
            data = base64.b64decode(match.group("data"), validate=True)
        except ValueError:
            return "<contents>"
        return f"<{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}…>"

    return redact_text(_INLINE_CONTENT.sub(digest, command))
