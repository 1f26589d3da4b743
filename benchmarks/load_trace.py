"""What a Chromium page and the server say to each other, and what the page's own work costs,
timed in the page: for the ``views`` and ``storm`` scenarios of ``load_test.py``.

``WireTrace(page)`` (made before the page opens the lab) wraps the page's WebSocket so that
every Streamlit message in or out is stamped with ``performance.now()`` when the page's main
thread handles it, and a ``PerformanceObserver`` records the page's long tasks (its main
thread busy for 50 ms or more: parsing, React and plotly drawing). ``runs(since)`` decodes the
messages (Streamlit's ForwardMsg and BackMsg protobufs) into script runs as the page saw them:
asked at, first element at, finished at, bytes and elements, and the long tasks meanwhile.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

SMALL = 4096  # messages up to this many bytes are kept whole (run ends, rerun requests)

_INIT_JS = """
(() => {
  const wire = window.__wire = [], busy = window.__busy = [];
  const small = __SMALL__;
  const keep = (dir, data) => {
    const bytes = new Uint8Array(data);
    let b64 = '';
    if (bytes.length <= small || dir === 'out') {
      let s = ''; for (const b of bytes) s += String.fromCharCode(b); b64 = btoa(s);
    } else {  // a large message: its first bytes say what it is
      let s = ''; for (const b of bytes.subarray(0, 64)) s += String.fromCharCode(b); b64 = btoa(s);
    }
    wire.push([performance.now(), dir, bytes.length, b64]);
  };
  const Real = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Real(...args);
    ws.binaryType = 'arraybuffer';
    const send = ws.send.bind(ws);
    ws.send = d => { try { keep('out', d); } catch (e) {} return send(d); };
    ws.addEventListener('message', e => { if (e.data instanceof ArrayBuffer) keep('in', e.data); });
    return ws;
  };
  window.WebSocket.prototype = Real.prototype;
  Object.assign(window.WebSocket, Real);
  try {
    new PerformanceObserver(l => {
      for (const e of l.getEntries()) busy.push([e.startTime, e.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (e) {}
})();
""".replace("__SMALL__", str(SMALL))


@dataclass
class Run:
    """One script run as the page saw it (times in ms of the page's ``performance.now()``)."""

    asked: float
    fragment: bool  # a fragment's rerun (the live views), not the whole page's
    first: float | None = None  # its first element arrived
    finished: float | None = None  # its script_finished arrived
    status: str = ""  # how it finished, e.g. FINISHED_FRAGMENT_RUN_SUCCESSFULLY
    bytes: int = 0  # what the server sent for it
    elements: int = 0
    cached: int = 0  # elements sent as a reference to a message the page has cached
    hashes: int = 0  # messages the page said it has cached, when it asked
    busy_ms: float = 0.0  # the page's long tasks from asked to finished

    @property
    def ms(self) -> float | None:
        return None if self.finished is None else self.finished - self.asked


@dataclass
class WireTrace:
    page: Any
    read: int = 0  # messages already decoded
    _runs: list[Run] = field(default_factory=list)
    _orphans: int = 0  # server messages with no run asked for (the first page load)

    def __post_init__(self) -> None:
        self.page.add_init_script(_INIT_JS)

    def now(self) -> float:
        """The page's clock, ms."""
        return float(self.page.evaluate("performance.now()"))

    def _update(self) -> list[tuple[float, float]]:
        wire, busy = self.page.evaluate(f"[window.__wire.slice({self.read}), window.__busy]")
        self.read += len(wire)
        for t, direction, size, b64 in wire:
            self._message(t, direction, size, base64.b64decode(b64))
        return [(float(s), float(d)) for s, d in busy]

    def _message(self, t: float, direction: str, size: int, data: bytes) -> None:
        if direction == "out":
            back = BackMsg()
            try:
                back.ParseFromString(data)
            except Exception:  # not one of Streamlit's messages
                return
            if back.WhichOneof("type") == "rerun_script":
                rerun = back.rerun_script
                self._runs.append(
                    Run(t, bool(rerun.fragment_id), hashes=len(rerun.cached_message_hashes))
                )
            return
        run = next((r for r in self._runs if r.finished is None), None)  # the server's order
        if run is None:
            self._orphans += 1
            return
        run.bytes += size
        if size > SMALL:  # only deltas are this large
            run.first, run.elements = run.first or t, run.elements + 1
            return
        msg = ForwardMsg()
        try:
            msg.ParseFromString(data)
        except Exception:  # cut short: not decodable
            return
        kind = msg.WhichOneof("type")
        if kind in ("delta", "ref_hash"):
            run.first, run.elements = run.first or t, run.elements + 1
            run.cached += kind == "ref_hash"
        elif kind == "script_finished":
            run.finished = t
            run.status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)

    def runs(self, since: float = 0.0) -> list[Run]:
        """The runs asked for at or after ``since`` (page ms), oldest first, with the page's
        long tasks meanwhile."""
        busy = self._update()
        out = [r for r in self._runs if r.asked >= since]
        for r in out:
            end = r.finished if r.finished is not None else float("inf")
            r.busy_ms = sum(max(0.0, min(s + d, end) - max(s, r.asked)) for s, d in busy if s < end)
        return out
