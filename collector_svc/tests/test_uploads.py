"""Uploaded files: every accepted format read back as canonical digits, and every hostile or malformed one refused
with a 4xx naming the problem, with nothing kept."""

import base64
import gzip
import io
import os
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from collector_svc.sources.mnist5k import Mnist5kSource
from kit.digitfiles import csv_lines, idx_file, image_folders_zip, png, symlink_zip, zip_of
from kit.preprocessing import canonical_from_bytes, canonical_from_pixels


@pytest.fixture(scope="module")
def digits():
    images, labels = Mnist5kSource().load_split("train")
    return images[:40], labels[:40]


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return settings.UPLOAD_DIR


def upload(api, *files, purpose="dataset", name=""):
    payload = {"purpose": purpose, "uploaded_by": "eve", "name": name,
               "file": [io.BytesIO(data) if isinstance(data, bytes) else data for data in files]}
    for n, handle in enumerate(payload["file"]):
        handle.name = getattr(files[n], "name", None) or f"file{n}"
    return api.post("/uploads", payload)


class Named(io.BytesIO):
    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name


def all_items(api, upload_id: str, size: int = 7) -> list[dict]:
    items, offset = [], 0
    while offset is not None:
        answer = api.get(f"/uploads/{upload_id}/batch", {"offset": offset, "size": size}).json()
        items += answer["items"]
        offset = answer["next_offset"]
    return items


def pixels_of(item: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(item["image"]), np.uint8).reshape(28, 28)


def csv_bytes(images, labels) -> bytes:
    return "".join(csv_lines(images, labels)).encode()


def test_a_zip_of_digit_folders_is_read_through_the_canonical_preprocessing(api, digits, upload_dir):
    images, labels = digits
    members = {f"my digits/{int(d)}/d{n}.png": png(image, size=90, dark_on_light=n % 2 == 0)
               for n, (image, d) in enumerate(zip(images, labels, strict=True))}
    members |= {"__MACOSX/my digits/._d0.png": b"junk", "my digits/.DS_Store": b"junk"}
    answer = upload(api, Named(zip_of(members), "C:\\Users\\eve\\my digits.zip"), name="eve's digits")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["format"], body["count"], body["labelled"], body["name"]) == ("zip", 40, 40, "eve's digits")
    assert body["class_counts"] == {str(d): int((labels == d).sum()) for d in range(10)}
    assert body["files"][0]["name"] == "my digits.zip" and len(body["files"][0]["sha256"]) == 64
    items = all_items(api, body["id"])
    assert [item["label"] for item in items] == labels.tolist()
    for item, member in zip(items, [m for m in members if not m.startswith("__") and "DS_" not in m], strict=True):
        assert item["name"] == member
        assert np.array_equal(pixels_of(item), canonical_from_bytes(members[member]))
    assert api.get(f"/uploads/{body['id']}").json() == body
    assert api.delete(f"/uploads/{body['id']}").status_code == 204
    assert api.get(f"/uploads/{body['id']}").status_code == 404


@pytest.mark.parametrize("packing", ["two gzipped files", "two plain files", "zipped"])
def test_an_idx_pair_is_kept_as_given(api, digits, packing):
    images, labels = digits
    gz = packing != "two plain files"
    files = [Named(idx_file(labels, gz=gz), "train-labels-idx1-ubyte"), Named(idx_file(images, gz=gz), "train-images")]
    if packing == "zipped":
        files = [Named(zip_of({"a/train-images-idx3-ubyte.gz": files[1].getvalue(),
                               "a/train-labels-idx1-ubyte.gz": files[0].getvalue()}), "mnist.zip")]
    body = upload(api, *files).json()
    assert (body["format"], body["count"], len(body["files"])) == ("idx", 40, len(files))
    items = all_items(api, body["id"], size=40)
    assert np.array_equal(np.stack([pixels_of(i) for i in items]), images)
    assert [i["label"] for i in items] == labels.tolist()


@pytest.mark.parametrize("variant", ["with header", "without header", "gzipped"])
def test_a_csv_of_label_and_pixels_is_kept_as_given(api, digits, variant):
    images, labels = digits
    data = csv_bytes(images, labels)
    if variant == "without header":
        data = data.split(b"\n", 1)[1]
    if variant == "gzipped":
        data = gzip.compress(data)
    body = upload(api, Named(data, "digits.csv")).json()
    assert (body["format"], body["count"], body["labelled"]) == ("csv", 40, 40)
    items = all_items(api, body["id"])
    assert np.array_equal(np.stack([pixels_of(i) for i in items]), images)
    assert [i["label"] for i in items] == labels.tolist()


