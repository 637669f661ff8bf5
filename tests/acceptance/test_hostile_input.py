"""Hostile input against a real `skipline serve`, on SQLite and on PostgreSQL, as exact bytes
through standard-library sockets: every answer is a 4xx problem+json (or the documented
behaviour: a slow client is cut off), the server log never shows a traceback or a credential,
and the process still serves afterwards (checked after every test)."""

from __future__ import annotations

import gzip
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.acceptance.hostile import (
    BODY_TIMEOUT,
    HEAD_TIMEOUT,
    KEEPALIVE_TIMEOUT,
    SHORT_LIMITS,
    Target,
    add_key,
    closed_within,
    connect,
    exchange,
    head,
    json_post,
    read_reply,
    run_cli,
    serving,
)

pytestmark = pytest.mark.slow

SLACK = 3.0
"""Seconds past a timeout within which the server must have acted (a loaded CI machine)."""
SLOW_CLIENTS = 200


@contextmanager
def database(request: pytest.FixtureRequest, workdir: Path) -> Iterator[str]:
    """A SQLite file in `workdir`, or a fresh migrated PostgreSQL database of this module's."""
    if request.param == "sqlite":
        yield f"sqlite:///{workdir / 'skipline.db'}"
        return
    from tests.postgres_harness import temporary_database

    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("postgres_template")
    with temporary_database(server, template) as name:
        yield server.url(name)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                              marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with database(request, workdir) as db:
        keys = {"vip": add_key(workdir, db, "acme", "vip"),
                "regular": add_key(workdir, db, "bob", "regular")}
        with serving(workdir, db, "--log-level", "debug", *SHORT_LIMITS) as server:
            yield Target(server, db, workdir, keys)


