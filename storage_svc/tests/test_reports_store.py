import pytest

from storage_svc.registry.models import Report

pytestmark = pytest.mark.django_db
KEY = "c" * 64


def test_a_report_is_stored_per_input_hash_and_found_again(api, model_version):
    url = f"/models/{model_version['id']}/report?kind=pdf&input_sha256={KEY}"
    assert api.get(url).status_code == 404
    assert api.put(url, data=b"%PDF-1.7 fake", content_type="application/octet-stream").status_code == 200
    assert api.get(url).content == b"%PDF-1.7 fake"
    api.put(url, data=b"%PDF-1.7 fake", content_type="application/octet-stream")
    assert Report.objects.count() == 1
    assert api.get(f"/models/{model_version['id']}/report?kind=pdf&input_sha256={'d' * 64}").status_code == 404
    assert api.get(f"/models/{model_version['id']}/report?kind=docx&input_sha256={KEY}").status_code == 400


def test_a_note_is_the_only_change_a_version_takes(api, model_version):
    response = api.patch(f"/models/{model_version['id']}", {"note": "checked <b>twice</b>"}, content_type="application/json")
    assert response.json()["note"] == "checked <b>twice</b>"
    assert api.patch(f"/models/{model_version['id']}", {"accuracy": 1.0}, content_type="application/json").status_code == 400
    assert api.patch("/models/999999", {"note": "x"}, content_type="application/json").status_code == 404


def test_the_ledger_can_be_read_for_one_version(api, model_version):
    api.post("/aliases/production", {"model_version_id": model_version["id"], "actor": "a", "reason": "r"},
             content_type="application/json")
    assert api.get(f"/aliases/ledger?version={model_version['id']}").json()["count"] == 1
    assert api.get("/aliases/ledger?version=999999").json()["count"] == 0
    assert api.get("/aliases/ledger?version=abc").status_code == 400
