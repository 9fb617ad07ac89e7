"""The model report: complete, equal to the stored evaluation, safe with hostile text, reused, good-looking."""

from __future__ import annotations

import base64
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gateway_site.reports import charts, render, services
from kit.contracts import example, storage
from kit.errors import AppError, PeerUnavailable
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"
HOSTILE_NOTE = 'Looks good. <img src="http://127.0.0.1:9/x"> <script>alert(1)</script>'


def digit_image(value: int) -> str:
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12 + value % 3 : 15 + value % 3] = 255
    return base64.b64encode(image.tobytes()).decode()


def confusion_matrix() -> list[list[int]]:
    rng = np.random.default_rng(4)
    matrix = np.diag(rng.integers(40, 60, 10))
    for _ in range(25):
        i, j = rng.integers(0, 10, 2)
        if i != j:
            matrix[i, j] += rng.integers(1, 4)
    return matrix.tolist()


@pytest.fixture
def version(fake_peers):
    matrix = confusion_matrix()
    total = int(np.sum(matrix))
    correct = int(np.trace(matrix))
    per_class = {str(d): {"precision": 0.9 + d / 100, "recall": 0.95 - d / 200, "f1": 0.92, "support": int(sum(matrix[d]))}
                 for d in range(10)}
    model = example(
        storage.ModelVersion, id=7, version="v7", architecture="cnn", parameter_count=23946, created_by="engineer",
        created_at="2026-11-20T10:00:00Z", aliases=["candidate"], base_version=3, run=12,
        weights_sha256="ab" * 32, weights_size=98765, datasets=[1], note=HOSTILE_NOTE,
        hyperparameters={"epochs": 3, "width": 16, "learning_rate": 0.006},
        metrics={
            "accuracy": correct / total, "evaluated_on": total, "macro_f1": 0.9234, "per_class": per_class,
            "confusion_matrix": matrix, "train_seconds": 12.5, "images_per_second": 2100.0,
            "curves": [{"epoch": e, "loss": 1 / e, "train_accuracy": 0.8 + e / 50, "val_accuracy": 0.82 + e / 50,
                        "seconds": e * 4.0, "eta_s": 0} for e in (1, 2, 3)],
            "confident_mistakes": [{"index": i, "label": i % 10, "predicted": (i + 3) % 10, "confidence": 0.97,
                                    "image": digit_image(i)} for i in range(12)],
            "split": {"dataset_id": 1, "train": 4500, "validation": 500, "fraction": 0.1, "seed": 0},
        },
    )
    fake_peers["storage"].versions[7] = model
    fake_peers["storage"].alias_targets["production"] = 3
    fake_peers["storage"].versions[3] = {**model, "id": 3, "version": "v3", "aliases": ["production"], "note": ""}
    fake_peers["storage"].ledger = [example(storage.AliasChange, changed_at="2026-11-21T09:00:00Z", alias="candidate",
                                            to_version=7, actor="engineer", reason="fine-tune <b>of</b> v3")]
    fake_peers["ml"].comparison = dict(
        evaluated_on=500, accuracy={"baseline": 0.95, "candidate": 0.96, "delta": 0.01}, fixed_count=7, broken_count=2,
        per_class={str(d): {"precision": 0.01, "recall": -0.002 if d == 4 else 0.004, "f1": 0.003} for d in range(10)},
        fixed=[{"index": 0, "label": 4, "before": 9, "after": 4, "image": digit_image(1)}],
        broken=[{"index": 1, "label": 1, "before": 1, "after": 7, "image": digit_image(2)}],
    )
    return model


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_the_pdf_shows_the_version_accuracy_every_class_and_the_confusion_counts(api_as, version, tmp_path):
    response = api_as("viewer").get("/api/models/7/report.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content, tmp_path)
    assert "Model report v7" in text
    assert f"{version['metrics']['accuracy']:.4f}" in text
    for digit in range(10):
        assert f"class {digit}" in text
    matrix = version["metrics"]["confusion_matrix"]
    confusion_part = text[text.index("Confusion matrix"):text.index("Most confident mistakes")]
    rows = [[int(v) for v in line.split()] for line in confusion_part.splitlines()
            if len(line.split()) == 11 and all(v.isdigit() for v in line.split())]
    assert rows == [[label, *row] for label, row in enumerate(matrix)]
    assert "fine-tune <b>of</b> v3" in text, "user text is escaped, not interpreted"
    assert "v3 (fine-tune)" in text and "7 fixed, 2 broken" in text


def test_a_hostile_note_is_printed_as_text_and_fetches_nothing(api_as, version, tmp_path, monkeypatch):
    fetched = []
    original = render.InlineOnlyFetcher.fetch
    monkeypatch.setattr(render.InlineOnlyFetcher, "fetch", lambda self, url, headers=None: fetched.append(url) or original(self, url, headers))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    version["note"] = HOSTILE_NOTE + f' <img src="http://127.0.0.1:{port}/y"> <link rel="stylesheet" href="http://127.0.0.1:{port}/s.css">'
    text = pdf_text(api_as("viewer").get("/api/models/7/report.pdf").content, tmp_path)
    assert '<img src="http://127.0.0.1:9/x">' in text and "<script>alert(1)</script>" in text
    assert fetched and all(url.startswith("data:") for url in fetched), "only the inline images were read"
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()
    for url in ("http://127.0.0.1:9/x", "file:///etc/passwd", "https://example.org/a.png"):
        with pytest.raises(render.NetworkRefused):
            original(render.InlineOnlyFetcher(), url)


def test_a_report_is_rendered_once_and_reused_until_its_data_changes(api_as, version, monkeypatch):
    calls = []
    real = render.render_pdf
    monkeypatch.setattr(services, "render_pdf", lambda html: calls.append(1) or real(html))
    first = api_as("viewer").get("/api/models/7/report.pdf").content
    again = api_as("viewer").get("/api/models/7/report.pdf").content
    assert first == again and len(calls) == 1
    api_as("engineer").patch("/api/models/7", {"note": "re-checked on new data"}, format="json")
    api_as("viewer").get("/api/models/7/report.pdf")
    assert len(calls) == 2


def test_a_report_without_its_comparison_is_shown_but_not_kept(api_as, version, fake_peers):
    def down(*args):
        from kit.errors import PeerUnavailable

        raise PeerUnavailable("ml_svc", "connection refused or reset")

    fake_peers["ml"].compare = down
    html = api_as("viewer").get("/api/models/7/report.html").content.decode()
    assert "The comparison could not be computed: ml_svc is unavailable" in html
    assert fake_peers["storage"].reports == {}


def stored_comparison(against: int) -> dict:
    return {"against": {"id": against, "version": f"v{against}"}, "evaluated_on": 500,
            "accuracy": {"baseline": 0.91, "candidate": 0.93, "delta": 0.02}, "fixed_count": 13, "broken_count": 3,
            "per_class": {str(d): {"precision": 0.0, "recall": 0.0, "f1": -0.0123 if d == 5 else 0.0} for d in range(10)},
            "fixed": [], "broken": []}


def test_the_comparison_stored_at_training_is_shown_without_asking_ml(api_as, version, fake_peers):
    fake_peers["ml"].compare = lambda *args: pytest.fail("ml_svc was asked for a comparison the version carries")
    version["metrics"]["comparison"] = stored_comparison(against=3)  # 3 serves in production
    html = api_as("viewer").get("/api/models/7/report.html").content.decode()
    assert "Against v3 (v3)" in html and "13 fixed, 3 broken" in html and "-0.0123" in html


def test_a_stored_comparison_with_a_former_production_is_asked_for_again(api_as, version, fake_peers):
    version["metrics"]["comparison"] = stored_comparison(against=2)  # since then, production moved to 3
    html = api_as("viewer").get("/api/models/7/report.html").content.decode()
    assert "7 fixed, 2 broken" in html and "13 fixed" not in html


def test_the_json_report_and_the_html_page(api_as, client, users, version):
    body = api_as("viewer").get("/api/models/7/report.json").json()
    assert body["model"]["id"] == 7 and body["production_id"] == 3 and "torch" in body["software"]
    assert api_as("viewer").get("/api/models/7/report.docx").status_code == 404
    client.login(username="viewer", password=PASSWORD)
    assert "Model versions" in client.get("/models").content.decode()
    page = client.get("/models/7/report.html").content.decode()
    assert "Model report v7" in page and "&lt;img src=&quot;http://127.0.0.1:9/x&quot;&gt;" in page
    download = client.get("/models/7/report.pdf")
    assert download["Content-Disposition"] == 'attachment; filename="model-v7-report.pdf"'


def test_the_report_lists_the_versions_evaluations_on_whole_datasets(api_as, client, users, version, fake_peers):
    fake_peers["storage"].evaluation_rows = [example(storage.Evaluation, id=4, model_version=7, dataset=12,
                                                     metrics={"accuracy": 0.98765, "macro_f1": 0.9871, "evaluated_on": 10000},
                                                     created_by="engineer")]
    assert api_as("viewer").get("/api/models/7/report.json").json()["evaluations"][0]["dataset"] == 12
    client.login(username="viewer", password=PASSWORD)
    page = client.get("/models/7/report.html").content.decode()
    assert "Evaluations on whole datasets" in page and "#12" in page and "0.9877" in page and "10000" in page


def test_the_pages_render_readably_at_a4(api_as, version, tmp_path):
    """PNG pages of the PDF as artifacts: A4, nothing overflowing the page, every image decoded."""
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(api_as("viewer").get("/api/models/7/report.pdf").content)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "595.276 x 841.89" in info or "595.28 x 841.89" in info, info
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(ARTIFACTS / "page")], check=True)
    pages = sorted(ARTIFACTS.glob("page-*.png"))
    assert 1 <= len(pages) <= 6
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert len(images.strip().splitlines()) - 2 >= 12, "the mistakes gallery and comparison samples are embedded"
    from PIL import Image

    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"))
        assert pixels[:, -8:].min() > 200, f"{page.name}: something runs into the right margin"


