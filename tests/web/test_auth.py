from __future__ import annotations

from tests.web.conftest import PASSWORD, Desk


async def test_login_with_the_right_password_gives_a_token_that_works(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    assert response.status == 200
    body = await response.json()
    me = await desk.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert (await me.json())["username"] == "alice"
    assert body["user"]["agent"]["interface"] == "PJSIP/1001"


async def test_login_with_a_wrong_password_is_refused(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "wrong password"}
    )
    assert response.status == 401
    body = await response.json()
    assert body["error"]["code"] == "authentication_failed"
    assert "token" not in body


async def test_login_as_an_unknown_user_is_refused_like_a_wrong_password(desk: Desk) -> None:
    response = await desk.client.post(
        "/api/v1/auth/login", json={"username": "mallory", "password": PASSWORD}
    )
    assert response.status == 401
    assert (await response.json())["error"]["message"] == "wrong username or password"


async def test_a_forged_bearer_token_is_unauthenticated(desk: Desk) -> None:
    response = await desk.client.get(
        "/api/v1/customers", headers={"Authorization": "Bearer not-a-real-token"}
    )
    assert response.status == 401


async def test_logout_ends_the_session(desk: Desk) -> None:
    response = await desk.client.post("/api/v1/auth/logout", headers=desk.auth("bob"))
    assert response.status == 204
    again = await desk.client.get("/api/v1/auth/me", headers=desk.auth("bob"))
    assert again.status == 401


async def test_the_session_cookie_signs_in_a_browser(desk: Desk) -> None:
    desk.client.session.cookie_jar.clear()
    await desk.client.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    me = await desk.client.get("/api/v1/auth/me")
    assert me.status == 200
    assert (await me.json())["username"] == "alice"


async def test_a_cookie_signed_write_without_the_csrf_header_is_refused(desk: Desk) -> None:
    desk.client.session.cookie_jar.clear()
    await desk.client.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    response = await desk.client.post("/api/v1/customers", json={"name": "Via Cookie"})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "csrf_failed"
    csrf = next(c.value for c in desk.client.session.cookie_jar if c.key == "desk_csrf")
    accepted = await desk.client.post(
        "/api/v1/customers", json={"name": "Via Cookie"}, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status == 201


async def test_a_session_expires_after_its_lifetime(desk: Desk) -> None:
    desk.clock.advance(13 * 3600)
    response = await desk.client.get("/api/v1/auth/me", headers=desk.auth("alice"))
    assert response.status == 401