def test_files_to_score_may_leave_the_labels_out_and_are_canonicalised(api, digits):
    images, labels = digits
    flat = upload(api, Named(image_folders_zip(images[:5], None), "loose.zip"), purpose="score").json()
    assert (flat["count"], flat["labelled"]) == (5, 0)
    assert {i["label"] for i in all_items(api, flat["id"])} == {None}
    mixed = upload(api, Named(zip_of({"3/a.png": png(images[0]), "b.png": png(images[1])}), "m.zip"),
                   purpose="score").json()
    assert [i["label"] for i in all_items(api, mixed["id"])] == [3, None]
    pixels_only = csv_bytes(images[:3], None)
    scored = upload(api, Named(pixels_only, "kaggle-test.csv"), purpose="score").json()
    items = all_items(api, scored["id"])
    assert [i["name"] for i in items] == ["row 1", "row 2", "row 3"]
    assert np.array_equal(pixels_of(items[2]), canonical_from_pixels(images[2]))
    alone = upload(api, Named(idx_file(images[:4]), "t10k-images-idx3-ubyte.gz"), purpose="score").json()
    assert (alone["format"], alone["count"], alone["labelled"]) == ("idx", 4, 0)


def test_what_spreadsheets_and_tools_write_is_read(api, digits):
    images, labels = digits
    excel = b"\xef\xbb\xbf" + csv_bytes(images[:3], labels[:3]).replace(b"\n", b"\r\n") + b"\r\n\r\n"
    assert upload(api, Named(excel, "excel.csv")).json()["count"] == 3, "a byte-order mark and blank lines"
    two_members = gzip.compress(idx_file(images[:2], gz=False)[:1000]) + gzip.compress(idx_file(images[:2], gz=False)[1000:])
    pair = upload(api, Named(two_members, "i.gz"), Named(idx_file(labels[:2]), "l.gz")).json()
    assert pair["count"] == 2, "a gzip file of two members, as pigz or cat make"


def test_a_zip_declaring_far_more_entries_than_images_allowed_is_refused_before_it_is_read(api, settings):
    settings.UPLOAD_MAX_IMAGES = 5
    many = zip_of({f"3/{n}.png": b"" for n in range(1020)}, compression=zipfile.ZIP_STORED)
    answer = upload(api, Named(many, "many.zip"))
    assert answer.status_code == 413 and "1,020 entries" in answer.json()["error"]["message"]


def test_an_image_that_cannot_be_read_is_reported_in_its_batch_not_dropped(api, digits):
    blank = np.zeros((28, 28), np.uint8)
    data = zip_of({"4/ok.png": png(digits[0][0]), "4/blank.png": png(blank)})
    body = upload(api, Named(data, "z.zip"), purpose="score").json()
    ok, empty = all_items(api, body["id"])
    assert "image" in ok and "error" not in ok
    assert "blank" in empty["error"] and "image" not in empty and empty["label"] == 4


def huge_header_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (3000, 8)).save(buffer, format="PNG")
    return buffer.getvalue()


def one_digit_png():
    images, _ = Mnist5kSource().load_split("train")
    return png(images[0])


def lying_deflate_zip() -> bytes:
    """A deflated member that inflates to 200 MB while its headers declare 1,000 bytes (and their CRC)."""
    import struct
    import zlib

    head, declared = b"\x89PNG\r\n\x1a\n", 1000
    buffer = io.BytesIO()
    info = zipfile.ZipInfo("0/a.png")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w") as archive:
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(head)
            for _ in range(200):
                member.write(bytes(1 << 20))
    data = bytearray(buffer.getvalue())
    crc = zlib.crc32(head + bytes(declared - len(head)))
    for signature, crc_at, size_at in ((b"PK\x03\x04", 14, 22), (b"PK\x01\x02", 16, 24)):
        at = data.find(signature)
        struct.pack_into("<I", data, at + crc_at, crc)
        struct.pack_into("<I", data, at + size_at, declared)
    return bytes(data)


def bzip2_zip() -> bytes:
    return zip_of({"0/a.png": b"\x89PNG\r\n\x1a\n" + bytes(10_000)}, compression=zipfile.ZIP_BZIP2)