def curves(count: int) -> list[dict]:
    return [{"epoch": e, "loss": 0.9 / e, "train_accuracy": 0.90 + e / 400, "val_accuracy": 0.91 + e / 500}
            for e in range(1, count + 1)]


def svg_elements(svg: str) -> list:
    import xml.etree.ElementTree as ElementTree

    return list(ElementTree.fromstring(svg).iter())  # well-formed, or this raises


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (0.8731, 0.9912), (0.0213, 2.31), (5.0, 5.0), (-0.4, 0.3)])
def test_chart_ticks_are_round_and_cover_the_values(low, high):
    ticks = charts.nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 8
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1
    mantissa = float(f"{steps.pop():e}".split("e")[0])
    assert mantissa in (1.0, 2.0, 5.0)


def test_training_curves_draw_each_series_and_keep_few_elements():
    elements = svg_elements(charts.training_curves_svg(curves(25)))
    lines = [e for e in elements if e.tag.endswith("polyline")]
    assert len(lines) == 3, "loss, train accuracy, held-out accuracy"
    assert all(len(line.get("points").split()) == 25 for line in lines)
    assert len(elements) < 100, "small enough to cost WeasyPrint little"
    labels = [e.text for e in elements if e.tag.endswith("text")]
    assert {"training loss", "accuracy", "train", "held out", "epoch"} <= set(labels)
    assert all(not label.startswith("-") for label in labels), "no axis below zero for losses and accuracies"


