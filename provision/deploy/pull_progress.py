"""How far an image pull is, from the engine's streamed pull events (`client.api.pull(..., stream=True,
decode=True)`): the compressed bytes of the layers downloaded so far, of the layers' total. Pure: events in,
(done, total) out; the caller reports them (provision.progress).

The engine streams, per layer (`id`): `Pulling fs layer`, `Waiting`, `Downloading` with
`progressDetail: {current, total}` (bytes of the compressed layer), `Verifying Checksum`, `Download complete`,
`Extracting` (bytes of the layer as unpacked: not counted), `Pull complete`; or `Already exists` (nothing to
download). A layer's total is known from its first `Downloading` event, so the total grows while layers start;
it is None until one has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_DONE = ("Download complete", "Pull complete")


@dataclass
class PullProgress:
    current: dict[str, int] = field(default_factory=dict)  # layer id → bytes downloaded
    totals: dict[str, int] = field(default_factory=dict)  # layer id → compressed size

    def feed(self, event: dict) -> None:
        layer = event.get("id")
        status = event.get("status") or ""
        if not isinstance(layer, str) or not isinstance(status, str):
            return
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and isinstance(detail, dict):
            total, current = detail.get("total"), detail.get("current")
            if isinstance(total, int) and total > 0:
                self.totals[layer] = total
            if isinstance(current, int):
                self.current[layer] = max(current, self.current.get(layer, 0))
        elif status.startswith(_DONE) and layer in self.totals:
            self.current[layer] = self.totals[layer]

    @property
    def done(self) -> int:
        return sum(self.current.values())

    @property
    def total(self) -> int | None:
        return sum(self.totals.values()) or None
