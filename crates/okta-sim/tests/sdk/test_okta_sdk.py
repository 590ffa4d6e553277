"""Okta's official Python SDK (the `okta` package), unchanged, against the local Okta."""

import json
import urllib.parse
import urllib.request

import jwt
from okta.client import Client as OktaClient
from okta.http_client import HTTPClient
from okta.models.event_hook import EventHook
from okta.pagination import PaginationHelper

from conftest import API_TOKEN, GROUP_COUNT, MEMBER_COUNT, admin, run
from hook_receiver import HookReceiver


def trusting(ssl_context):
    """The SDK's documented extension point, an HTTPClient subclass, carrying the local
    Okta's CA. (Its `sslContext` option breaks: the SDK deep-copies its configuration.)"""

    class TrustingHTTPClient(HTTPClient):
        def __init__(self, http_config={}):
            super().__init__(http_config)
            self._ssl_context = ssl_context

    return TrustingHTTPClient


def sdk_client(sim, **extra):
    config = {"orgUrl": sim["url"], "token": API_TOKEN, "httpClient": trusting(sim["ssl"])}
    config.update(extra)
    return OktaClient(config)


async def all_pages(fetch):
    """Pages the way the SDK documents it: PaginationHelper reads the `after` cursor of the
    `Link: <...>; rel="next"` header. The SDK keeps one value per header name, the last
    line, so this works only because Okta (and the simulator) send `self` first and
    `next` after it."""
    items, pages, after = [], 0, None
    while True:
        page, response, error = await fetch(after)
        assert error is None, error
        items.extend(page)
        pages += 1
        after = PaginationHelper.extract_next_cursor(response.headers)
        if after is None:
            return items, pages


def name_of(group):
    return group.profile.actual_instance.name


def test_lists_every_group_across_pages(sim):
    async def scenario():
        client = sdk_client(sim)
        return await all_pages(lambda after: client.list_groups(limit=5, after=after))

    groups, pages = run(scenario())
    names = [name_of(g) for g in groups]
    expected = {f"k8s-team-{i:02}" for i in range(GROUP_COUNT)} | {"k8s-big", "k8s-admins", "engineering", "Everyone"}
    assert set(names) == expected
    assert len(names) == len(expected), "no group twice"
    assert pages > 3


def test_search_finds_a_group_by_exact_name_and_get_reads_it(sim):
    async def scenario():
        client = sdk_client(sim)
        found, _, error = await client.list_groups(search='profile.name eq "k8s-team-07"')
        assert error is None, error
        got, _, error = await client.get_group(found[0].id)
        assert error is None, error
        return found, got

    found, got = run(scenario())
    assert [name_of(g) for g in found] == ["k8s-team-07"]
    assert name_of(got) == "k8s-team-07"
    assert got.profile.actual_instance.description == "team 7"
    assert got.id.startswith("00g")


def test_an_unknown_group_is_okta_not_found(sim):
    async def scenario():
        return await sdk_client(sim).get_group("00gdoesnotexist00000")

    _, response, error = run(scenario())
    assert error is not None
    assert response.status == 404
    assert "E0000007" in str(error)


def test_lists_group_members_across_pages(sim):
    async def scenario():
        client = sdk_client(sim)
        found, _, error = await client.list_groups(search='profile.name eq "k8s-big"')
        assert error is None, error
        group_id = found[0].id
        return await all_pages(lambda after: client.list_group_users(group_id, limit=5, after=after))

    users, pages = run(scenario())
    assert sorted(u.profile.login for u in users) == [f"member{i:02}@example.com" for i in range(MEMBER_COUNT)]
    assert pages == 3


