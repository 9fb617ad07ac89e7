import hashlib

import pytest

from kit import imagepack
from storage_svc.registry.models import Blob, Dataset, ImmutableError
from tests.support import make_pack

pytestmark = pytest.mark.django_db


def post_pack(api, data, **params):
    query = "&".join(f"{k}={v}" for k, v in {"name": "d", "source": "mnist-5k", "split": "train", **params}.items())
    return api.post(f"/datasets?{query}", data=data, content_type=imagepack.CONTENT_TYPE)


def test_it_stores_a_dataset_with_checksum_and_class_counts(api):
    data = make_pack(20)
    response = post_pack(api, data, created_by="alice")
    assert response.status_code == 201
    body = response.json()
    assert body["num_samples"] == 20
    assert body["class_counts"] == {str(d): 2 for d in range(10)}
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["created_by"] == "alice"


def test_it_stores_the_same_pixels_once_when_collected_twice(api, stored_blobs):
    data = make_pack(30)
    first = post_pack(api, data).json()
    second = post_pack(api, data).json()
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    assert Blob.objects.count() == 1
    assert len(stored_blobs.keys()) == 1


def test_it_returns_the_exact_pixels_it_stored(api):
    data = make_pack(12, seed=3)
    dataset = post_pack(api, data).json()
    response = api.get(f"/datasets/{dataset['id']}/data")
    assert response.status_code == 200
    assert response.content == data


def test_a_dataset_cannot_be_changed_after_creation(api, dataset):
    row = Dataset.objects.get(pk=dataset["id"])
    row.name = "renamed"
    with pytest.raises(ImmutableError):
        row.save()
    assert api.patch(f"/datasets/{dataset['id']}", {"name": "x"}, content_type="application/json").status_code == 405
    assert Dataset.objects.get(pk=dataset["id"]).name == "digits"


@pytest.mark.parametrize(
    "body, content_type, status",
    [
        (b"not a pack", imagepack.CONTENT_TYPE, 400),
        (make_pack(5)[:-10], imagepack.CONTENT_TYPE, 400),
        (make_pack(5), "application/json", 415),
    ],
)
def test_it_refuses_bad_dataset_bodies_and_stores_nothing(api, body, content_type, status):
    response = api.post("/datasets?name=d&source=s&split=train", data=body, content_type=content_type)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert Dataset.objects.count() == 0 and Blob.objects.count() == 0


def test_it_refuses_an_unknown_split(api):
    response = post_pack(api, make_pack(5), split="holdout")
    assert response.status_code == 400
    assert Dataset.objects.count() == 0


def test_it_lists_and_filters_datasets(api):
    post_pack(api, make_pack(5), source="mnist-5k")
    post_pack(api, make_pack(6, seed=1), source="fashion-mnist")
    listing = api.get("/datasets?source=fashion-mnist").json()
    assert listing["count"] == 1
    assert listing["results"][0]["num_samples"] == 6


def test_a_worker_repeating_a_store_of_its_run_gets_the_dataset_it_already_made(api):
    run = api.post("/runs", {"kind": "collect", "params": {}, "created_by": "eve"}, content_type="application/json").json()
    url = f"/datasets?name=digits&source=mnist-5k&split=train&created_by=eve&meta=%7B%22run_id%22%3A%20{run['id']}%7D"
    first = api.post(url, data=make_pack(), content_type=imagepack.CONTENT_TYPE).json()
    again = api.post(url, data=make_pack(), content_type=imagepack.CONTENT_TYPE).json()
    assert again["id"] == first["id"] and api.get("/datasets").json()["count"] == 1
