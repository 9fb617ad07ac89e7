"""kit.contracts says exactly how an answer differs from its shape, and fakes built on it answer true to shape."""

from typing import Literal, NotRequired, TypedDict

import pytest

from kit.contracts import check, example, problems
from kit.contracts.storage import ModelVersion, Run
from kit.fakecheck import answering_as


class Ref(TypedDict):
    id: int
    version: str


class Answer(TypedDict):
    ref: Ref
    scores: list[float]
    state: Literal["ok", "failed"]
    note: str | None
    extra: NotRequired[bool]


GOOD = {"ref": {"id": 1, "version": "v1"}, "scores": [0.5, 1], "state": "ok", "note": None}


def test_a_conforming_answer_has_no_problems_with_or_without_its_optional_field():
    assert problems(GOOD, Answer) == []
    assert problems({**GOOD, "extra": True}, Answer) == []


def test_each_difference_is_named_where_it_is():
    bad = {"ref": {"id": True, "version": "v1", "secret": 1}, "scores": [0.5, "x"], "state": "odd", "note": 3}
    assert sorted(problems(bad, Answer)) == sorted([
        "answer.ref: `secret` is not in the contract (Ref)",
        "answer.ref.id: True is not int",
        "answer.scores[1]: 'x' is not float",
        "answer.state: 'odd' is not one of ['ok', 'failed']",
        "answer.note: 3 is none of str | NoneType",
    ])
    assert problems({}, Answer) == [f"answer: `{key}` is missing (Answer)" for key in ("note", "ref", "scores", "state")]


def test_check_raises_with_the_differences_and_passes_a_conforming_value_through():
    assert check(GOOD, Answer) is GOOD
    with pytest.raises(AssertionError, match="`state` is missing"):
        check({k: v for k, v in GOOD.items() if k != "state"}, Answer)


def test_an_example_conforms_and_takes_only_fields_its_shape_has():
    assert problems(example(Run, id=5, status="running"), Run) == []
    assert example(ModelVersion)["created_at"] == "2026-01-01T00:00:00Z", "a time looks like one"
    with pytest.raises(AssertionError, match="no field colour"):
        example(Run, colour="red")


class Client:
    def get(self, item_id: int) -> Answer: ...


class Fake:
    def __init__(self):
        self.stored = dict(GOOD)

    def get(self, item_id):
        return self.stored


def test_a_fake_answering_off_contract_fails_the_call_and_its_answers_are_copies():
    fake = answering_as(Fake, Client)()
    answer = fake.get(1)
    answer["state"] = "failed"
    assert fake.stored["state"] == "ok", "a caller changing an answer changes nothing in the fake"
    fake.stored["state"] = "lost"
    with pytest.raises(AssertionError, match="Fake.get.state: 'lost' is not one of"):
        fake.get(1)