def test_retries_a_429_after_the_reset(sim):
    admin(sim, "PUT", "/_sim/rate-limits", {"perMinute": {"groups": 1}, "windowSeconds": 2})
    admin(sim, "DELETE", "/_sim/requests")
    try:
        async def scenario():
            client = sdk_client(sim)
            first, _, error = await client.list_groups(q="k8s-team-0")
            assert error is None, error
            second, _, error = await client.list_groups(q="k8s-team-1")
            assert error is None, error
            return first, second

        first, second = run(scenario())
        assert len(first) == 10 and len(second) == 10
        log = [r for r in admin(sim, "GET", "/_sim/requests") if r["path"] == "/api/v1/groups"]
        statuses = [r["status"] for r in log]
        assert 429 in statuses, statuses
        assert statuses[-1] == 200
        refused = next(r for r in log if r["status"] == 429)
        retry = log[-1]
        assert retry["startedMs"] >= refused["rateLimitReset"] * 1000, "the SDK waited for the reset"
    finally:
        admin(sim, "PUT", "/_sim/rate-limits", {})


def test_private_key_service_app_reads_groups(sim, service_key):
    async def scenario():
        client = OktaClient({
            "orgUrl": sim["url"],
            "authorizationMode": "PrivateKey",
            "clientId": "0oaservice",
            "scopes": ["okta.groups.read"],
            "privateKey": service_key[0],
            "httpClient": trusting(sim["ssl"]),
        })
        groups, _, error = await client.list_groups(search='profile.name eq "k8s-admins"')
        assert error is None, error
        return groups

    groups = run(scenario())
    assert [name_of(g) for g in groups] == ["k8s-admins"]


def _service_app_client(sim, service_key, client_id, dpop):
    return OktaClient({
        "orgUrl": sim["url"],
        "authorizationMode": "PrivateKey",
        "clientId": client_id,
        "scopes": ["okta.groups.read"],
        "privateKey": service_key[0],
        "dpopEnabled": dpop,
        "httpClient": trusting(sim["ssl"]),
    })


def test_a_dpop_bound_service_app_reads_groups_with_the_sdk_s_dpop(sim, service_key):
    admin(sim, "DELETE", "/_sim/requests")

    async def scenario():
        client = _service_app_client(sim, service_key, "0oaservice-dpop", dpop=True)
        groups, _, error = await client.list_groups(search='profile.name eq "k8s-admins"')
        assert error is None, error
        return groups

    groups = run(scenario())
    assert [name_of(g) for g in groups] == ["k8s-admins"]
    log = admin(sim, "GET", "/_sim/requests")
    token = [r["status"] for r in log if r["path"] == "/oauth2/v1/token"]
    assert token == [400, 200], "the SDK answered the nonce challenge: %s" % token
    calls = [r for r in log if r["path"] == "/api/v1/groups"]
    assert calls and all(r["status"] == 200 and r["caller"] == "DPoP 0oaservice-dpop" for r in calls), calls


def test_a_dpop_app_used_without_dpop_gives_the_sdk_s_dpop_error(sim, service_key):
    async def scenario():
        client = _service_app_client(sim, service_key, "0oaservice-dpop", dpop=False)
        return await client.list_groups(search='profile.name eq "k8s-admins"')

    groups, _, error = run(scenario())
    assert groups is None
    assert error is not None
    assert error.error_code == "invalid_dpop_proof", vars(error)
    assert "The DPoP proof JWT header is missing." in error.error_summary, vars(error)


def _post_form(sim, url, fields):
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), context=sim["ssl"]) as response:
        return json.loads(response.read())


def _verify(sim, token):
    issuer = sim["url"] + "/oauth2/default"
    with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", context=sim["ssl"]) as r:
        discovery = json.loads(r.read())
    with urllib.request.urlopen(discovery["jwks_uri"], context=sim["ssl"]) as r:
        keys = jwt.PyJWKSet.from_dict(json.loads(r.read()))
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(token, key, algorithms=["RS256"], audience="kubernetes", issuer=issuer)