@pytest.fixture(autouse=True)
def still_sound(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: no traceback and no API key in the log, and the process serves."""
    yield
    if "target" not in request.fixturenames:
        return
    target: Target = request.getfixturevalue("target")
    log = target.log()
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log, log[-3000:]
    for key in target.keys.values():
        assert key not in log
    assert exchange(target, head("GET", "/healthz", "Connection: close")).status == 200


def bearer(target: Target, tier: str = "vip") -> str:
    return f"Authorization: Bearer {target.keys[tier]}"


# --- 1. credentials that are not text -----------------------------------------------------------
@pytest.mark.parametrize("method, path", [("GET", "/orders"), ("POST", "/orders"),
                                          ("DELETE", "/orders/x")])
def test_an_authorization_header_of_raw_non_utf8_bytes_is_401(
    target: Target, method: str, path: str,
) -> None:
    lines: list[bytes | str] = [b"Authorization: Bearer \xe9\xe9"]
    raw = json_post(b"{}", *lines) if method == "POST" else head(method, path, *lines)
    reply = exchange(target, raw)
    assert reply.status == 401
    assert reply.problem["type"].endswith("not-authenticated")


# --- 2. content codings -------------------------------------------------------------------------
def test_a_gzip_body_that_is_not_gzip_is_400(target: Target) -> None:
    reply = exchange(target, json_post(b'{"payload": {}}', "Content-Encoding: gzip"))
    assert reply.status == 400
    assert reply.problem["type"].endswith("undecodable-body")


def test_a_chunked_gzip_body_that_is_not_gzip_is_400(target: Target) -> None:
    body = b'{"payload": {}}'
    chunks = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    raw = head("POST", "/orders", "Content-Type: application/json", "Content-Encoding: gzip",
               "Transfer-Encoding: chunked") + chunks
    reply = exchange(target, raw)
    assert reply.status == 400
    assert reply.problem


@pytest.mark.parametrize("coding", ["evil", "gzip, evil", "br, gzip"])
def test_an_unknown_content_encoding_is_415(target: Target, coding: str) -> None:
    reply = exchange(target, json_post(b"{}", f"Content-Encoding: {coding}"))
    assert reply.status == 415
    assert reply.problem["type"].endswith("unsupported-content-encoding")
    assert "gzip" in reply.headers["accept-encoding"]


def test_a_real_gzip_body_is_accepted(target: Target) -> None:
    reply = exchange(target, json_post(gzip.compress(b'{"payload": {"z": 1}}'),
                                       "Content-Encoding: gzip"))
    assert reply.status == 202, reply.body
    assert reply.json()["payload"] == {"z": 1}


# --- 3. order ids that are no ids ----------------------------------------------------------------
@pytest.mark.parametrize("method, path", [("GET", "/orders/%00"), ("GET", "/orders/abc%00def"),
                                          ("DELETE", "/orders/%00"), ("GET", "/orders/%C3%A9"),
                                          ("GET", "/orders/" + "a" * 300)])
def test_an_order_id_that_cannot_be_one_is_404(target: Target, method: str, path: str) -> None:
    reply = exchange(target, head(method, path))
    assert reply.status == 404
    assert reply.problem["type"].endswith("order-not-found")


# --- 5. a client that vanishes mid-body ---------------------------------------------------------
def test_a_client_that_vanishes_mid_body_is_recorded_as_499_without_a_traceback(
    target: Target,
) -> None:
    with connect(target) as sock:
        sock.sendall(head("POST", "/orders", "Content-Type: application/json",
                          "Content-Length: 1000") + b'{"payload": {"a": ')
        time.sleep(0.3)  # the server is reading the body now
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        metrics = exchange(target, head("GET", "/metrics")).body.decode()
        if re.search(r'skipline_http_requests_total\{[^}]*route="/orders"[^}]*status="499"',
                     metrics):
            break
        time.sleep(0.2)
    else:
        pytest.fail("no request was recorded with status 499")
    assert 'status="500"' not in metrics


# --- 6. slow and idle connections ---------------------------------------------------------------
def test_a_partial_head_gets_408_and_the_connection_is_closed(target: Target) -> None:
    with connect(target) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        closed, received = closed_within(sock, HEAD_TIMEOUT + SLACK)
    assert closed
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in received and b"nosniff" in received


def test_a_silent_connection_is_closed(target: Target) -> None:
    with connect(target) as sock:
        closed, received = closed_within(sock, HEAD_TIMEOUT + SLACK)
    assert closed and received == b""


def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_the_head_timeout(target: Target) -> None:
    started = time.monotonic()
    with connect(target) as sock:
        sock.settimeout(0.5)
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > HEAD_TIMEOUT + SLACK:
                break
        if not closed:
            closed, _ = closed_within(sock, SLACK)
    assert closed
    assert time.monotonic() - started < HEAD_TIMEOUT + 2 * SLACK


def test_an_idle_keep_alive_connection_is_closed(target: Target) -> None:
    with connect(target) as sock:
        sock.sendall(head("GET", "/healthz"))
        assert read_reply(sock).status == 200
        still_open, _ = closed_within(sock, KEEPALIVE_TIMEOUT - 0.5)
        assert not still_open  # kept alive for a while: a next request may come
        closed, received = closed_within(sock, SLACK + 1)
    assert closed and received == b""


def test_a_slow_body_gets_408(target: Target) -> None:
    with connect(target) as sock:
        sock.sendall(head("POST", "/orders", "Content-Type: application/json",
                          "Content-Length: 100") + b'{"payload": ')
        sock.settimeout(BODY_TIMEOUT + SLACK)
        reply = read_reply(sock)
    assert reply.status == 408
    assert reply.problem["type"].endswith("request-timeout")


def test_200_slow_clients_block_nobody_and_are_all_cut_off(target: Target) -> None:
    with ExitStack() as stack:
        slow = [stack.enter_context(connect(target)) for _ in range(SLOW_CLIENTS)]
        for sock in slow:
            sock.sendall(b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
        started = time.monotonic()
        reply = exchange(target, head("GET", "/healthz"))
        assert reply.status == 200 and time.monotonic() - started < 1.0
        time.sleep(HEAD_TIMEOUT)
        open_ones = [sock for sock in slow if not closed_within(sock, SLACK)[0]]
    assert open_ones == []


# --- 7. headers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    head("GET", "/healthz"), head("GET", "/nope"), head("GET", "/docs"), head("GET", "/"),
    head("GET", "/orders/%00"), json_post(b"{", path="/orders"),
    b"GARBAGE\r\n\r\n", head("GET", "/x", b"Bad\x01Header: 1"),
])
def test_every_answer_says_nosniff_and_names_no_versions(target: Target, raw: bytes) -> None:
    reply = exchange(target, raw)
    assert reply.headers["x-content-type-options"] == "nosniff"
    server = reply.headers.get("server", "")
    assert not re.search(r"\d", server) and "python" not in server.lower()


def test_the_docs_page_may_not_be_framed(target: Target) -> None:
    reply = exchange(target, head("GET", "/docs"))
    assert reply.status == 200
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]


# --- 8. a credential is never repeated ----------------------------------------------------------
def test_a_malformed_authorization_line_is_neither_logged_nor_echoed(target: Target) -> None:
    key = target.keys["vip"]
    reply = exchange(target, head("GET", "/orders", f"Authorization: Bearer {key}".encode()
                                  + b"\x01"))
    assert reply.status == 400
    assert key not in reply.problem["detail"] and key[3:12] not in reply.body.decode()
    assert key[3:12] not in target.log()


# --- 9. an idempotency key reused for another request ------------------------------------------
@pytest.mark.parametrize("tier", ["anonymous", "vip"])
def test_an_idempotency_key_reused_with_another_body_is_422(target: Target, tier: str) -> None:
    lines = [f"Idempotency-Key: reuse-{uuid.uuid4()}"]
    if tier != "anonymous":
        lines.append(bearer(target, tier))
    first = exchange(target, json_post(b'{"payload": {"n": 1, "m": 2}}', *lines))
    again = exchange(target, json_post(b'{"payload": {"m": 2, "n": 1}}', *lines))
    other = exchange(target, json_post(b'{"payload": {"n": 2, "m": 2}}', *lines))
    assert first.status == 202 and again.status == 200
    assert again.json()["id"] == first.json()["id"]
    assert other.status == 422
    assert other.problem["type"].endswith("idempotency-key-reused")
    assert first.json()["id"] not in other.body.decode()  # a guesser learns no order id


# --- 10. rules the OpenAPI document states -----------------------------------------------------
def test_listing_without_a_key_is_401_before_the_query_is_judged(target: Target) -> None:
    reply = exchange(target, head("GET", "/orders?cursor=bogus&limit=zero"))
    assert reply.status == 401
    assert reply.problem


@pytest.mark.parametrize(("cursor", "status"), [("c2VxOjE", 422), ("0", 422), ("12", 200),
                                              ("999999999999999999", 200)])
def test_a_cursor_is_what_the_document_says(target: Target, cursor: str, status: int) -> None:
    reply = exchange(target, head("GET", f"/orders?cursor={cursor}", bearer(target)))
    assert reply.status == status
    if status == 422:
        assert "cursor" in reply.problem["detail"]


@pytest.mark.parametrize("raw", [
    json_post(b'{"payload": {"a": "\\u0000"}}'),
    json_post(b'{"payload": {}}', b"Idempotency-Key: caf\xc3\xa9"),
])
def test_what_the_schema_forbids_is_422(target: Target, raw: bytes) -> None:
    reply = exchange(target, raw)
    assert reply.status == 422
    assert reply.problem


# --- 4. the anonymous tier ----------------------------------------------------------------------
GOLD_AND_SILVER = """
[tiers.gold]
priority = 0
[tiers.silver]
priority = 1
"""


def test_a_config_without_the_anonymous_tier_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "skipline.toml").write_text(GOLD_AND_SILVER, encoding="utf-8")
    result = run_cli(tmp_path, "serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--check")
    assert result.returncode == 2
    assert "anonymous_tier 'regular'" in result.stderr and "Traceback" not in result.stderr


def test_anonymous_callers_get_the_configured_anonymous_tier(tmp_path: Path) -> None:
    (tmp_path / "skipline.toml").write_text('anonymous_tier = "silver"\n' + GOLD_AND_SILVER,
                                            encoding="utf-8")
    with serving(tmp_path, f"sqlite:///{tmp_path / 's.db'}") as server:
        target = Target(server, "", tmp_path)
        reply = exchange(target, json_post(b"{}"))
        assert reply.status == 202 and reply.json()["tier"] == "silver"
        refused = exchange(target, json_post(b'{"user_type": "gold"}'))
        assert refused.status == 403
        assert refused.problem
        assert "Traceback" not in target.log()


# --- behind a proxy -----------------------------------------------------------------------------
ONE_ORDER_EACH = "vip = {priority = 0}\nregular = {priority = 1, rate_limit = 0.001, burst = 1}"


@pytest.mark.parametrize("trusted", [True, False])
def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: bool,
) -> None:
    args = ["--tiers", ONE_ORDER_EACH]
    if trusted:
        args += ["--forwarded-allow-ips", "127.0.0.1/32, ::1"]
    with serving(tmp_path, f"sqlite:///{tmp_path / 's.db'}", *args) as server:
        target = Target(server, "", tmp_path)
        first = exchange(target, json_post(b"{}", "X-Forwarded-For: 203.0.113.7"))
        other = exchange(target, json_post(b"{}", "X-Forwarded-For: 198.51.100.1, 203.0.113.9"))
        again = exchange(target, json_post(b"{}", "X-Forwarded-For: 203.0.113.7"))
    assert first.status == 202
    assert again.status == 429
    assert other.status == (202 if trusted else 429)