HOSTILE = {
    "deflate lying about its size": (lambda: [("lie.zip", lying_deflate_zip())], 400, "not_an_image", "0/a.png"),
    "bzip2 member": (lambda: [("b.zip", bzip2_zip())], 400, "unsupported_compression", "stored or deflated"),
    "gzip in gzip": (lambda: [("i.gz", gzip.compress(idx_file(np.zeros((2, 28, 28))))), ("l.gz", idx_file(np.zeros(2)))],
                     400, "suspicious_archive", "gzipped twice"),
    "gzip with trailing bytes": (lambda: [("i.gz", idx_file(np.zeros((2, 28, 28))) + b"GARBAGE"),
                                          ("l.gz", idx_file(np.zeros(2)))], 400, "corrupt_file", "after its gzip"),
    "member named dot": (lambda: [("a.zip", zip_of({".": b"x", "3/a.png": one_digit_png()}))], 400, "unsafe_name",
                         "'.'"),
    "idx of 65 dimensions": (lambda: [("i", bytes([0, 0, 8, 65]) + (1).to_bytes(4, "big") * 65 + b"\x00"),
                                      ("l", idx_file(np.zeros(1)))], 400, "corrupt_file", "holds no digits"),
    "idx of no images but vast sides": (lambda: [("i", bytes([0, 0, 8, 3]) + (0).to_bytes(4, "big")
                                                  + (0xFFFFFFFF).to_bytes(4, "big") * 2), ("l", idx_file(np.zeros(0)))],
                                        400, "corrupt_file", "holds no digits"),
    "csv comment line": (lambda: [("d.csv", b"# my digits\n3" + b",0" * 784 + b"\n")], 400, "invalid_csv", "d.csv"),
    # what is sent, as (file name, bytes) pairs -> (status, code, words the message holds)
    "zip bomb": (lambda: [("bomb.zip", zip_of({"0/a.png": b"\x89PNG\r\n\x1a\n" + bytes(60_000_000)}))],
                 400, "suspicious_archive", "decompression bomb"),
    "gzip bomb": (lambda: [("bomb.csv.gz", gzip.compress(bytes(60_000_000)))], 400, "suspicious_archive", "bomb"),
    "parent folder": (lambda: [("a.zip", zip_of({"../3/a.png": one_digit_png()}))], 400, "unsafe_name", "../3/a.png"),
    "absolute name": (lambda: [("a.zip", zip_of({"/3/a.png": one_digit_png()}))], 400, "unsafe_name", "/3/a.png"),
    "drive letter": (lambda: [("a.zip", zip_of({"C:/3/a.png": one_digit_png()}))], 400, "unsafe_name", "C:/3"),
    "backslashes": (lambda: [("a.zip", zip_of({"3\\a.png": one_digit_png()}))], 400, "unsafe_name", "a.png"),
    "symlink": (lambda: [("a.zip", symlink_zip("3/link.png", "/etc/passwd"))], 400, "symlink", "3/link.png"),
    "folder not a digit": (lambda: [("a.zip", zip_of({"cats/a.png": one_digit_png(), "3/b.png": one_digit_png()}))],
                           400, "not_digit_folder", "cats/a.png"),
    "only a folder not a digit": (lambda: [("a.zip", zip_of({"cats/a.png": one_digit_png()}))], 400,
                                  "labels_missing", "cats/a.png is not in a folder 0 to 9"),
    "folder 10": (lambda: [("a.zip", zip_of({"x/10/a.png": one_digit_png(), "x/1/b.png": one_digit_png()}))],
                  400, "not_digit_folder", "10/a.png"),
    "not an image": (lambda: [("a.zip", zip_of({"3/notes.txt": b"hello", "3/a.png": one_digit_png()}))], 400,
                     "not_an_image", "3/notes.txt"),
    "image too large": (lambda: [("a.zip", zip_of({"3/wide.png": huge_header_png()}))], 413, "image_too_large",
                        "3000x8"),
    "unlabelled dataset images": (lambda: [("a.zip", zip_of({"a.png": one_digit_png()}))], 400, "labels_missing",
                                  "a.png"),
    "not a zip": (lambda: [("a.zip", b"PK\x03\x04 truncated")], 400, "corrupt_file", "a.zip"),
    "empty zip": (lambda: [("a.zip", zip_of({}))], 400, "empty", "no images"),
    "csv label 10": (lambda: [("d.csv", b"10" + b",0" * 784 + b"\n")], 400, "label_out_of_range", "line 1"),
    "csv pixel 256": (lambda: [("d.csv", b"label" + b",p" * 784 + b"\n3" + b",0" * 783 + b",256\n")], 400,
                      "invalid_csv", "line 2"),
    "csv Unicode digits": (lambda: [("d.csv", "٣".encode() + b",0" * 784 + b"\n")], 400, "invalid_csv", "ASCII"),
    "csv NUL byte": (lambda: [("d.csv", b"3" + b",0" * 783 + b",\x00\n")], 400, "invalid_csv", "NUL"),
    "csv huge integer": (lambda: [("d.csv", b"3" + b",0" * 783 + b",99999999999999999999999999\n")], 400,
                         "invalid_csv", "d.csv"),
    "csv fraction": (lambda: [("d.csv", b"3" + b",0" * 783 + b",0.5\n")], 400, "invalid_csv", "whole number"),
    "csv without labels": (lambda: [("d.csv", b"0" + b",0" * 783 + b"\n")], 400, "labels_missing", "label"),
    "csv short row": (lambda: [("d.csv", b"3" + b",0" * 784 + b"\n3,0\n")], 400, "invalid_csv", "d.csv"),
    "idx counts differ": (lambda: [("i.gz", idx_file(np.zeros((3, 28, 28)))), ("l.gz", idx_file(np.zeros(2)))], 400,
                          "mismatched_idx", "3 images"),
    "idx label 12": (lambda: [("i", idx_file(np.zeros((2, 28, 28)))), ("l", idx_file(np.array([1, 12])))], 400,
                     "label_out_of_range", "12"),
    "idx images alone": (lambda: [("i.gz", idx_file(np.zeros((2, 28, 28))))], 400, "labels_missing", "labels file"),
    "idx truncated": (lambda: [("i", idx_file(np.zeros((2, 28, 28)), gz=False)[:-5]), ("l", idx_file(np.zeros(2)))],
                      400, "corrupt_file", "shape"),
    "three files": (lambda: [("a", b"1"), ("b", b"2"), ("c", b"3")], 400, "invalid", "two files"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_and_malformed_uploads_are_refused_and_nothing_is_kept(api, case, upload_dir):
    make, status, code, words = HOSTILE[case]
    answer = upload(api, *[Named(data, name) for name, data in make()])
    assert answer.status_code == status, answer.content[:300]
    error = answer.json()["error"]
    assert error["code"] == code and words in error["message"], error
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []


def test_the_configured_caps_are_kept(api, settings, digits, upload_dir):
    images, labels = digits
    data = image_folders_zip(images, labels)
    settings.UPLOAD_MAX_IMAGES = 39
    assert upload(api, Named(data, "z.zip")).json()["error"]["code"] == "too_many_images"
    settings.UPLOAD_MAX_IMAGES, settings.SCORE_MAX_IMAGES = 40, 39
    assert upload(api, Named(data, "z.zip"), purpose="score").json()["error"]["code"] == "too_many_images"
    settings.UPLOAD_MAX_BYTES = len(data) - 1
    answer = upload(api, Named(data, "z.zip"))
    assert answer.status_code == 413 and answer.json()["error"]["details"]["limit"] == len(data) - 1
    settings.UPLOAD_MAX_BYTES, settings.UPLOAD_MAX_PIXELS = len(data), 39 * 28 * 28
    assert upload(api, Named(data, "z.zip")).json()["error"]["code"] == "too_much_work"
    settings.UPLOAD_MAX_PIXELS, settings.UPLOAD_MAX_UNPACKED_BYTES = 10**9, 1000
    assert upload(api, Named(data, "z.zip")).json()["error"]["code"] == "too_large"
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []
    assert upload(api, Named(data, "z.zip"), purpose="anything").json()["error"]["details"] == {"purpose": "anything"}


def test_uploads_older_than_the_keeping_time_are_forgotten_at_the_next_upload(api, settings, digits, upload_dir):
    images, labels = digits
    first = upload(api, Named(idx_file(images), "i"), Named(idx_file(labels), "l")).json()
    old = time.time() - settings.UPLOAD_KEEP_HOURS * 3600 - 60
    os.utime(upload_dir / first["id"], (old, old))
    second = upload(api, Named(idx_file(images), "i"), Named(idx_file(labels), "l")).json()
    assert [p.name for p in upload_dir.iterdir()] == [second["id"]]
    assert api.get(f"/uploads/{first['id']}").json()["error"]["code"] == "not_found"