def test_id_tokens_verify_with_pyjwt_and_carry_only_k8s_groups(sim):
    token_url = sim["url"] + "/oauth2/default/v1/token"
    alice = _post_form(sim, token_url, {"grant_type": "password", "client_id": "kubernetes",
                                        "username": "alice@example.com", "password": "alice-password",
                                        "scope": "openid email profile groups"})
    claims = _verify(sim, alice["id_token"])
    assert claims["email"] == "alice@example.com"
    assert claims["preferred_username"] == "alice@example.com"
    assert claims["groups"] == ["k8s-admins"], "engineering and Everyone are filtered out"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]

    carol = _post_form(sim, token_url, {"grant_type": "password", "client_id": "kubernetes",
                                        "username": "carol@example.com", "password": "carol-password",
                                        "scope": "openid email"})
    assert "groups" not in _verify(sim, carol["id_token"])


def test_a_user_and_their_groups_are_read_with_the_sdk(sim):
    async def scenario():
        client = OktaClient({"orgUrl": sim["url"], "token": API_TOKEN, "httpClient": trusting(sim["ssl"])})
        user, _, error = await client.get_user("alice@example.com")
        assert error is None, error
        groups, _, error = await client.list_user_groups(user.id)
        assert error is None, error
        missing, _, error = await client.get_user("nobody@example.com")
        return user, groups, missing, error

    user, groups, missing, error = run(scenario())
    assert user.profile.login == "alice@example.com"
    assert user.status == "ACTIVE" or str(user.status).endswith("ACTIVE"), user.status
    assert sorted(name_of(g) for g in groups) == ["Everyone", "engineering", "k8s-admins"]
    assert missing is None and error is not None
    assert getattr(error, "error_code", None) == "E0000007", vars(error)


def test_the_sdk_drives_a_user_s_lifecycle_and_the_log_records_it(sim):
    """Suspend, unsuspend, deactivate, activate and delete with the SDK's User Lifecycle and
    User APIs; the group's member list shows each status, and the System Log (read with
    the SDK) has one event per change with the user as target."""
    created = admin(sim, "POST", "/_sim/users", {"login": "dana@example.com", "password": "dana-password"})
    group = admin(sim, "POST", "/_sim/groups", {"name": "k8s-lifecycle"})
    admin(sim, "PUT", f"/_sim/groups/{group['id']}/members/dana@example.com")
    user_id = created["id"]

    async def scenario():
        client = sdk_client(sim)
        statuses = []

        async def status_in_group():
            members, _, error = await client.list_group_users(group["id"])
            assert error is None, error
            [member] = [m for m in members if m.id == user_id]
            statuses.append(str(member.status.value if hasattr(member.status, "value") else member.status))

        for step in (
            lambda: client.suspend_user(user_id),
            lambda: client.unsuspend_user(user_id),
            lambda: client.deactivate_user(user_id),
            lambda: client.activate_user(user_id, send_email=False),
        ):
            result = await step()
            error = result[-1]
            assert error is None, error
            await status_in_group()
        refused = (await client.unsuspend_user(user_id))[-1]
        assert getattr(refused, "error_code", None) == "E0000001", "only a SUSPENDED user is unsuspended"
        for _ in range(2):
            result = await client.delete_user(user_id)
            assert result[-1] is None, result[-1]
        events, _, error = await client.list_log_events(filter='eventType sw "user.lifecycle."')
        assert error is None, error
        return statuses, events

    statuses, events = run(scenario())
    assert statuses == ["SUSPENDED", "ACTIVE", "DEPROVISIONED", "ACTIVE"]
    assert [e.event_type for e in events] == [
        "user.lifecycle.suspend",
        "user.lifecycle.unsuspend",
        "user.lifecycle.deactivate",
        "user.lifecycle.activate",
        "user.lifecycle.deactivate",
        "user.lifecycle.delete.initiated",
        "user.lifecycle.delete.completed",
    ]
    assert all(e.target[0].id == user_id for e in events)


def _trust_receiver(sim, pem):
    """The admin API's trust call takes the PEM itself as the body."""
    request = urllib.request.Request(sim["url"] + "/_sim/eventHooks/trust", data=pem.encode(), method="POST")
    with urllib.request.urlopen(request, context=sim["ssl"]) as response:
        assert response.status == 200


