"""kit.fakecheck finds each way a fake can drift from its client."""

from kit.fakecheck import drift


class Client:
    def get(self, item_id: int, *, verbose: bool = False) -> dict: ...
    def listing(self, **filters) -> dict: ...


class Faithful:
    def get(self, item_id, *, verbose=False): ...
    def listing(self, **filters): ...
    def _helper(self): ...


class Drifted:
    def get(self, ident, *, verbose): ...  # renamed, and requires what the client makes optional
    def create(self, payload): ...  # the client has no such method


class Reordered:
    def get(self, *, item_id, verbose=False): ...


def test_a_faithful_fake_has_no_drift():
    assert drift(Faithful, Client) == []


def test_each_drift_is_named():
    problems = drift(Drifted, Client)
    assert "Drifted.create: Client has no such method" in problems
    assert "Drifted.get: does not take `item_id`, which the client takes" in problems
    assert "Drifted.get: requires `ident`, which the client does not take" in problems
    assert "Drifted.get: requires `verbose`, which the client makes optional" in problems


def test_a_fake_that_takes_by_keyword_only_what_the_client_takes_by_position_drifts():
    assert drift(Reordered, Client) == ["Reordered.get: takes `item_id` only by keyword, the client also by position"]
