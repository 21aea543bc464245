"""Silence writes through the UI and its API, over a real HTTP server on loopback: who may write
(http.auth: a bearer token, a trusted proxy's user header), the CSRF token forms carry, bad input
refused with one line and nothing written, and the silences written reaching `monitor silence list`.

The server is the daemon's own (`HealthServer` mounting `make_ui_app`), the store a real state
file, the config loaded from YAML as the daemon loads it. Every refusal is checked twice: the
status and message, and that the silences table did not change.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry

from monitor.alerting.repository import AlertRepository
from monitor.cli import main as cli_main
from monitor.config import load_config
from monitor.http_endpoints import HealthServer
from monitor.store import StateStore
from monitor.ui import auth
from monitor.ui.app import UiContext, make_ui_app
from tests.hostile import assert_handled, run_in_process

TOKEN = "ui-write-token-0123456789"
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=timezone.utc)
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class Ui:
    url: str
    config_path: Path
    state_path: Path
    store: StateStore | None = None  # the UI's own store (its fence is per store)

    def silences(self) -> list:
        with StateStore(self.state_path) as store:
            return AlertRepository(store).silences()

    def csrf(self, headers: dict[str, str] | None = None) -> str:
        """The token of the /silences page's form, as rendered for a caller sending `headers`."""
        page = requests.get(f"{self.url}/silences", headers=headers or {}, timeout=10)
        assert page.status_code == 200, page.text
        tokens = set(CSRF.findall(page.text))
        assert len(tokens) == 1, tokens
        return tokens.pop()

    def post_form(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None):
        return requests.post(f"{self.url}{path}", data=data, headers=headers or {}, timeout=10,
                             allow_redirects=False)


def start_ui(tmp_path: Path, monkeypatch, auth_config: dict | None, *, listen: str = "127.0.0.1:0",
             name: str = "ui"):
    monkeypatch.setenv("MONITOR_UI_TOKEN", TOKEN)
    state_path = tmp_path / f"{name}-state.db"
    document: dict = {"state": {"path": str(state_path)}, "http": {"listen": listen}}
    if auth_config is not None:
        document["http"]["auth"] = auth_config
    config_path = tmp_path / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(document))
    config = load_config(config_path)
    store = StateStore(state_path)
    app = make_ui_app(UiContext(store=store, config=lambda: config, listen=config.http.listen, clock=lambda: NOW))
    server = HealthServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, "ready"), app=app).start()
    return server, store, Ui(f"http://{server.address}", config_path, state_path, store)


@pytest.fixture
def make_ui(tmp_path, monkeypatch):
    started = []

    def make(auth_config: dict | None, **kwargs) -> Ui:
        server, store, ui = start_ui(tmp_path, monkeypatch, auth_config, name=f"ui{len(started)}", **kwargs)
        started.append((server, store))
        return ui

    yield make
    for server, store in started:
        server.stop()
        store.close()


TOKEN_AUTH = {"bearer_token_env": "MONITOR_UI_TOKEN"}
PROXY_AUTH = {"trusted_proxies": ["127.0.0.1"]}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FORM = {"matchers": 'alertname="SLOErrorBudgetBurnPage"\nservice="recommender"\n', "duration": "2h",
        "comment": "deploying the fix", "author": "alice"}


def listed(ui: Ui, capsys) -> list[dict]:
    """`monitor silence list --all --json` on the UI's state file, as an SRE would run it."""
    code = cli_main(["silence", "list", "--all", "--json", "--config", str(ui.config_path), "--at", NOW.isoformat()])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


# -- without http.auth, nothing is written ----------------------------------------------------


@pytest.mark.parametrize("listen, where", [("127.0.0.1:9464", "listens on loopback, 127.0.0.1:9464"),
                                           ("0.0.0.0:9464", "listens on a non-loopback address, 0.0.0.0:9464")],
                         ids=["on a loopback listener", "on a listener on every interface"])
