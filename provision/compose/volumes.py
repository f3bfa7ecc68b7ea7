"""Service volumes: the short syntax read as Compose's volume-spec parser reads it, and the long
syntax (bind, volume, tmpfs), printed as ``docker compose config`` prints them."""

from __future__ import annotations

from typing import Any

from provision.compose.values import FileContext, as_bool, as_bytes, as_int, as_text

__all__ = ["parse_volume"]


def parse_volume(ctx: FileContext, where: tuple[Any, ...], item: Any) -> dict:
    """One ``volumes:`` entry in the long syntax, a bind source made absolute."""
    if isinstance(item, dict):
        kind = as_text(item.get("type") or "volume")
        if kind not in ("bind", "volume", "tmpfs"):
            raise ctx.fail(where + ("type",), f"volume type {kind!r} is not supported by provision "
                           "(bind, volume and tmpfs are)")
        if not item.get("target"):
            raise ctx.fail(where, "a long-syntax volume needs a target")
        mount: dict[str, Any] = {"type": kind}
        source = item.get("source")
        if source not in (None, ""):
            mount["source"] = ctx.path(as_text(source)) if kind == "bind" else as_text(source)
        mount["target"] = as_text(item["target"])
        if item.get("read_only") is not None and as_bool(ctx, where + ("read_only",), item["read_only"]):
            mount["read_only"] = True
        if kind == "bind":
            bind = dict(item.get("bind") or {})
            options: dict[str, Any] = {}
            if bind.get("propagation"):
                options["propagation"] = as_text(bind["propagation"])
            create = bind.get("create_host_path")
            if create is not None and as_bool(ctx, where + ("bind", "create_host_path"), create):
                options["create_host_path"] = True  # false is left out, as Compose prints it
            if bind.get("selinux"):
                options["selinux"] = as_text(bind["selinux"])
            if options or item.get("bind") is not None:
                mount["bind"] = options
        elif kind == "volume" and item.get("volume") is not None:
            options = {}
            vol = dict(item.get("volume") or {})
            if vol.get("nocopy") is not None:
                options["nocopy"] = as_bool(ctx, where + ("volume", "nocopy"), vol["nocopy"])
            if vol.get("subpath"):
                options["subpath"] = as_text(vol["subpath"])
            mount["volume"] = options
        elif kind == "tmpfs":
            tmp = dict(item.get("tmpfs") or {})
            options = {}
            if tmp.get("size") is not None:
                options["size"] = as_bytes(ctx, where + ("tmpfs", "size"), tmp["size"])
            if tmp.get("mode") is not None:
                options["mode"] = as_int(ctx, where + ("tmpfs", "mode"), tmp["mode"])
            if options:
                mount["tmpfs"] = options
        return mount
    if not isinstance(item, str):
        raise ctx.fail(where, f"invalid volume {item!r}")
    try:
        mount = _short_volume(item)
    except ValueError as exc:
        raise ctx.fail(where, f"invalid volume {item!r}: {exc} (expected [SOURCE:]TARGET[:MODE])") from None
    if mount["type"] == "bind":
        mount["source"] = ctx.path(mount["source"])
    return mount


_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_SELINUX = ("z", "Z")


def _windows_drive(buffer: str, char: str) -> bool:
    return char == ":" and len(buffer) == 1 and buffer.isalpha()


def _is_file_path(source: str) -> bool:
    if not source:
        return False
    if source[0] in ".~/" or source.startswith("\\\\"):
        return True
    return len(source) > 1 and _windows_drive(source[0], source[1])


def _short_volume(spec: str) -> dict[str, Any]:
    """``[SOURCE:]TARGET[:OPTIONS]`` the way Compose's volume-spec parser reads it (colons inside
    ``${...}`` and after a Windows drive letter do not split; unknown options are ignored).
    Raises ValueError."""
    if not spec:
        raise ValueError("empty volume spec")
    if len(spec) <= 2:
        return {"type": "volume", "target": spec}
    fields: dict[str, str] = {}
    read_only = False
    nocopy = False
    bind: dict[str, Any] = {}
    buffer = ""
    depth = 0
    end = "\0"
    text = spec + end
    for index, char in enumerate(text):
        if char == "$" and text[index + 1: index + 2] == "{":
            depth += 1
            buffer += char
            continue
        if char == "}" and depth:
            depth -= 1
            buffer += char
            continue
        if _windows_drive(buffer, char):
            buffer += char
        elif (char == ":" or index == len(spec)) and not depth:
            if not buffer:
                raise ValueError("empty section between colons")
            if "source" not in fields and index >= len(spec):
                fields["target"] = buffer
            elif "source" not in fields:
                fields["source"] = buffer
            elif "target" not in fields:
                fields["target"] = buffer
            elif char == ":":
                raise ValueError("too many colons")
            else:
                for option in buffer.split(","):
                    if option == "ro":
                        read_only = True
                    elif option == "rw":
                        read_only = False
                    elif option == "nocopy":
                        nocopy = True
                    elif option in _PROPAGATIONS:
                        bind["propagation"] = option
                    elif option in _SELINUX:
                        bind["selinux"] = option
            buffer = ""
        else:
            buffer += char
    source = fields.get("source", "")
    mount: dict[str, Any] = {"type": "bind" if _is_file_path(source) else "volume"}
    if source:
        mount["source"] = source
    mount["target"] = fields.get("target", "")
    if read_only:
        mount["read_only"] = True
    if mount["type"] == "bind":
        mount["bind"] = {**bind, "create_host_path": True}
        if nocopy:
            mount["volume"] = {"nocopy": True}
    else:
        if bind:
            mount["bind"] = bind
        mount["volume"] = {"nocopy": True} if nocopy else {}
    return mount
