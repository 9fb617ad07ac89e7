"""Safe rollout through the gateway: the promotion gate and its override, the canary share, shadow answers kept out of
what users see, and what the Console, Models page and dashboard show of it (peers are the in-memory fakes)."""

import pytest

from gateway_site.accounts.models import AuditEvent
from kit.contracts import check, example, gateway, storage

pytestmark = pytest.mark.django_db
DIGIT = {"pixels": [[0] * 28] * 28}


@pytest.fixture
def serving(fake_peers):
    """v1 serves, v2 is the candidate."""
    store = fake_peers["storage"]
    store.set_alias("production", model_version_id=1, actor="admin", reason="first")
    store.set_alias("candidate", model_version_id=2, actor="engineer", reason="trained")
    return store


def figures(count: int, agreement: float) -> dict:
    return example(storage.ShadowStats, model_version=2, count=count, agreement=agreement,
                   confusion=[[0] * 10 for _ in range(10)])


def weak(fake_peers, candidate=0.90, baseline=0.98):
    fake_peers["ml"].comparison = {"accuracy": {"baseline": baseline, "candidate": candidate,
                                                "delta": round(candidate - baseline, 5)}, "evaluated_on": 500}


def promote(client, version, **body):
    return client.post(f"/api/models/{version}/promote", {"reason": "", **body}, format="json")


def test_a_weak_candidate_is_refused_by_the_gate_with_its_figures_and_nothing_moves(api_as, fake_peers, serving):
    weak(fake_peers)
    serving.shadow_figures[2] = figures(250, 0.93)
    answer = promote(api_as("admin"), 2, reason="looks fine")
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "gate_refused" and "90.00%" in error["message"] and "98.00%" in error["message"]
    gate = check(error["details"]["gate"], gateway.Gate)
    assert [(c["name"], c["passed"]) for c in gate["checks"]] == [("held_out_accuracy", False), ("shadow_agreement", True)]
    assert serving.alias_targets["production"] == 1, "a refused promotion moves nothing"
    assert AuditEvent.objects.filter(action="model.promote.refused", target="model:2").exists()


@pytest.mark.parametrize("count, agreement, passed", [(199, 0.99, False), (200, 0.89, False), (200, 0.9, True)])
def test_the_gate_needs_enough_shadow_predictions_that_agree_enough(api_as, fake_peers, serving, count, agreement, passed):
    weak(fake_peers, candidate=0.976)  # 0.4 points below: within the 0.5-point margin
    serving.shadow_figures[2] = figures(count, agreement)
    gate = api_as("viewer").get("/api/models/2/gate").json()
    assert gate["checks"][0]["passed"] and gate["checks"][1]["passed"] is passed and gate["passed"] is passed
    assert (promote(api_as("admin"), 2).status_code == 200) is passed


def test_an_override_needs_a_reason_and_the_ledger_records_it_with_the_gates_figures(api_as, fake_peers, serving):
    weak(fake_peers)
    admin = api_as("admin")
    refused = promote(admin, 2, override=True, reason="   ")
    assert refused.status_code == 400 and refused.json()["error"]["details"] == {"reason": "required with override"}
    assert serving.alias_targets["production"] == 1
    moved = promote(admin, 2, override=True, reason="users asked for it")
    assert moved.status_code == 200 and serving.alias_targets["production"] == 2
    entry = admin.get("/api/models/ledger", {"action": "override"}).json()["results"]
    assert len(entry) == 1 and (entry[0]["to_version"], entry[0]["actor"], entry[0]["reason"]) == (
        2, "admin", "users asked for it")
    assert entry[0]["details"]["gate"]["passed"] is False
    assert AuditEvent.objects.get(action="model.promote", target="model:2").details["override"] is True


def test_a_version_the_platform_rolled_back_is_gated_again(api_as, fake_peers, serving):
    weak(fake_peers)
    serving.set_alias("production", model_version_id=2, actor="admin", reason="try", action="override")
    serving.ledger.insert(0, example(storage.AliasChange, id=97, alias="production", action="auto-rollback",
                                     from_version=2, to_version=1, actor="system"))
    serving.alias_targets["production"] = 1
    gate = api_as("viewer").get("/api/models/2/gate").json()
    assert gate["exempt"] is None and not gate["passed"], "it served, and failed: no free pass back"