def test_without_http_auth_every_write_is_refused_saying_to_configure_it(make_ui, listen, where):
    ui = make_ui(None, listen=listen)
    page = requests.get(f"{ui.url}/silences", timeout=10)
    assert page.status_code == 200 and "http.auth is not configured" in page.text
    refused = [
        ui.post_form("/silences", {**FORM, "csrf_token": ui.csrf()}),
        ui.post_form("/silences", {**FORM, "csrf_token": ui.csrf(BEARER)}, headers=BEARER),
        requests.post(f"{ui.url}/api/v1/silences", json={"matchers": ["service=x"], "duration": "1h",
                                                          "comment": "c"}, headers=BEARER, timeout=10),
        requests.post(f"{ui.url}/api/v1/silences", json={"matchers": ["service=x"], "duration": "1h", "comment": "c"},
                      headers={"X-Forwarded-User": "alice"}, timeout=10),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "http.auth" in response.text and where in response.text
    assert ui.silences() == []


# -- authentication -----------------------------------------------------------------------------


def test_a_valid_bearer_token_creates_a_silence_that_monitor_silence_list_shows(make_ui, capsys):
    ui = make_ui(TOKEN_AUTH)
    response = requests.post(f"{ui.url}/api/v1/silences", headers=BEARER, timeout=10, json={
        "matchers": ['service="recommender"', 'severity=~"page|ticket"'], "duration": "90m",
        "comment": "rollout", "created_by": "alice"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["createdBy"] == "alice via token" and created["status"] == "active"
    assert created["startsAt"] == "2026-11-20T03:00:00Z" and created["endsAt"] == "2026-11-20T04:30:00Z"
    [row] = listed(ui, capsys)
    assert row == created
    assert row["matchers"] == ['service="recommender"', 'severity=~"page|ticket"']
    assert requests.get(f"{ui.url}/api/v1/silences", timeout=10).json() == {"silences": [created]}
    assert requests.get(f"{ui.url}/api/v1/silences/{created['id']}", timeout=10).json() == created


@pytest.mark.parametrize("headers, status, says", [
    ({}, 401, "authentication required"),
    ({"Authorization": "Bearer wrong-token"}, 401, "not valid"),
    ({"Authorization": f"Bearer {TOKEN}x"}, 401, "not valid"),
    ({"Authorization": f"Basic {TOKEN}"}, 401, "not valid"),
    ({"X-Forwarded-User": "mallory"}, 401, "authentication required"),
], ids=["no credentials", "a wrong token", "the token with a character more", "the token under another scheme",
        "a user header with no trusted proxy configured"])
def test_a_write_without_valid_credentials_is_refused_and_writes_nothing(make_ui, headers, status, says):
    ui = make_ui(TOKEN_AUTH)
    response = requests.post(f"{ui.url}/api/v1/silences", headers=headers, timeout=10,
                             json={"matchers": ["service=x"], "duration": "1h", "comment": "c"})
    assert response.status_code == status and says in response.json()["error"], response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="monitor"'
    assert TOKEN not in response.text
    form = ui.post_form("/silences", {**FORM, "csrf_token": ui.csrf(headers)}, headers=headers)
    assert form.status_code == status and says in form.text
    assert ui.silences() == []


def test_the_user_header_counts_only_from_a_trusted_proxy(make_ui):
    # The test client connects from 127.0.0.1: trusted in one UI, not in the other.
    untrusted = make_ui({**TOKEN_AUTH, "trusted_proxies": ["10.0.0.0/8"]})
    header = {"X-Forwarded-User": "alice"}
    response = untrusted.post_form("/silences", {**FORM, "csrf_token": untrusted.csrf(header)}, headers=header)
    assert response.status_code == 401
    assert untrusted.silences() == []

    trusted = make_ui({"trusted_proxies": ["127.0.0.0/8"], "user_header": "X-Auth-Request-User"})
    header = {"X-Auth-Request-User": "bob"}
    response = trusted.post_form("/silences", {**FORM, "author": "", "csrf_token": trusted.csrf(header)},
                                 headers=header)
    assert response.status_code == 303 and response.headers["Location"].endswith("/silences")
    [silence] = trusted.silences()
    assert silence.created_by == "bob" and silence.comment == "deploying the fix"
    assert [f"{m.label}{m.op}{m.value}" for m in silence.matchers] == [
        "alertname=SLOErrorBudgetBurnPage", "service=recommender"]
    assert silence.starts_at == NOW and silence.ends_at == NOW + timedelta(hours=2)


def test_a_silence_records_the_authenticated_writer_beside_the_author_typed(make_ui):
    ui = make_ui(PROXY_AUTH)
    header = {"X-Forwarded-User": "bob"}
    assert ui.post_form("/silences", {**FORM, "author": "alice", "csrf_token": ui.csrf(header)},
                        headers=header).status_code == 303
    assert ui.post_form("/silences", {**FORM, "author": "bob", "csrf_token": ui.csrf(header)},
                        headers=header).status_code == 303
    assert sorted(s.created_by for s in ui.silences()) == ["alice via bob", "bob"]


# -- CSRF -------------------------------------------------------------------------------------------


def test_a_form_post_needs_the_csrf_token_rendered_for_the_same_writer(make_ui):
    ui = make_ui({**TOKEN_AUTH, **PROXY_AUTH})
    alice = {"X-Forwarded-User": "alice"}
    issued = int(time.time()) - auth.CSRF_TOKEN_LIFETIME_S - 60
    forged = {
        "no token": None,
        "an empty token": "",
        "a token rendered for an anonymous reader": ui.csrf(),
        "a token rendered for another user": ui.csrf({"X-Forwarded-User": "mallory"}),
        "a token rendered for the bearer token": ui.csrf(BEARER),
        "a tampered token": ui.csrf(alice)[:-1] + "0",
        "a malformed token": "not-a-token",
        "an expired token": f"{issued:x}.{auth._mac('user:alice', issued)}",
    }
    for what, token in forged.items():
        data = dict(FORM) if token is None else {**FORM, "csrf_token": token}
        response = ui.post_form("/silences", data, headers=alice)
        assert response.status_code == 403, what
        assert "CSRF" in response.text, what
    assert ui.silences() == []
    assert ui.post_form("/silences", {**FORM, "csrf_token": ui.csrf(alice)}, headers=alice).status_code == 303
    assert len(ui.silences()) == 1


@pytest.mark.parametrize("origin, accepted", [
    ({"Origin": "http://evil.example"}, False),
    ({"Referer": "http://evil.example/page"}, False),
    ({"Origin": "null"}, True),
    ({}, True),
], ids=["a cross-site Origin is refused", "a cross-site Referer is refused",
        "Origin null (a no-referrer page) leaves it to the token", "no Origin (not a browser) leaves it to the token"])
def test_a_write_from_a_page_on_another_host_is_refused(make_ui, origin, accepted):
    ui = make_ui(PROXY_AUTH)
    alice = {"X-Forwarded-User": "alice"}
    response = ui.post_form("/silences", {**FORM, "csrf_token": ui.csrf(alice)}, headers={**alice, **origin})
    assert response.status_code == (303 if accepted else 403), response.text
    same_origin = ui.post_form("/silences", {**FORM, "csrf_token": ui.csrf(alice)},
                               headers={**alice, "Origin": ui.url})
    assert same_origin.status_code == 303
    assert len(ui.silences()) == (2 if accepted else 1)


def test_the_bearer_token_api_needs_no_csrf_token_but_refuses_form_bodies(make_ui):
    ui = make_ui(TOKEN_AUTH)
    form_body = requests.post(f"{ui.url}/api/v1/silences", headers=BEARER, timeout=10,
                              data={"matchers": "service=x", "duration": "1h", "comment": "c"})
    assert form_body.status_code == 400 and "application/json" in form_body.json()["error"]
    assert ui.silences() == []


# -- bad input: 400, one line, nothing written ---------------------------------------------------------

BAD_FORMS = {
    "a matcher without an operator": ({"matchers": "service recommender"}, "invalid matcher"),
    "a regex that does not compile": ({"matchers": 'service=~"(unclosed"'}, "invalid regex"),
    "no matcher at all": ({"matchers": "\n  \n"}, "at least one matcher"),
    "matchers that would silence every alert": ({"matchers": 'service=~".*"'}, "every alert"),
    "a duration of zero": ({"duration": "0s"}, "longer than 0s"),
    "a duration in words": ({"duration": "2 hours"}, "duration"),
    "no duration": ({"duration": ""}, "duration"),
    "a duration of a century": ({"duration": "100y"}, "longer than the maximum"),
    "no comment": ({"comment": "   "}, "comment"),
    "an author with a newline": ({"author": "alice\nFAKE LOG LINE"}, "control characters"),
    "a 10 KB matcher value that does not parse": ({"matchers": "service " + "x" * 10_000}, "invalid matcher"),
}


@pytest.mark.parametrize("change, says", BAD_FORMS.values(), ids=BAD_FORMS.keys())
def test_a_bad_silence_form_is_a_400_with_one_line_and_writes_nothing(make_ui, change, says):
    ui = make_ui(TOKEN_AUTH)
    response = ui.post_form("/silences", {**FORM, **change, "csrf_token": ui.csrf(BEARER)}, headers=BEARER)
    assert response.status_code == 400
    [error] = re.findall(r'<p class="error" role="alert">(.*?)</p>', response.text, re.S)
    assert says in error and "\n" not in error and len(error) < 600, error
    assert ui.silences() == []


BAD_BODIES = {
    "matchers as one string": ({"matchers": "service=x"}, "list of strings"),
    "no matchers field": ({"matchers": None}, "is required"),
    "both duration and ends_at": ({"ends_at": "2026-11-20T05:00:00Z"}, "exactly one"),
    "an ends_at before now": ({"duration": None, "ends_at": "2026-11-20T02:00:00Z"}, "end after it starts"),
    "an ends_at that is not a time": ({"duration": None, "ends_at": "tomorrow"}, "ISO 8601"),
    "an ends_at in the year 9999": ({"duration": None, "ends_at": "9999-01-01T00:00:00Z"}, "outside the years"),
    "a misspelt field": ({"comments": "x"}, "unknown field 'comments'"),
    "a comment that is a number": ({"comment": 5}, "comment must be a string"),
}


@pytest.mark.parametrize("change, says", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_api_body_is_a_400_with_one_line_and_writes_nothing(make_ui, change, says):
    ui = make_ui(TOKEN_AUTH)
    body = {"matchers": ["service=x"], "duration": "1h", "comment": "c", **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = requests.post(f"{ui.url}/api/v1/silences", json=body, headers=BEARER, timeout=10)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert says in error and "\n" not in error, error
    assert ui.silences() == []


def test_a_body_over_the_limit_is_refused_unread(make_ui):
    ui = make_ui(TOKEN_AUTH)
    response = ui.post_form("/silences", {**FORM, "comment": "x" * 100_000, "csrf_token": ui.csrf(BEARER)},
                            headers=BEARER)
    assert response.status_code == 413
    assert ui.silences() == []


# -- expiring ---------------------------------------------------------------------------------------------


def test_a_silence_expired_from_the_page_or_the_api_ends_now_and_is_listed_as_expired(make_ui, capsys):
    ui = make_ui(TOKEN_AUTH)
    ids = [requests.post(f"{ui.url}/api/v1/silences", headers=BEARER, timeout=10,
                         json={"matchers": [f"service=s{i}"], "duration": "1h", "comment": "c"}).json()["id"]
           for i in range(3)]
    page = requests.get(f"{ui.url}/silences", headers=BEARER, timeout=10).text
    assert all(f'action="/silences/{i}/expire"' in page for i in ids)
    refused = ui.post_form(f"/silences/{ids[0]}/expire", {}, headers=BEARER)
    assert refused.status_code == 403
    expired = ui.post_form(f"/silences/{ids[0]}/expire", {"csrf_token": ui.csrf(BEARER)}, headers=BEARER)
    assert expired.status_code == 303
    deleted = requests.delete(f"{ui.url}/api/v1/silences/{ids[1]}", headers=BEARER, timeout=10)
    assert deleted.status_code == 200 and deleted.json()["status"] == "expired"
    assert requests.delete(f"{ui.url}/api/v1/silences/{ids[2]}", timeout=10).status_code == 401
    assert requests.delete(f"{ui.url}/api/v1/silences/{ids[2][:8]}", headers=BEARER, timeout=10).status_code == 404
    status = {row["id"]: (row["status"], row["endsAt"]) for row in listed(ui, capsys)}
    assert status == {ids[0]: ("expired", "2026-11-20T03:00:00Z"), ids[1]: ("expired", "2026-11-20T03:00:00Z"),
                      ids[2]: ("active", "2026-11-20T04:00:00Z")}
    page = requests.get(f"{ui.url}/silences", timeout=10).text
    assert page.count("/expire") == 1 and "Expired (2)" in page


def test_hostile_text_in_a_silence_renders_as_text(make_ui):
    ui = make_ui(TOKEN_AUTH)
    hostile = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"
    response = requests.post(f"{ui.url}/api/v1/silences", headers=BEARER, timeout=10, json={
        "matchers": [f'service="{hostile}"'], "duration": "1h", "comment": hostile, "created_by": hostile})
    assert response.status_code == 201, response.text
    page = requests.get(f"{ui.url}/silences", timeout=10).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- config ---------------------------------------------------------------------------------------------------

BAD_AUTH = {
    "an empty auth section": ("auth: {}", 3, "needs bearer_token_env"),
    "an inline token": ("auth:\n    bearer_token: hunter22", 4, "secrets are never inline"),
    "both a token variable and a token file": (
        "auth:\n    bearer_token_env: A\n    bearer_token_file: /x", 5, "not both"),
    "a proxy that is not an address": ("auth:\n    trusted_proxies: [proxy.internal]", 4, "not an IP address"),
    "a CIDR block with host bits": ("auth:\n    trusted_proxies: [10.0.0.1/8]", 4, "did you mean '10.0.0.0/8'"),
    "trusting every address": ("auth:\n    trusted_proxies: ['::/0']", 4, "trusts every address"),
    "a header name with a space": (
        "auth:\n    trusted_proxies: [10.0.0.1]\n    user_header: X User", 5, "not a valid HTTP header name"),
    "the Authorization header as the user header": (
        "auth:\n    trusted_proxies: [10.0.0.1]\n    user_header: Authorization", 5, "something else"),
}


@pytest.mark.parametrize("auth_yaml, line, says", BAD_AUTH.values(), ids=BAD_AUTH.keys())
def test_a_bad_http_auth_section_is_one_line_naming_file_line_and_field(tmp_path, capsys, auth_yaml, line, says):
    path = tmp_path / "monitor.yaml"
    path.write_text(f"http:\n  listen: 127.0.0.1:9464\n  {auth_yaml}\n")
    outcome = run_in_process(["check", "--config", path], capsys)
    assert_handled(outcome, re.compile(re.escape(f"{path}:{line}: ") + r".*http\.auth"), max_lines=2)
    assert says in outcome.stderr


def test_a_missing_bearer_token_stops_the_daemon_at_startup_naming_the_variable(tmp_path, monkeypatch):
    from tests.hostile import run_process

    monkeypatch.delenv("MONITOR_UI_TOKEN_UNSET", raising=False)
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"state": {"path": str(tmp_path / "s.db")},
                                    "http": {"listen": "127.0.0.1:0",
                                             "auth": {"bearer_token_env": "MONITOR_UI_TOKEN_UNSET"}}}))
    outcome = run_process(["run", "--config", path], timeout=30)
    assert outcome.code == 1, outcome.stderr
    assert "MONITOR_UI_TOKEN_UNSET" in outcome.stderr and "Traceback" not in outcome.stderr


@pytest.mark.parametrize("listen, loopback", [
    ("127.0.0.1:9464", True), ("127.0.0.5:9464", True), ("[::1]:9464", True), ("localhost:9464", True),
    (":9464", False), ("0.0.0.0:9464", False), ("[::]:9464", False), ("10.0.0.7:9464", False),
    ("monitor.internal:9464", False),
], ids=lambda value: str(value))
def test_which_listeners_are_loopback(listen, loopback):
    assert auth.is_loopback_listener(listen) is loopback


def test_a_reload_naming_a_missing_bearer_token_is_rejected_and_the_running_config_kept(tmp_path, monkeypatch):
    from monitor.daemon import Daemon

    monkeypatch.delenv("MONITOR_UI_TOKEN_LATER", raising=False)
    path = tmp_path / "monitor.yaml"
    base = {"state": {"path": str(tmp_path / "s.db")}, "http": {"listen": "127.0.0.1:0"}}
    path.write_text(yaml.safe_dump(base))
    daemon = Daemon(str(path), report_writer=None)
    try:
        path.write_text(yaml.safe_dump({**base, "http": {"listen": "127.0.0.1:0",
                                                         "auth": {"bearer_token_env": "MONITOR_UI_TOKEN_LATER"}}}))
        assert daemon.reload() is False and daemon.config.http.auth is None
        monkeypatch.setenv("MONITOR_UI_TOKEN_LATER", "a-token-set-later")
        assert daemon.reload() is True and daemon.config.http.auth.bearer_token_env == "MONITOR_UI_TOKEN_LATER"
    finally:
        daemon._stop_outbox(10)
        daemon.source.close()
        daemon.store.close()


def test_the_bearer_token_may_come_from_a_file_and_its_trailing_newline_is_not_part_of_it(make_ui, tmp_path):
    token_file = tmp_path / "ui-token"
    token_file.write_text("token-from-a-file-42\n")
    ui = make_ui({"bearer_token_file": str(token_file)})
    body = {"matchers": ["service=x"], "duration": "1h", "comment": "c"}
    good = requests.post(f"{ui.url}/api/v1/silences", json=body, timeout=10,
                         headers={"Authorization": "Bearer token-from-a-file-42"})
    assert good.status_code == 201 and good.json()["createdBy"] == "token"
    bad = requests.post(f"{ui.url}/api/v1/silences", json=body, timeout=10, headers=BEARER)
    assert bad.status_code == 401
    assert len(ui.silences()) == 1


def test_a_standby_replica_takes_silence_writes_though_its_cycles_are_fenced_out(make_ui):
    """A silence is an operator's write, not leader work: the UI of a replica that does not lead
    (its store's fence refuses every leader write) still creates and expires silences."""
    from monitor.ha import LeaderLease
    from monitor.store import FencedOut

    ui = make_ui(TOKEN_AUTH)
    store = StateStore(ui.state_path)  # another reader: the fence is per store, installed on the UI's
    # The real fence of a replica that has not taken the lease (it never reaches the database).
    standby = LeaderLease(connect=lambda: None, replica="standby", ttl_s=30)
    ui_store = ui.store
    ui_store.set_fence(standby.check)
    with pytest.raises(FencedOut):  # the control: leader work is refused on this store
        with ui_store.transaction() as conn:
            conn.execute("DELETE FROM silences")
    response = requests.post(f"{ui.url}/api/v1/silences", headers=BEARER, timeout=10, json={
        "matchers": ['service="recommender"'], "duration": "1h", "comment": "standby", "created_by": "bob"})
    assert response.status_code == 201, response.text
    silence_id = response.json()["id"]
    assert requests.delete(f"{ui.url}/api/v1/silences/{silence_id}", headers=BEARER, timeout=10).status_code == 200
    [silence] = AlertRepository(store).silences()
    assert silence.id == silence_id and silence.ends_at == NOW
    store.close()
