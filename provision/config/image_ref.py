"""Docker image references, checked against Docker's own grammar before anything is contacted."""

from __future__ import annotations

import re

__all__ = ["IMAGE_RE", "check_image_reference"]

# Docker's image reference grammar (github.com/distribution/reference, regexp.go).
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REPOSITORY = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"\w[\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_RE = re.compile(rf"({_REPOSITORY})(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)


def check_image_reference(value: str) -> str:
    """An image reference as Docker parses it (``[registry[:port]/]path[:tag][@digest]``)."""
    match = IMAGE_RE.fullmatch(value)
    if not match or len(match.group(1)) > 255:
        raise ValueError(f"invalid image reference {value!r} (Docker's form: [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST], "
                         "the name in lowercase, the tag at most 128 letters, digits, '_', '.' or '-')")
    return value
