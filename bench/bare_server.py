"""The baseline: a bare aiohttp handler that parses the same JSON body and answers 202.

Run by bench/http_submit.py (`PORT [--uvloop]`); not part of the package.
"""

from __future__ import annotations

import sys

from aiohttp import web


async def place_order(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"status": "order placed", "order": body}, status=202)


def main() -> None:
    port = int(sys.argv[1])
    if "--uvloop" in sys.argv[2:]:
        import uvloop

        uvloop.install()
    app = web.Application()
    app.router.add_post("/orders", place_order)
    app.router.add_get("/healthz", lambda _: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