def test_the_first_production_a_candidate_and_a_rollback_to_a_version_that_served_are_not_gated(api_as, fake_peers):
    weak(fake_peers)
    admin = api_as("admin")
    assert promote(admin, 1).status_code == 200, "nothing served yet"
    assert promote(admin, 2, alias="candidate").status_code == 200, "the gate guards production only"
    assert promote(admin, 2).status_code == 409
    promote(admin, 2, override=True, reason="try")
    gate = admin.get("/api/models/1/gate").json()
    assert gate["passed"] and gate["checks"] == [] and "served before" in gate["exempt"]
    assert promote(admin, 1, reason="roll back").status_code == 200


@pytest.mark.parametrize("status", [409, 500])  # no data to compare on; weights that fail their check
def test_the_gate_says_why_when_the_versions_cannot_be_compared_and_a_dead_ml_svc_is_a_503(api_as, fake_peers, serving,
                                                                                         status):
    from kit.errors import AppError

    def no_data(baseline_id, candidate_id):
        raise AppError("no_held_out_data", "v2 records no dataset to evaluate on", status=status)

    fake_peers["ml"].compare = no_data
    gate = api_as("viewer").get("/api/models/2/gate").json()
    assert not gate["checks"][0]["passed"] and "no dataset" in gate["checks"][0]["summary"]
    fake_peers["ml"].down = True
    del fake_peers["ml"].compare
    answer = promote(api_as("admin"), 2, reason="x")
    assert answer.status_code == 503 and serving.alias_targets["production"] == 1


@pytest.mark.parametrize("share", [0.51, -0.01, "NaN", "Infinity", "1e999", True, None, "0.2\x00", 2**64, "0.2", "０.２"])
def test_a_canary_share_outside_0_to_half_is_refused(api_as, serving, share):
    answer = api_as("admin").post("/api/rollout/canary", {"share": share}, format="json")
    assert answer.status_code == 400 and serving.canary_share == 0.0


def test_the_canary_share_moves_and_the_ledger_and_audit_say_so(api_as, serving):
    state = api_as("admin").post("/api/rollout/canary", {"share": 0.2, "reason": "a fifth"}, format="json").json()
    assert state["canary_share"] == 0.2 and state["candidate"]["id"] == 2
    change = api_as("viewer").get("/api/models/ledger", {"action": "canary"}).json()["results"][0]
    assert (change["details"], change["reason"]) == ({"from": 0.0, "to": 0.2}, "a fifth")
    assert AuditEvent.objects.get(action="rollout.canary").details == {"share": 0.2, "reason": "a fifth"}


def test_without_a_candidate_the_canary_is_a_409(api_as, fake_peers):
    fake_peers["storage"].set_alias("production", model_version_id=1, actor="admin", reason="")
    answer = api_as("admin").post("/api/rollout/canary", {"share": 0.2}, format="json")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "no_candidate"


def test_live_predictions_carry_the_user_and_the_history_keeps_the_shadow_answer_the_user_never_sees(api_as, fake_peers):
    fake_peers["ml"].shadow = {"model_version_id": 2, "digit": 3, "confidence": 0.6}
    client = api_as("viewer")
    single = client.post("/api/predictions", DIGIT, format="json").json()
    batch = client.post("/api/predictions/batch", {"images": [DIGIT, DIGIT]}, format="json").json()
    assert "shadow" not in single and all("shadow" not in r for r in batch["results"])
    check(batch, gateway.BatchPredictionAnswer)
    assert fake_peers["ml"].routes == ["viewer"] * 3
    rows = fake_peers["storage"].predictions
    assert len(rows) == 3
    shadows = fake_peers["storage"].shadows
    assert sorted(shadows) == sorted(row["id"] for row in rows), "each live prediction is recorded with its shadow"
    assert all(s == {"model_version_id": 2, "digit": 3, "confidence": 0.6} for s in shadows.values())
    client.post("/api/predictions", {**DIGIT, "model_id": 1}, format="json")
    assert fake_peers["ml"].routes[-1] is None, "a request naming its version is no live traffic"


