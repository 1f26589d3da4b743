"""A browserless Streamlit page: the websocket conversation a browser tab has with the server,
without the rendering. ``load_classroom.py`` uses it for a classroom's watchers, for the
students after the first (who open the lab, choose a view and press Start) and, with
``--teacher-client protocol``, for the teacher (who starts a run and shares it).

    python benchmarks/st_client.py "http://127.0.0.1:8501/?watch=TOKEN" --pages 3 --seconds 20
    python benchmarks/st_client.py "http://127.0.0.1:8501/?hidden=16&steps=10" --press Start

In a real classroom every watcher's and student's browser runs on its own laptop: what the
server bears is the protocol traffic (the reruns a page asks for, the messages sent back) and
the students' training jobs, not the drawing of the charts. A headless Chromium per page on the
load test's machine spends the cores the server needs; this client makes the server do what a
page makes it do, and measures its own CPU apart.

How it speaks the protocol (read from streamlit 1.67's server, ``web/server/starlette`` and
``runtime/app_session.py``, and from the frontend bundle it serves, ``static/static/js/``):

- connecting: GET ``/_stcore/health`` and ``/_stcore/host-config`` first, as the frontend's
  pings do (the health answer sets the ``_streamlit_xsrf`` cookie); then the websocket at
  ``/_stcore/stream`` with subprotocols ``streamlit, <that cookie>`` (the frontend passes its
  tokens in Sec-WebSocket-Protocol), the cookie, and the page's Origin. Like a browser it never
  pings (the server does), offers permessage-deflate, and reads every frame as it comes.
- the first message: a ``rerun_script`` BackMsg with the page's query string (``watch=TOKEN``,
  or a lab's settings such as ``hidden=16&steps=10``), no page hash yet, the browser context
  (time zone, locale, URL, colour scheme) and the hashes of the messages it has cached. Later
  reruns send the page hash from ``new_session`` (or ``navigation``) and the query string from
  the last ``page_info_changed``.
- widget states (``runtime/state/session_state.py``): the server keeps every widget's value
  itself (each rerun first moves the values into its old state, and a widget whose value did
  not come with the rerun takes it from there), and it runs the callbacks of the widgets whose
  incoming value differs from the kept one. So a rerun carries only the values this page set,
  not the defaults and URL values a browser echoes back (equal to the kept ones, they change
  nothing). The values it set go with every later rerun, as the frontend's
  ``WidgetStateManager`` sends all it holds: a rerun that arrives while another is pending is
  merged into it (``script_requests._coalesce_widget_states``), the newer message's values
  replacing the older's, triggers excepted, so a value sent once could be lost to a
  ``run_every`` rerun that came right after it. A held value is dropped when its widget leaves
  the page, or when the server sets the widget's value itself.
- pressing a button (``press``): the frontend's ``setTriggerValue``, a rerun whose widget
  states add ``trigger_value = True`` for the button's id (from the ``button`` element in the
  deltas: its ``id`` and ``label``), of the button's fragment when it lies in one (else of the
  page). The trigger is not held (the frontend deletes it once sent, and the server resets
  triggers after each run), so no later rerun presses it again. A disabled button is not
  pressed. Choosing an option of a segmented control (``choose``) holds a
  ``string_array_value`` with the option's text (the ``button_group`` element's ``id``,
  ``label`` and options) and reruns its fragment.
- the message cache: a message the server marks ``cacheable`` is kept under its hash; its hash is
  offered with every rerun, and a ``ref_hash`` message is replaced by the kept one (a miss ends
  the page, as it does the frontend's connection). After each finished run the cache ages by one
  run (only the run's fragments' messages on a fragment run) and drops what is older than the
  ``max_cached_message_age`` of the first ``new_session``.
- ``auto_rerun`` (a fragment's ``run_every``): one repeating timer per fragment id, which sends a
  rerun BackMsg for that fragment (``is_auto_rerun``) every interval, as the frontend's
  ``setInterval`` does, whether or not the last one finished (the server folds a fragment rerun
  that arrives while one is waiting into it). The same interval again leaves the timer running,
  a new one replaces it, a full run's ``new_session`` and ``stop_auto_rerun`` cancel timers, and
  a message without a fragment id is ignored: so reruns never pile up beyond what a browser
  sends.
- the page: elements by delta path, tagged with their run and fragment; a finished run drops the
  elements it did not redraw, as the frontend's ``clearStaleNodes`` does. Kept for the load
  test: the metrics labelled "Step" (and when its value changed) and "State", the text of the
  code blocks (the teacher's watch link), the torch threads that the job's status caption
  names ("CPU (2 threads)"), the exception and error boxes (shown now, and received in all),
  reruns sent, runs finished, bytes and messages received; and the buttons and segmented
  controls, to press and choose.
  Messages that only change the browser's chrome (page config, logo, status, git info) are read
  and set aside.

``ProtocolClient`` runs many pages in one asyncio loop in a child process (``--serve``), driven
by JSON lines on its stdin, in named groups (the load test's "teacher", "watchers" and
"students"): their CPU is measured apart from the browser's and the server's, and their parsing
does not compete with the load test's threads for the GIL. Times are ``time.monotonic()``,
which the load test's process shares. Traffic goes to the given host only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Markdown_pb2 import Markdown
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

XSRF_COOKIE = "_streamlit_xsrf"
NO_TOKEN = "PLACEHOLDER_AUTH_TOKEN"  # what the frontend offers when it has no XSRF cookie
GOING_AWAY = 1001  # the close code of a browser tab that closes
CONNECT_S = 30.0  # pings and websocket handshake, each
ERROR_KINDS = frozenset({"exception", "alert.ERROR"})
WIDGET_KINDS = frozenset({"button", "button_group"})  # what press and choose act on
READ_METRICS = frozenset({"Step", "State"})  # the metrics the load test reads
CAPTION = f"markdown.{Markdown.Type.Name(Markdown.CAPTION)}"  # an st.caption element's kind
THREADS = re.compile(r"CPU \((\d+) threads?\)")  # the job's device in its status caption
FINISHED_RUNS = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)


class ProtocolError(Exception):
    """The server sent what the frontend would give up on (say, a reference to a cached
    message it never sent)."""


@dataclass
class Seen:
    """What one page shows and did; it crosses the pipe as JSON."""

    step: int | None = None  # the "Step" metric as shown now
    state: str | None = None  # the "State" metric as shown now ("running", "queued (#2)", ...)
    codes: list[str] = field(default_factory=list)  # the code blocks' text shown now
    threads: int | None = None  # the torch threads the job's status caption names now
    step_changes: list[tuple[float, int]] = field(default_factory=list)  # (monotonic s, step)
    exceptions: int = 0  # exception boxes shown now
    error_boxes: int = 0  # st.error boxes shown now
    errors_received: int = 0  # exception and error elements received in all
    interval: float | None = None  # the last run_every the server gave a fragment, s
    reruns_sent: int = 0
    full_runs: int = 0  # runs finished, whole page
    fragment_runs: int = 0  # runs finished, fragments only (a watcher's redraws)
    messages: int = 0
    bytes_received: int = 0
    cache_hits: int = 0  # ref_hash messages answered from the cache
    failure: str = ""  # why the page is gone; "" while it is connected or closed by us


@dataclass
class _Node:
    """An element or block on the page, as the frontend's element tree holds it."""

    kind: str  # element type ("metric", "button", "alert.ERROR", "markdown.CAPTION", ...)
    run_id: str  # or "block"
    fragment_id: str
    label: str = ""
    body: str = ""  # a metric's value, a code block's or a caption's text
    widget_id: str = ""  # a button's or segmented control's id
    disabled: bool = False
    options: tuple[str, ...] = ()  # a segmented control's options, as shown


