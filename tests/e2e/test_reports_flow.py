"""A model report through the real services: PDF and HTML of a trained version, reused on the second request."""

from __future__ import annotations

import subprocess

from tests.e2e.support import Api


def test_a_trained_versions_report_downloads_as_pdf_and_is_reused(platform, tmp_path):
    version = platform.ensure_production_model()
    viewer = Api(platform.url("gateway"), "viewer", platform.demo_password)
    first = viewer.get(f"/api/models/{version['id']}/report.pdf")
    assert first.status_code == 200 and first.headers["Content-Type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(first.content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert f"Model report v{version['id']}" in text and f"{version['metrics']['accuracy']:.4f}" in text
    assert "This version is the production version." in text
    again = viewer.get(f"/api/models/{version['id']}/report.pdf")
    assert again.content == first.content, "served from storage, not rendered again"
    html = viewer.get(f"/api/models/{version['id']}/report.html")
    assert html.status_code == 200 and "Confusion matrix" in html.text