def test_a_user_in_the_canary_is_answered_and_recorded_as_the_candidate(api_as, fake_peers):
    fake_peers["ml"].canary_users = frozenset({"viewer"})
    single = api_as("viewer").post("/api/predictions", DIGIT, format="json").json()
    batch = api_as("viewer").post("/api/predictions/batch", {"images": [DIGIT]}, format="json").json()
    other = api_as("other_viewer").post("/api/predictions", DIGIT, format="json").json()
    assert single["model"]["id"] == 2 and batch["model"]["id"] == 2 and other["model"]["id"] == 1
    check(batch, gateway.BatchPredictionAnswer)
    recorded = sorted((row["user"], row["model"]["id"]) for row in fake_peers["storage"].predictions)
    assert recorded == [("other_viewer", 1), ("viewer", 2), ("viewer", 2)]


def test_the_rollout_overview_has_the_candidates_shadow_figures_gate_and_a_recent_rollback(api_as, fake_peers, serving):
    serving.shadow_figures[2] = figures(300, 0.95)
    serving.ledger.insert(0, example(storage.AliasChange, id=98, alias="production", action="auto-rollback",
                                     from_version=3, to_version=1, actor="system", reason="long ago",
                                     changed_at="2020-01-01T00:00:00Z"))
    assert api_as("viewer").get("/api/rollout").json()["alert"] is None, "a rollback of long ago is no alert"
    serving.ledger.insert(0, example(storage.AliasChange, id=99, alias="production", action="auto-rollback",
                                     from_version=3, to_version=1, actor="system", reason="correction rate 20%",
                                     changed_at="2099-01-01T00:00:00Z"))
    overview = check(api_as("viewer").get("/api/rollout").json(), gateway.Rollout)
    assert overview["shadow"]["count"] == 300 and overview["gate"]["passed"] and overview["alert"]["id"] == 99


def test_the_console_shows_the_gate_next_to_the_promote_button_and_offers_the_override(client, users, fake_peers, serving):
    weak(fake_peers)
    serving.shadow_figures[2] = figures(40, 0.95)
    client.force_login(users["admin"])
    page = client.get("/console").content.decode()
    assert 'id="gate-status"' in page and "refuses" in page and "40 live predictions; 200 needed" in page
    assert 'name="override"' in page and 'id="canary-form"' in page
    refused = client.post("/console/promote", {"version_id": "2", "alias": "production", "reason": "try"})
    assert refused.status_code == 400 and "The gate refused v2" in refused.content.decode()
    moved = client.post("/console/promote", {"version_id": "2", "alias": "production", "reason": "try",
                                             "override": "on"})
    assert moved.status_code == 200 and "past the gate" in moved.content.decode()
    assert serving.alias_targets["production"] == 2
    back = client.post("/console/promote", {"version_id": "1", "alias": "production", "reason": "back",
                                            "override": "on"})
    assert "past the gate" not in back.content.decode(), "a rollback passes the gate: no override recorded"
    ledger = client.get("/console").content.decode()
    assert 'class="ledger-override"' in ledger


def test_the_console_sets_the_canary_share_in_percent(client, users, serving):
    client.force_login(users["admin"])
    answer = client.post("/console/canary", {"percent": "20", "reason": "a fifth"})
    assert answer.status_code == 200 and "v2 now answers 20 % of users" in answer.content.decode()
    assert serving.canary_share == 0.2
    for bad in ("51", "-1", "²", "1e1", "20\x00"):
        assert client.post("/console/canary", {"percent": bad}).status_code == 400
    assert serving.canary_share == 0.2
    page = client.get("/console").content.decode()
    assert "0 % → 20 % of users to v2" in page


def test_the_models_page_shows_the_candidates_live_figures_and_the_dashboard_a_recent_rollback(client, users, fake_peers, serving):
    serving.shadow_figures[2] = figures(300, 0.95)
    client.force_login(users["viewer"])
    models = client.get("/models").content.decode()
    assert "95.0 %" in models and "passes" in models
    assert 'id="rollback-alert"' not in client.get("/dashboard").content.decode()
    serving.ledger.insert(0, example(storage.AliasChange, id=99, alias="production", action="auto-rollback",
                                     from_version=2, to_version=1, actor="system",
                                     reason="correction rate 20.0% of v2", changed_at="2099-01-01T00:00:00Z"))
    dashboard = client.get("/dashboard").content.decode()
    assert 'id="rollback-alert"' in dashboard and "from v2 to v1" in dashboard and "correction rate 20.0% of v2" in dashboard


