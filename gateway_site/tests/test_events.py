"""`GET /api/runs/{id}/events`: a run's progress as server-sent events, resumable with Last-Event-ID."""

import json

import pytest

from gateway_site.scenarios import events


def parsed(stream) -> list[dict]:
    """The events of a stream, each {"id", "event", "data"} (comments and the retry line left out)."""
    found = []
    for block in "".join(stream).split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in fields:
            found.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return found


def a_training(fake_peers):
    """Each poll moves run 5 on: two epochs, then success."""
    run = fake_peers["storage"].runs[5]
    run.update(status="queued", progress=0.0, epochs=[], result={})
    steps = iter([
        {"status": "running", "progress": 0.0},
        {"progress": 0.5, "epochs": [{"epoch": 1, "loss": 0.4}]},
        {},  # nothing changed since the last poll
        {"heartbeat_at": "2026-01-01T00:00:05Z"},  # the worker's heartbeat alone: no news for a watcher
        {"progress": 1.0, "epochs": [{"epoch": 1, "loss": 0.4}, {"epoch": 2, "loss": 0.2}]},
        {"status": "succeeded", "result": {"model_version_id": 9}},
    ])
    return lambda seconds: run.update(next(steps))


def test_a_watcher_sees_every_change_in_order_then_the_outcome_and_the_stream_ends(users, fake_peers):
    advance = a_training(fake_peers)
    seen = parsed(events.run_events(users["engineer"], 5, None, poll_s=0, sleep=advance))
    assert [e["event"] for e in seen] == ["progress"] * 4 + ["end"]
    assert [(e["data"]["status"], e["data"]["progress"]) for e in seen] == [
        ("queued", 0.0), ("running", 0.0), ("running", 0.5), ("running", 1.0), ("succeeded", 1.0)]
    assert [len(e["data"]["epochs"]) for e in seen] == [0, 0, 1, 2, 2]
    assert [e["id"] for e in seen] == sorted({e["id"] for e in seen}), "ids grow with every event"


def test_a_watcher_resuming_with_last_event_id_gets_only_what_it_has_not_seen(users, fake_peers):
    everything = parsed(events.run_events(users["engineer"], 5, None, poll_s=0, sleep=a_training(fake_peers)))
    resumed = parsed(events.run_events(users["engineer"], 5, everything[2]["id"], poll_s=0,
                                       sleep=a_training(fake_peers)))
    assert resumed == everything[3:]


def test_a_quiet_run_keeps_the_stream_alive_and_storage_trouble_is_said_not_fatal(users, fake_peers):
    clock = [0.0]
    storage = fake_peers["storage"]
    run = storage.runs[5]

    def sleep(seconds):
        clock[0] += 10
        storage.down = clock[0] == 20  # one poll finds storage down
        if clock[0] >= 40:
            storage.down = False
            run.update(status="failed", error="no word from the worker")

    text = "".join(events.run_events(users["engineer"], 5, None, poll_s=0, max_s=900, sleep=sleep,
                                     clock=lambda: clock[0]))
    assert ": keep-alive" in text and ": storage_svc is unavailable: connection refused or reset; retrying" in text
    assert parsed([text])[-1]["event"] == "end" and parsed([text])[-1]["data"]["error"] == "no word from the worker"


def test_the_api_streams_events_to_an_event_source_and_refuses_what_a_viewer_may_not_see(api_as, fake_peers):
    fake_peers["storage"].runs[5].update(status="succeeded", progress=1.0)
    answer = api_as("engineer").get("/api/runs/5/events", HTTP_ACCEPT="text/event-stream")
    assert answer.status_code == 200 and answer["Content-Type"] == "text/event-stream"
    assert answer["Cache-Control"] == "no-cache" and answer["X-Accel-Buffering"] == "no"
    assert [e["event"] for e in parsed(s.decode() for s in answer.streaming_content)] == ["end"]
    hidden = api_as("viewer").get("/api/runs/5/events", HTTP_ACCEPT="text/event-stream")
    assert hidden.status_code == 404, "another user's run is not theirs to watch"
    bad = api_as("engineer").get("/api/runs/5/events", HTTP_LAST_EVENT_ID="²")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_finished_run_is_one_end_event(users, fake_peers, status):
    fake_peers["storage"].runs[5].update(status=status)
    assert [e["event"] for e in parsed(events.run_events(users["engineer"], 5, None, sleep=pytest.fail))] == ["end"]


def test_past_the_open_streams_a_process_holds_a_watcher_gets_a_503_and_a_closed_stream_frees_its_place(
        users, fake_peers, monkeypatch):
    monkeypatch.setattr(events, "_open", __import__("threading").BoundedSemaphore(1))
    held = events.run_events(users["engineer"], 5, None, poll_s=0, sleep=lambda s: None)
    with pytest.raises(events.AppError) as refused:
        events.run_events(users["engineer"], 5, None)
    assert (refused.value.status, refused.value.code) == (503, "busy")
    held.close()  # never started: Django closes it when the client has gone
    events.run_events(users["engineer"], 5, None).close()


def test_a_change_without_progress_is_still_sent(users, fake_peers):
    run = fake_peers["storage"].runs[5]
    run.update(status="running", progress=0.5, message="epoch 1")
    steps = iter([{"message": "epoch 2"}, {"status": "succeeded"}])
    seen = parsed(events.run_events(users["engineer"], 5, None, poll_s=0, sleep=lambda s: run.update(next(steps))))
    assert [e["data"]["message"] for e in seen] == ["epoch 1", "epoch 2", "epoch 2"]