def _value(field):
    return field.value if hasattr(field, "value") else field


def test_an_event_hook_made_with_the_sdk_receives_a_membership_change(sim, tmp_path):
    """The SDK's EventHookApi creates, verifies, deactivates, activates, lists and deletes
    a hook on an HTTPS receiver with a self-signed certificate; a membership change made
    through the admin API reaches the receiver with the registered headers and the
    System Log's event."""
    receiver = HookReceiver(tmp_path)
    _trust_receiver(sim, receiver.cert_pem)
    group = admin(sim, "POST", "/_sim/groups", {"name": "k8s-hooked"})
    secret = "Basic c2RrOmhvb2s="
    hook = EventHook.from_dict({
        "name": "sdk membership hook",
        "events": {"type": "EVENT_TYPE", "items": ["group.user_membership.add"]},
        "channel": {
            "type": "HTTP",
            "version": "1.0.0",
            "config": {
                "uri": receiver.url,
                "headers": [{"key": "X-Other-Header", "value": "from-the-sdk"}],
                "authScheme": {"type": "HEADER", "key": "Authorization", "value": secret},
            },
        },
    })

    async def register():
        client = sdk_client(sim)
        created, _, error = await client.create_event_hook(hook)
        assert error is None, error
        verified, _, error = await client.verify_event_hook(created.id)
        assert error is None, error
        deactivated, _, error = await client.deactivate_event_hook(created.id)
        assert error is None, error
        activated, _, error = await client.activate_event_hook(created.id)
        assert error is None, error
        hooks, _, error = await client.list_event_hooks()
        assert error is None, error
        return created, verified, deactivated, activated, hooks

    try:
        created, verified, deactivated, activated, hooks = run(register())
        assert created.id.startswith("who")
        assert (created.status, _value(created.verification_status)) == ("ACTIVE", "UNVERIFIED")
        assert _value(verified.verification_status) == "VERIFIED"
        assert (deactivated.status, activated.status) == ("INACTIVE", "ACTIVE")
        assert created.channel.config.auth_scheme.key == "Authorization"
        assert created.channel.config.auth_scheme.value is None, "the secret is never answered"
        assert [h.id for h in hooks] == [created.id]
        method, headers, _ = receiver.next()
        assert method == "GET" and headers["x-okta-verification-challenge"]

        admin(sim, "PUT", f"/_sim/groups/{group['id']}/members/carol@example.com")
        method, headers, body = receiver.next()
        assert method == "POST"
        assert headers["Authorization"] == secret
        assert headers["X-Other-Header"] == "from-the-sdk"
        assert headers["Content-Type"] == "application/json"
        assert body["eventType"] == "com.okta.event_hook"
        assert body["source"] == f"{sim['url']}/api/v1/eventHooks/{created.id}"
        [event] = body["data"]["events"]
        assert event["eventType"] == "group.user_membership.add"
        assert [t["type"] for t in event["target"]] == ["User", "UserGroup"]
        assert event["target"][0]["alternateId"] == "carol@example.com"
        assert event["target"][1]["id"] == group["id"]

        async def logged():
            events, _, error = await sdk_client(sim).list_log_events(filter=f'eventType eq "group.user_membership.add" and target.id eq "{group["id"]}"')
            assert error is None, error
            return events

        [same] = run(logged())
        assert same.uuid == event["uuid"], "the System Log's own event"
    finally:
        async def remove():
            client = sdk_client(sim)
            for hook_id in [h.id for h in (await client.list_event_hooks())[0] or []]:
                await client.deactivate_event_hook(hook_id)
                result = await client.delete_event_hook(hook_id)
                assert result[-1] is None, result[-1]
            remaining, _, _ = await client.list_event_hooks()
            return remaining

        assert run(remove()) == []
        receiver.stop()
