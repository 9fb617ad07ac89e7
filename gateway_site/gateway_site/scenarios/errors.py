"""The error browser: a version's confusion matrix from its held-out digits, an evaluation's dataset, or the live
predictions people corrected; one cell's digits with why the version answered each; chosen digits sent to the
review queue with a label in one step."""

from __future__ import annotations

from gateway_site import peers
from gateway_site.accounts.models import audit
from gateway_site.scenarios import limits
from kit.errors import AppError
from kit.validation import MAX_ID, ascii_int

SOURCES_HELP = "held-out (the version's own held-out digits), evaluation:<id> (that evaluation's dataset) or live"
SEND_LIMIT = 100


def parse_source(raw: str | None) -> tuple[str, int | None]:
    """('held-out' | 'evaluation' | 'live', the evaluation's id)."""
    text = raw or "held-out"
    if text in ("held-out", "live"):
        return text, None
    kind, _, number = text.partition(":")
    if kind == "evaluation" and number:
        return kind, ascii_int(number, field="source", minimum=1, maximum=MAX_ID)
    raise AppError("invalid", f"source must be {SOURCES_HELP}.", details={"source": text[:100]})


def cell_numbers(query) -> dict:
    """`true` and `predicted` of a query (a cell), each a digit in ASCII or None."""
    return {name: None if query.get(name) in (None, "") else ascii_int(query[name], field=name, minimum=0, maximum=9)
            for name in ("true", "predicted")}


def _evaluation_dataset(version_id: int, evaluation_id: int) -> int:
    page = 1
    while True:
        listing = peers.storage().evaluations(version_id, page=page, page_size=100)
        for evaluation in listing["results"]:
            if evaluation["id"] == evaluation_id:
                return evaluation["dataset"]
        if not listing.get("next"):
            raise AppError("not_found", f"v{version_id} has no evaluation {evaluation_id}", status=404)
        page += 1


def error_cell(version_id: int, *, source: str | None, true: int | None, predicted: int | None) -> dict:
    """The version's confusion matrix from `source` and, if `true` and `predicted` are given, that cell's digits
    (the most confident mistakes first, at most 48), each with the overlay of why the version answered it."""
    kind, evaluation_id = parse_source(source)
    if (true is None) != (predicted is None):
        raise AppError("invalid", "Give both true and predicted to open a cell, or neither.",
                       details={"true" if true is None else "predicted": "required with the other"})
    if kind == "live":
        cell_params = {} if true is None else {"true": true, "predicted": predicted}
        answer = peers.storage().live_errors(version_id, **cell_params)
    else:
        dataset_id = _evaluation_dataset(version_id, evaluation_id) if kind == "evaluation" else None
        answer = peers.ml().errors(version_id, dataset_id=dataset_id, part="all" if kind == "evaluation" else "held-out",
                                   true=true, predicted=predicted)
    cell = answer["cell"]
    if cell and cell["items"]:
        overlays = peers.ml().overlays(model_id=version_id, images=[item["image"] for item in cell["items"]],
                                       target=predicted)["overlays"]
        cell["items"] = [{**item, "overlay_png": overlay["overlay_png"]}
                         for item, overlay in zip(cell["items"], overlays, strict=True)]
    return {"model": {"id": version_id, "version": f"v{version_id}"}, "source": source or "held-out",
            "count": answer["count"], "matrix": answer["matrix"], "cell": cell}


def send_to_review(*, username: str, label: int, images: list[str]) -> dict:
    """Canonical 28x28 images (base64 of 784 bytes, as cells give them) as samples pending review with `label`,
    all or none."""
    if not images:
        raise AppError("invalid", "Choose at least one image to send to review.", details={"images": "empty"})
    if len(images) > SEND_LIMIT:
        raise AppError("invalid", f"At most {SEND_LIMIT} images at a time.", details={"images": len(images)})
    limits.charge(username, "uploads", len(images))
    try:
        created = peers.storage().create_samples([{"image_b64": image, "label": label, "user": username}
                                                  for image in images])
    except AppError as exc:  # storage names `samples[n].image_b64`; the caller sent `images[n]`
        named = exc.details if isinstance(exc.details, dict) else {}
        images_refused = {key.replace("samples", "images").removesuffix(".image_b64"): value
                          for key, value in named.items() if key.endswith(".image_b64")}
        if exc.status >= 500 or not images_refused:
            raise
        raise AppError(exc.code, "Each image must be the base64 of 784 bytes (a cell's `image`).", status=exc.status,
                       details=images_refused) from None
    audit(actor=username, action="sample.send-to-review", target=f"samples:{created['created']}",
          details={"label": label, "samples": [s["id"] for s in created["samples"]]})
    return created