@dataclass
class _Cached:
    data: bytes
    run_count: int  # the page's run count when it was last used
    fragment_id: str


class Page:
    """One browser tab's conversation with the server, from connecting to closing."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)  # a page at the app's root: http://host:port/?query
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.stream = f"ws://{parts.netloc}/_stcore/stream"
        self.query = parts.query
        self.seen = Seen()
        self.ws: ClientConnection | None = None
        self.closing = False
        self.page_hash = ""
        self.run_id = ""
        self.max_age: int | None = None  # from the first new_session
        self.new_session_since_rerun = False
        self.run_count = 0
        self.cache: dict[str, _Cached] = {}
        self.nodes: dict[tuple[int, ...], _Node] = {}
        self.timers: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self.widgets: dict[str, WidgetState] = {}  # the values this page set, by widget id

    async def run(self) -> None:
        """Connect, ask for the page, and take the server's messages until the page closes."""
        try:
            token = await asyncio.to_thread(init_pings, self.origin)
            async with connect(
                self.stream,
                subprotocols=[Subprotocol("streamlit"), Subprotocol(token or NO_TOKEN)],
                origin=Origin(self.origin),
                additional_headers={"Cookie": f"{XSRF_COOKIE}={token}"} if token else None,
                user_agent_header="gru-lab-load-test st_client",
                proxy=None,
                open_timeout=CONNECT_S,
                ping_interval=None,
                max_size=None,
                max_queue=None,
            ) as ws:
                self.ws = ws
                await self.rerun()
                async for data in ws:
                    if isinstance(data, str):
                        raise ProtocolError("a text frame (Streamlit sends binary protobufs)")
                    self.receive(data)
            if not self.closing:
                self.seen.failure = "the server closed the connection"
        except ConnectionClosed as exc:
            if not self.closing:
                self.seen.failure = f"connection lost: {exc}"
        except Exception as exc:  # a failed page is counted, the others go on
            self.seen.failure = f"{type(exc).__name__}: {exc}"
        finally:
            self.stop_timers()

    async def close(self) -> None:
        """Close the tab: no more reruns, and the close frame a browser sends."""
        self.closing = True
        self.stop_timers()
        if self.ws is not None:
            await self.ws.close(GOING_AWAY)

    # what the page sends
    async def rerun(self, fragment_id: str = "", auto: bool = False, trigger: str = "") -> None:
        """The frontend's ``sendRerunBackMsg``: with the widget values this page set, and the
        ``trigger_value`` of the button whose id is ``trigger``, if any."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.widget_states.SetInParent()
        state.widget_states.widgets.extend(self.widgets.values())
        if trigger:
            state.widget_states.widgets.add(id=trigger, trigger_value=True)
        state.page_script_hash = self.page_hash
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        state.cached_message_hashes.extend(self.cache)
        context = state.context_info
        context.timezone, context.timezone_offset, context.locale = "UTC", 0, "en-US"
        context.url = f"{self.origin}/?{self.query}" if self.query else f"{self.origin}/"
        context.is_embedded, context.color_scheme = False, "light"
        self.new_session_since_rerun = False
        self.seen.reruns_sent += 1
        assert self.ws is not None
        await self.ws.send(msg.SerializeToString())

    async def press(self, label: str) -> bool:
        """Click the enabled button labelled ``label`` (the frontend's ``setTriggerValue``);
        False when the page shows none, or is not connected."""
        node = self.widget("button", label)
        if node is None or self.ws is None:
            return False
        await self.rerun(node.fragment_id, trigger=node.widget_id)
        return True

    async def choose(self, label: str, option: str) -> bool:
        """Choose ``option`` in the enabled segmented control labelled ``label``; False when
        the page shows no such control or option, or is not connected."""
        node = self.widget("button_group", label)
        if node is None or option not in node.options or self.ws is None:
            return False
        held = WidgetState(id=node.widget_id)
        held.string_array_value.data.append(option)
        self.widgets[node.widget_id] = held
        await self.rerun(node.fragment_id)
        return True

    def widget(self, kind: str, label: str) -> _Node | None:
        """The first enabled widget of ``kind`` labelled ``label`` on the page now."""
        return next(
            (
                node
                for _, node in sorted(self.nodes.items())
                if node.kind == kind and node.label == label and not node.disabled
            ),
            None,
        )

    async def tick(self, fragment_id: str, interval: float) -> None:
        """``setInterval``: a rerun of the fragment every ``interval`` seconds."""
        try:
            while True:
                await asyncio.sleep(interval)
                await self.rerun(fragment_id, auto=True)
        except ConnectionClosed:  # the receiving side records why
            return

    def stop_timers(self, fragment_ids: list[str] | None = None) -> None:
        for fragment_id in list(self.timers) if fragment_ids is None else fragment_ids:
            entry = self.timers.pop(fragment_id, None)
            if entry is not None:
                entry[1].cancel()

    # what the page receives
    def receive(self, data: bytes) -> None:
        self.seen.messages += 1
        self.seen.bytes_received += len(data)
        msg = self.resolve(ForwardMsg.FromString(data), data)
        kind = msg.WhichOneof("type")
        handler = {
            "new_session": self.on_new_session,
            "delta": self.on_delta,
            "script_finished": self.on_script_finished,
            "page_info_changed": self.on_page_info,
            "navigation": self.on_navigation,
            "auto_rerun": self.on_auto_rerun,
            "stop_auto_rerun": self.on_stop_auto_rerun,
            "session_event": self.on_session_event,
        }.get(kind or "")
        if handler is not None:  # the rest change the browser's chrome (title, logo, status
            handler(msg)  # widget) or answer requests this client never makes

    def resolve(self, msg: ForwardMsg, data: bytes) -> ForwardMsg:
        """The frontend's ``ForwardMsgCache.processMessagePayload``."""
        if msg.WhichOneof("type") == "ref_hash":
            entry = self.cache.get(msg.ref_hash)
            if entry is None:
                raise ProtocolError(f"cached message {msg.ref_hash} is not in the cache")
            entry.run_count = self.run_count
            self.seen.cache_hits += 1
            full = ForwardMsg.FromString(entry.data)
            full.metadata.CopyFrom(msg.metadata)
            return full
        if msg.metadata.cacheable and msg.hash:
            entry = self.cache.get(msg.hash)
            if entry is not None:
                entry.run_count = self.run_count
            else:
                self.cache[msg.hash] = _Cached(data, self.run_count, msg.delta.fragment_id)
        return msg

    def on_new_session(self, msg: ForwardMsg) -> None:
        self.new_session_since_rerun = True
        if self.max_age is None:
            self.max_age = msg.new_session.config.max_cached_message_age
        self.run_id = msg.metadata.run.script_run_id
        if not msg.metadata.run.fragment_ids:  # a full run: timers start afresh
            self.stop_timers()
            self.page_hash = msg.new_session.page_script_hash

    def on_delta(self, msg: ForwardMsg) -> None:
        delta, path = msg.delta, tuple(msg.metadata.delta_path)
        what = delta.WhichOneof("type")
        if what == "add_block":
            node = _Node("block", self.run_id, delta.fragment_id)
        elif what == "new_element":
            node = self.element(delta.new_element, delta.fragment_id)
            self.seen.errors_received += node.kind in ERROR_KINDS
        else:  # a transient (spinner, toast): not part of what the load test reads
            return
        old, self.nodes[path] = self.nodes.get(path), node
        if watched(node) or (old is not None and watched(old)):
            self.show()

    def element(self, element: Any, fragment_id: str) -> _Node:
        kind = element.WhichOneof("type") or ""
        if kind == "alert":
            kind = f"alert.{Alert.Format.Name(element.alert.format)}"
        elif kind == "markdown":
            kind = f"markdown.{Markdown.Type.Name(element.markdown.element_type)}"
        node = _Node(kind, self.run_id, fragment_id)
        if kind == "metric":
            node.label, node.body = element.metric.label, element.metric.body
        elif kind == "code":
            node.body = element.code.code_text
        elif kind == CAPTION:
            node.body = element.markdown.body
        elif kind in WIDGET_KINDS:
            widget = getattr(element, kind)
            node.label, node.widget_id, node.disabled = widget.label, widget.id, widget.disabled
            if kind == "button_group":
                node.options = tuple(option.content for option in widget.options)
                if widget.set_value:  # the server's value stands: hold none of ours
                    self.widgets.pop(widget.id, None)
        return node

    def on_script_finished(self, msg: ForwardMsg) -> None:
        status = msg.script_finished
        run = msg.metadata.run if msg.metadata.HasField("run") else None
        if status in FINISHED_RUNS:
            fragment_run = status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
            self.seen.fragment_runs += fragment_run
            self.seen.full_runs += not fragment_run
            if run is not None and (run.fragment_ids or run.script_run_id == self.run_id):
                self.clear_stale(run.script_run_id, list(run.fragment_ids))
        if (
            run is not None
            and status != ForwardMsg.FINISHED_EARLY_FOR_RERUN
            and self.max_age is not None
            and self.new_session_since_rerun
        ):
            self.age_cache(list(run.fragment_ids))

    def clear_stale(self, run_id: str, fragment_ids: list[str]) -> None:
        """Drop what this run did not draw again (on a fragment run, inside its fragments)."""
        self.nodes = {
            path: node
            for path, node in self.nodes.items()
            if node.run_id == run_id or (fragment_ids and node.fragment_id not in fragment_ids)
        }
        shown = {node.widget_id for node in self.nodes.values()}
        self.widgets = {k: v for k, v in self.widgets.items() if k in shown}
        self.show()

    def age_cache(self, fragment_ids: list[str]) -> None:
        """The frontend's ``ForwardMsgCache.incrementRunCount``."""
        self.run_count += 1
        assert self.max_age is not None
        for key, entry in list(self.cache.items()):
            if fragment_ids and entry.fragment_id not in fragment_ids:
                continue
            if self.run_count - entry.run_count > self.max_age:
                del self.cache[key]

    def on_page_info(self, msg: ForwardMsg) -> None:
        self.query = msg.page_info_changed.query_string

    def on_navigation(self, msg: ForwardMsg) -> None:
        self.page_hash = msg.navigation.page_script_hash

    def on_auto_rerun(self, msg: ForwardMsg) -> None:
        fragment_id, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
        if not fragment_id:  # 1.67's frontend ignores a page-level one
            return
        self.seen.interval = interval
        current = self.timers.get(fragment_id)
        if current is not None and current[0] == interval:
            return
        self.stop_timers([fragment_id])
        self.timers[fragment_id] = (interval, asyncio.create_task(self.tick(fragment_id, interval)))

    def on_stop_auto_rerun(self, msg: ForwardMsg) -> None:
        self.stop_timers(list(msg.stop_auto_rerun.fragment_ids))

    def on_session_event(self, msg: ForwardMsg) -> None:
        if msg.session_event.WhichOneof("type") == "script_compilation_exception":
            self.seen.errors_received += 1

    def show(self) -> None:
        """Update what the load test reads from the elements on the page now."""
        kinds = [node.kind for node in self.nodes.values()]
        self.seen.exceptions = kinds.count("exception")
        self.seen.error_boxes = kinds.count("alert.ERROR")
        body = self.metric("Step")
        step = parse_int(body) if body is not None else None
        if step is not None and step != self.seen.step:
            self.seen.step_changes.append((time.monotonic(), step))
        self.seen.step = step
        self.seen.state = self.metric("State")
        shown = [node for _, node in sorted(self.nodes.items())]
        self.seen.codes = [node.body for node in shown if node.kind == "code"]
        found = (THREADS.search(node.body) for node in shown if node.kind == CAPTION)
        self.seen.threads = next((int(m.group(1)) for m in found if m), None)

    def metric(self, label: str) -> str | None:
        """The value of the first metric labelled ``label`` on the page now."""
        nodes = (node for _, node in sorted(self.nodes.items()) if node.kind == "metric")
        return next((node.body for node in nodes if node.label == label), None)


def watched(node: _Node) -> bool:
    """Whether the load test reads this element: the Step and State metrics, an error, a code
    block, the job's status caption."""
    return (
        (node.kind == "metric" and node.label in READ_METRICS)
        or node.kind in ERROR_KINDS
        or node.kind == "code"
        or (node.kind == CAPTION and "CPU (" in node.body)
    )


def parse_int(text: str) -> int | None:
    try:
        return int(text.replace(",", ""))
    except ValueError:
        return None


def init_pings(origin: str) -> str | None:
    """The frontend's pings before it connects; the XSRF cookie the health answer sets (None
    when the server has XSRF protection off)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with opener.open(f"{origin}/_stcore/health", timeout=CONNECT_S) as answer:
        answer.read()
        cookies = SimpleCookie(answer.headers.get("Set-Cookie", ""))
    with opener.open(f"{origin}/_stcore/host-config", timeout=CONNECT_S) as answer:
        answer.read()
    return cookies[XSRF_COOKIE].value if XSRF_COOKIE in cookies else None


# -- many pages in one loop, driven over a pipe ---------------------------------------------
class Pages:
    """The pages one client process holds, in named groups, and the requests it answers."""

    def __init__(self) -> None:
        self.groups: dict[str, list[tuple[Page, asyncio.Task[None]]]] = {}

    def open(self, url: str, count: int, group: str) -> dict[str, Any]:
        pages = self.groups.setdefault(group, [])
        for _ in range(count):
            page = Page(url)
            pages.append((page, asyncio.create_task(page.run())))
        return {"pages": len(pages)}

    def state(self, group: str) -> dict[str, Any]:
        return {"pages": [asdict(page.seen) for page, _ in self.groups.get(group, [])]}

    async def act(self, request: dict[str, Any]) -> dict[str, Any]:
        """``press`` (``label``) or ``choose`` (``label``, ``option``) on page ``index`` of
        ``group``: whether the page had that widget and sent the rerun."""
        pages, index = self.groups.get(request["group"], []), int(request["index"])
        if not 0 <= index < len(pages):
            return {"done": False}
        page = pages[index][0]
        try:
            if request["op"] == "press":
                done = await page.press(request["label"])
            else:
                done = await page.choose(request["label"], request["option"])
        except ConnectionClosed:  # the page's own task records why
            done = False
        return {"done": done}

    async def close(self, group: str | None = None) -> dict[str, Any]:
        """Close the pages of ``group`` (all when None) as a browser closes its tabs; wait up
        to CONNECT_S for them."""
        names = list(self.groups) if group is None else [group]
        pages = [entry for name in names for entry in self.groups.pop(name, [])]
        for page, task in pages:
            if page.ws is None:  # still connecting: stop that
                task.cancel()
            try:
                await page.close()
            except Exception:  # a page that cannot close cleanly is still gone
                pass
        tasks = [task for _, task in pages]
        _, late = await asyncio.wait(tasks, timeout=CONNECT_S) if tasks else (set(), set())
        for task in late:
            task.cancel()
        return {"closed": len(pages)}

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "open":
            return self.open(request["url"], int(request["count"]), request["group"])
        if op == "state":
            return self.state(request["group"])
        if op in ("press", "choose"):
            return await self.act(request)
        if op == "close":
            return await self.close(request["group"])
        return {"error": f"unknown op {op!r}"}


async def serve() -> None:
    """Answer one JSON line on stdout for each JSON line on stdin, until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pages = Pages()
    while line := await reader.readline():
        request = json.loads(line)
        reply = await pages.answer(request)
        sys.stdout.write(json.dumps({"id": request.get("id"), **reply}) + "\n")
        sys.stdout.flush()
    await pages.close()


class ProtocolClient:
    """The synchronous side: this client's pages in a child process, for the load test. Each
    call names the group of pages it is about ("teacher", "watchers", "students")."""

    def __init__(self, stderr: Path) -> None:
        with stderr.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                bufsize=1,
            )  # fmt: skip
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.replies.put(json.loads(line))
            except json.JSONDecodeError:  # a stray print in the child, not a reply
                continue

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request; its reply, or TimeoutError after ``timeout`` seconds."""
        self.next_id += 1
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": self.next_id, **request}) + "\n")
        self.proc.stdin.flush()
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                reply = self.replies.get(timeout=left)
            except queue.Empty:
                break
            if reply.get("id") == self.next_id:  # an older call's late answer is dropped
                return reply
        raise TimeoutError(f"the protocol client did not answer {request['op']!r} in {timeout:g} s")

    def open(self, group: str, url: str, count: int, timeout: float) -> None:
        """Start ``count`` pages on ``url`` (its query string included) in ``group``; returns
        once they are started, not loaded. Pages keep their order in the group."""
        self._call({"op": "open", "group": group, "url": url, "count": count}, timeout)

    def pages(self, group: str, timeout: float) -> list[Seen]:
        """What each page of ``group`` shows now, in the order they were opened."""
        return [
            Seen(**{**p, "step_changes": [tuple(c) for c in p["step_changes"]]})
            for p in self._call({"op": "state", "group": group}, timeout)["pages"]
        ]

    def press(self, group: str, index: int, label: str, timeout: float) -> bool:
        """Press the button labelled ``label`` on page ``index`` of ``group``; False when that
        page shows no such enabled button (not loaded yet, say)."""
        request = {"op": "press", "group": group, "index": index, "label": label}
        return bool(self._call(request, timeout)["done"])

    def choose(self, group: str, index: int, label: str, option: str, timeout: float) -> bool:
        """Choose ``option`` in the segmented control labelled ``label`` on page ``index`` of
        ``group``; False when that page shows no such control or option."""
        request = {"op": "choose", "group": group, "index": index, "label": label}
        return bool(self._call({**request, "option": option}, timeout)["done"])

    def close_pages(self, group: str, timeout: float) -> int:
        return int(self._call({"op": "close", "group": group}, timeout)["closed"])

    def stop(self) -> None:
        """Close its stdin (it closes its pages and exits); kill it if it has not in 10 s."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


