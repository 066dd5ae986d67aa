from __future__ import annotations

from aiohttp import web

from tests.web.conftest import Desk


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or path.startswith("/socket.io") or route.method == "HEAD":
            continue
        if getattr(route.handler, "__module__", "").startswith("web.pages"):
            continue  # HTML pages for people, not part of the API
        routes.add((route.method.lower(), path))
    return routes


async def test_the_openapi_document_lists_exactly_the_real_routes(desk: Desk) -> None:
    document = await (await desk.client.get("/api/v1/openapi.json")).json()
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert documented == _app_routes(desk.client.app)


async def test_every_documented_body_and_response_schema_resolves(desk: Desk) -> None:
    document = await (await desk.client.get("/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    text = str(document["paths"])
    for name in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas, name


async def test_guarded_operations_document_their_roles_and_errors(desk: Desk) -> None:
    document = await (await desk.client.get("/api/v1/openapi.json")).json()
    users = document["paths"]["/api/v1/users"]["post"]
    assert users["x-roles"] == ["admin"]
    assert {"401", "403", "422", "201"} <= set(users["responses"])


async def test_the_readiness_endpoint_reports_the_database(desk: Desk) -> None:
    response = await desk.client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True, "error": None}