def test_a_single_epoch_is_a_visible_point():
    elements = svg_elements(charts.training_curves_svg(curves(1)))
    dots = [e for e in elements if e.tag.endswith("circle")]
    assert len(dots) == 3
    assert charts.training_curves_svg([]) == ""


def test_each_most_confident_mistake_shows_why_the_model_was_sure(api_as, version, fake_peers):
    html = api_as("viewer").get("/api/models/7/report.html").content.decode()
    assert html.count('alt="why ') == 12 and "Beside each digit, why the model was sure" in html
    mistakes = version["metrics"]["confident_mistakes"]
    assert fake_peers["ml"].overlaid == [(7, [m["image"] for m in mistakes], None)], "v7's own answers, in one call"
    assert fake_peers["storage"].reports, "a whole report is kept"


@pytest.mark.parametrize("failure", [PeerUnavailable("ml_svc", "connection refused or reset"),
                                     AppError("overloaded", "ml_svc is busy", status=503)])
def test_a_report_without_its_explanations_shows_the_mistakes_and_is_not_kept(api_as, version, fake_peers, failure):
    def down(**kwargs):
        raise failure

    fake_peers["ml"].overlays = down
    html = api_as("viewer").get("/api/models/7/report.html").content.decode()
    assert 'alt="why ' not in html and html.count('alt="true ') == 12
    assert fake_peers["storage"].reports == {}