# -- by hand -------------------------------------------------------------------------------
async def try_pages(url: str, count: int, seconds: float, press: str | None) -> None:
    """``count`` pages of ``url`` for ``seconds``; with ``press``, each presses that button
    once its first run has finished. Prints what each page showed and did."""
    pages = Pages()
    pages.open(url, count, "pages")
    end = time.monotonic() + seconds
    waiting = list(range(count)) if press else []
    request = {"op": "press", "group": "pages", "label": press}
    while waiting and time.monotonic() < end:
        await asyncio.sleep(0.2)
        for i in list(waiting):
            loaded = pages.groups["pages"][i][0].seen.full_runs > 0
            if loaded and (await pages.act({**request, "index": i}))["done"]:
                waiting.remove(i)
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    for i, seen in enumerate(pages.state("pages")["pages"]):
        print(
            f"page {i + 1}: Step {seen['step']} ({len(seen['step_changes'])} changes), "
            f"State {seen['state']}, "
            f"run_every {seen['interval']} s, {seen['reruns_sent']} reruns sent, "
            f"{seen['full_runs']} full and {seen['fragment_runs']} fragment runs finished, "
            f"{seen['messages']} messages ({seen['bytes_received'] / 1e6:.1f} MB, "
            f"{seen['cache_hits']} from the cache), "
            f"errors {seen['exceptions']}/{seen['error_boxes']}/{seen['errors_received']}"
            + (f", FAILED: {seen['failure']}" if seen["failure"] else "")
        )
    await pages.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="a page of a running app, e.g. ...?watch=TOKEN")
    parser.add_argument("--pages", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--press", help="a button each page presses once loaded, e.g. Start")
    parser.add_argument("--serve", action="store_true", help="JSON lines on stdin (ProtocolClient)")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
    elif args.url:
        asyncio.run(try_pages(args.url, args.pages, args.seconds, args.press))
    else:
        parser.error("give a URL, or --serve")


if __name__ == "__main__":
    main()