def test_a_refused_promotion_is_an_event_for_the_webhooks(api_as, fake_peers, serving):
    weak(fake_peers)
    promote(api_as("admin"), 2, reason="try")
    [(event_type, data)] = fake_peers["storage"].events
    assert event_type == "gate.refused" and data["model_version"] == 2 and data["actor"] == "admin"
    assert data["gate"]["passed"] is False


def test_admins_register_list_and_delete_webhooks_and_read_the_deliveries(api_as, fake_peers):
    admin = api_as("admin")
    made = admin.post("/api/webhooks", {"url": "https://hooks.example.com/x", "events": ["alias.moved"]}, format="json")
    assert made.status_code == 201 and len(made.json()["secret"]) == 64
    check(made.json(), storage.NewWebhook)
    listed = check(admin.get("/api/webhooks").json(), gateway.WebhookPage)
    assert [h["id"] for h in listed["results"]] == [made.json()["id"]] and "secret" not in listed["results"][0]
    assert "next" not in listed, "storage's internal links stay inside"
    for bad in ({"url": "https://x.example/h", "events": ["nonsense"]}, {"url": "https://x.example/h", "events": []},
                {"url": "http://x.example/h", "events": ["alias.moved"]}, {"url": "x" * 600, "events": ["alias.moved"]}):
        assert admin.post("/api/webhooks", bad, format="json").status_code == 400, bad
    fake_peers["storage"].delivery_rows = [example(storage.Delivery, id=4, webhook=made.json()["id"], status="failed",
                                                   attempts=6, last_status_code=500, last_error="answered 500")]
    deliveries = check(admin.get("/api/webhooks/deliveries", {"status": "failed"}).json(), gateway.DeliveryPage)
    assert deliveries["results"][0]["attempts"] == 6
    assert admin.get("/api/webhooks/deliveries", {"webhook": "²"}).status_code == 400
    assert admin.delete(f"/api/webhooks/{made.json()['id']}").status_code == 204
    assert admin.delete(f"/api/webhooks/{made.json()['id']}").status_code == 404
    assert AuditEvent.objects.filter(action__in=["webhook.create", "webhook.delete"]).count() == 2


def test_the_console_registers_a_webhook_shows_its_secret_once_and_lists_deliveries(client, users, fake_peers, serving):
    client.force_login(users["admin"])
    page = client.post("/console/webhooks", {"url": "https://hooks.example.com/x", "events": ["alias.moved", "drift.alert"]})
    text = page.content.decode()
    assert page.status_code == 200 and 'id="new-hook-secret"' in text and "f" * 64 in text
    again = client.get("/console").content.decode()
    assert "f" * 64 not in again and "https://hooks.example.com/x" in again
    assert client.post("/console/webhooks", {"url": "https://hooks.example.com/x"}).status_code == 400
    fake_peers["storage"].delivery_rows = [example(storage.Delivery, id=4, status="pending", attempts=2,
                                                   last_status_code=503, last_error="answered 503",
                                                   event={"id": 1, "type": "alias.moved"})]
    listed = client.get("/console").content.decode()
    assert 'id="deliveries"' in listed and "answered 503" in listed
    hook_id = next(iter(fake_peers["storage"].hooks))
    assert client.post("/console/webhooks/delete", {"webhook_id": str(hook_id)}).status_code == 200
    assert fake_peers["storage"].hooks == {}


def test_the_dashboard_shows_todays_drift_and_the_api_each_measure(client, users, api_as, fake_peers, serving):
    client.force_login(users["viewer"])
    assert "no predictions today" in client.get("/dashboard").content.decode()
    fake_peers["storage"].today = example(storage.ProductionDay, model_version=1, day="2026-12-03", predictions=300,
                                          drift=0.41, worst="input.ink_fraction", level="significant")
    dashboard = client.get("/dashboard").content.decode()
    assert "significant" in dashboard and "PSI 0.41 (input.ink_fraction) over 300 predictions" in dashboard
    drift = check(api_as("viewer").get("/api/models/1/drift", {"days": "3"}).json(), storage.Drift)
    assert drift["days"][0]["level"] == "significant"
    assert api_as("viewer").get("/api/models/1/drift", {"days": "٣"}).status_code == 400
