"""Problems of a stack file as one ``FILE:LINE: PATH: problem`` line (exit 4).

``PATH`` is the dotted path of the value (``services.app.ports[0]``), ``LINE`` where the loaded YAML
had it; pydantic's first validation error is reworded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from provision.config.positioned_yaml import type_name
from provision.deploy.stack.yaml_source import Loc, line_at
from provision.errors import InputError

__all__ = ["TYPE_WORDS", "dotted", "located", "pydantic_error", "short_repr"]


def dotted(loc: Loc) -> str:
    """``("services", "app", "ports", 0)`` → ``services.app.ports[0]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def located(message: str, loc: Loc, raw: Any, path: Path, *, line_loc: Loc | None = None) -> InputError:
    """``PATH: message`` at the line of ``line_loc`` (default ``loc``) in the loaded YAML."""
    prefix = f"{dotted(loc)}: " if loc else ""
    line = line_at(raw, loc if line_loc is None else line_loc)
    return InputError(prefix + message, file=path, line=line or 1)


TYPE_WORDS = {"model_type": "a mapping", "dict_type": "a mapping", "list_type": "a list",
               "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
               "int_from_float": "an integer", "float_type": "a number", "float_parsing": "a number",
               "bool_type": "true or false", "bool_parsing": "true or false"}


def pydantic_error(exc: ValidationError, raw: Any, path: Path) -> InputError:
    """The first validation problem as one ``FILE:LINE: PATH: problem`` line."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "["))))
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return located(f"unknown key '{loc[-1]}'", loc[:-1], raw, path, line_loc=loc)
    if kind == "missing":
        return located(f"missing required key '{loc[-1]}'", loc[:-1], raw, path)
    if kind in TYPE_WORDS:
        got = "null" if value is None else f"{type_name(value)} {short_repr(value)}"
        return located(f"expected {TYPE_WORDS[kind]}, got {got}", loc, raw, path)
    message = error["msg"].removeprefix("Value error, ")
    if kind not in ("value_error", "assertion_error"):
        message = f"{message[0].lower()}{message[1:]}, got {short_repr(value)}"
    return located(message, loc, raw, path)


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
