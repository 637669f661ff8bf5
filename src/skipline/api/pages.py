"""The dashboard: our own HTML, JS and CSS (no third-party files), read once when the app is
created and served from memory."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

DASHBOARD_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "common.js": "text/javascript",
    "charts.js": "text/javascript",
    "orders.js": "text/javascript",
    "style.css": "text/css",
    "icon.png": "image/png",
}
PAGE_SECURITY = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


def load_dashboard() -> dict[str, bytes]:
    folder = resources.files("skipline.api").joinpath("dashboard")
    return {name: folder.joinpath(name).read_bytes() for name in DASHBOARD_FILES}


def add_dashboard_routes(app: web.Application) -> None:
    files = load_dashboard()

    def serve(name: str) -> web.Response:
        kind = DASHBOARD_FILES[name]
        return web.Response(
            body=files[name], content_type=kind,
            charset="utf-8" if kind.startswith("text/") else None,
            headers={"Content-Security-Policy": PAGE_SECURITY, "Cache-Control": "no-cache"},
        )

    async def index(request: web.Request) -> web.Response:
        return serve("index.html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "index.html" or name not in files:
            raise web.HTTPNotFound()
        return serve(name)

    app.router.add_get("/", index, name="dashboard")
    app.router.add_get("/dashboard/{name}", asset, name="dashboard-asset")
