"""Every route declares who may call it; the table is walked so that a new route cannot forget."""

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fanchaoxin.core.auth import iter_routes, route_access
from fanchaoxin.core.roles import Role

# Framework routes that serve only the API's own description, never data.
FRAMEWORK_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# Mounts of static files only (the console's stylesheet, script and vendored libraries), never data.
STATIC_MOUNTS = {"/console/static"}


def test_every_route_declares_its_roles(app):
    missing = []
    seen = 0
    for path, route in iter_routes(app.routes):
        if isinstance(route, APIRoute):
            seen += 1
            rule = route_access(route)
            if rule is None or not rule.roles:
                missing.append(f"{sorted(route.methods)} {path}")
        elif isinstance(route, Mount) and path in STATIC_MOUNTS:
            if not isinstance(route.app, StaticFiles):
                missing.append(f"mount {path} is not static files")
        elif isinstance(route, Route | Mount) and path not in FRAMEWORK_ROUTES:
            missing.append(f"non-API route {path}")
        elif not isinstance(route, Route | Mount):
            missing.append(f"unknown kind of route {route!r} at {path}")
    # The walk must actually reach the application's routes (guards against a silent empty walk).
    assert seen >= 14
    assert not missing, "routes without an access rule: " + ", ".join(missing)


def test_public_routes_are_few_and_named(app):
    public = sorted(
        path
        for path, route in iter_routes(app.routes)
        if isinstance(route, APIRoute)
        and Role.public in route_access(route).roles
        and not path.startswith("/console/")
    )
    # Due process: anyone may object, apply for repair, report and follow a case with its secret.
    assert public == [
        "/healthz",
        "/metrics",
        "/readyz",
        "/v1/attachments/{kind}/{tracking_number}",
        # the transparency log (#19): what a CDN may serve; no record (entry bundles and inclusion
        # proofs carry the shared records: feed readers only)
        "/v1/log/checkpoint",
        "/v1/log/key",
        "/v1/log/proof/consistency",
        "/v1/log/tile/{path:path}",
        "/v1/objections",
        "/v1/objections/{tracking_number}/confirmation",
        "/v1/public/access-log",  # who looked me up (#14)
        "/v1/public/commitments",  # credit commitments published with repairs (#15)
        "/v1/public/corrections",
        "/v1/public/objections/{tracking_number}",
        "/v1/public/repairs/{tracking_number}",
        "/v1/public/reports",
        "/v1/public/reports/{tracking_number}",
        "/v1/public/statements",  # a statement (陈述申辩) on a notice before listing (#15)
        "/v1/public/statements/{tracking_number}",
        "/v1/public/statements/{tracking_number}/files",
        "/v1/repairs",
        "/v1/stats/public",
    ]


def test_roles_are_in_the_openapi_document(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/organisations"]["post"]
    assert op["x-roles"] == ["platform_admin"]


def test_a_route_without_a_rule_is_caught():
    router = APIRouter()

    @router.get("/forgotten")
    def forgotten() -> dict:
        return {}

    bare = FastAPI()
    bare.include_router(router)
    paths = [p for p, r in iter_routes(bare.routes) if isinstance(r, APIRoute) and route_access(r) is None]
    assert paths == ["/forgotten"]


def test_console_public_pages_are_few_and_named(app):
    """The console's pages without sign-in: the public pages, the sign-in form and the language switch."""
    public = sorted(
        (path, tuple(sorted(route.methods)))
        for path, route in iter_routes(app.routes)
        if isinstance(route, APIRoute)
        and path.startswith("/console/")
        and Role.public in route_access(route).roles
    )
    assert public == [
        ("/console/lang/{locale}", ("GET",)),
        ("/console/login", ("GET",)),
        ("/console/login", ("POST",)),
        ("/console/public", ("GET",)),
        ("/console/public", ("POST",)),
        ("/console/public/access", ("GET",)),
        ("/console/public/access", ("POST",)),
        ("/console/public/commitments", ("GET",)),
        ("/console/public/corrections", ("GET",)),
        # inclusion proofs as files (#19): a public record's, a corrected entry's, a filer's (secret posted)
        ("/console/public/corrections/{notice_id}/log-proof.json", ("GET",)),
        ("/console/public/guide/objection", ("GET",)),  # the guides and the record page (#17)
        ("/console/public/guide/repair", ("GET",)),
        ("/console/public/objection", ("GET",)),
        ("/console/public/objection", ("POST",)),
        ("/console/public/progress", ("GET",)),  # the filer's progress check (#15)
        ("/console/public/progress", ("POST",)),
        ("/console/public/progress/log-proof.json", ("POST",)),
        ("/console/public/progress/material", ("POST",)),  # the material a 补正 asks for (#17)
        ("/console/public/records/{entry_id}", ("GET",)),
        ("/console/public/records/{entry_id}/log-proof.json", ("GET",)),
        ("/console/public/repair", ("GET",)),
        ("/console/public/repair", ("POST",)),
        ("/console/public/report", ("GET",)),
        ("/console/public/report", ("POST",)),
        ("/console/public/statement", ("GET",)),  # the statement form (陈述申辩, #15)
        ("/console/public/statement", ("POST",)),
        ("/console/public/stats", ("GET",)),
    ]
    # Every other console page names staff roles only.
    staff = [
        path
        for path, route in iter_routes(app.routes)
        if isinstance(route, APIRoute)
        and path.startswith("/console/")
        and Role.public not in route_access(route).roles
    ]
    assert len(staff) >= 20
