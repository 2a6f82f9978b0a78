"""uploadFile over real HTTP (the GraphQL multipart request spec): the type comes from
the bytes, names cannot escape the storage root, the size limit holds, and a refused
upload leaves nothing behind while the server keeps serving."""

from __future__ import annotations

import json

import pytest

from tests.graphql.client import codes
from tests.mutations import media
from tests.mutations.conftest import LIMIT, App, tree

UPLOAD = """mutation($file: Upload!) { uploadFile(file: $file) {
  url name contentType sizeBytes userErrors { field code message } } }"""


async def upload(
    app: App, name: str, content: bytes, content_type: str, who: str = "alice"
) -> dict[str, object]:
    body = await app.clients[who].upload(UPLOAD, name, content, content_type)
    assert "errors" not in body, body["errors"]
    result: dict[str, object] = body["data"]["uploadFile"]
    return result


async def test_a_png_declared_as_text_is_stored_as_png(app: App) -> None:
    content = media.png()
    stored = await upload(app, "notes.txt", content, "text/plain")
    assert stored["userErrors"] == []
    assert (stored["contentType"], stored["name"], stored["sizeBytes"]) == (
        "image/png", "notes.png", len(content))  # fmt: skip
    url = str(stored["url"])
    assert url.startswith(f"{app.url}/files/uploads/{app.uid('alice')}/")
    served = await app.clients["anonymous"].http.get(url)
    assert served.status_code == 200 and served.content == content
    assert served.headers["content-type"] == "image/png"


@pytest.mark.parametrize("kind", ["wav", "mp3", "mp4", "webm", "animated-webp", "jpeg"])
async def test_types_come_from_the_bytes(app: App, kind: str) -> None:
    content, mime = media.SUPPORTED[kind]
    stored = await upload(app, "upload.bin", content, "application/octet-stream")
    assert stored["userErrors"] == [] and stored["contentType"] == mime


async def test_a_path_for_a_name_stays_inside_the_root(app: App) -> None:
    data_dir = app.settings.data_dir
    before = tree(data_dir)
    stored = await upload(app, "../../etc/passwd", media.png(), "image/png")
    assert stored["userErrors"] == [] and stored["name"] == "passwd.png"
    added = tree(data_dir) - before
    files = [p for p in added if (data_dir / p).is_file()]
    assert len(files) == 1 and files[0].startswith("files/uploads/")
    assert files[0].endswith("/passwd.png")
    stored_path = (data_dir / files[0]).resolve()
    assert app.files.resolve() in stored_path.parents
    assert not (data_dir.parent / "etc").exists() and not (app.files.parent / "etc").exists()


def _too_big(size: int) -> bytes:
    return media.png() + b"\x00" * (size - len(media.png()))


REFUSED = {
    "one byte over the limit": (_too_big(LIMIT + 1), "image/png", "FILE_TOO_LARGE"),
    # Still within the request-body cap (limit + 1 MiB), so the resolver refuses it.
    "far over the limit": (_too_big(LIMIT + 900_000), "image/png", "FILE_TOO_LARGE"),
    "unknown binary": (media.noise(), "image/png", "UNSUPPORTED_FILE_TYPE"),
    "a script called an image": (media.UNSUPPORTED["svg"], "image/png", "UNSUPPORTED_FILE_TYPE"),
    "a pdf": (media.UNSUPPORTED["pdf"], "application/pdf", "UNSUPPORTED_FILE_TYPE"),
    "matroska": (media.UNSUPPORTED["matroska"], "video/webm", "UNSUPPORTED_FILE_TYPE"),
    "empty": (b"", "image/png", "EMPTY_FILE"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_refused_uploads_store_nothing(app: App, case: str) -> None:
    content, content_type, code = REFUSED[case]
    before = tree(app.files)
    stored = await upload(app, "thing.png", content, content_type)
    assert stored["url"] is None and stored["contentType"] is None
    errors = stored["userErrors"]
    assert isinstance(errors, list) and [(e["code"], e["field"]) for e in errors] == [
        (code, ["file"])
    ]
    assert errors[0]["message"]
    assert tree(app.files) == before
    assert (await app.clients["alice"].data("{ me { id } }"))["me"], "still serving"


async def test_a_body_past_the_request_cap_is_refused_before_it_is_read(app: App) -> None:
    before = tree(app.files)
    operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
    r = await app.clients["alice"].http.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("huge.png", _too_big(LIMIT + 2 * 1024 * 1024), "image/png")},
    )
    assert r.status_code == 413
    assert r.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert tree(app.files) == before
    assert (await app.clients["alice"].data("{ me { id } }"))["me"], "still serving"


async def test_the_limit_itself_is_allowed(app: App) -> None:
    stored = await upload(app, "exact.png", _too_big(LIMIT), "image/png")
    assert stored["userErrors"] == [] and stored["sizeBytes"] == LIMIT


async def test_anonymous_may_not_upload(app: App) -> None:
    before = tree(app.files)
    body = await app.clients["anonymous"].upload(UPLOAD, "cat.png", media.png(), "image/png")
    assert codes(body) == ["UNAUTHENTICATED"] and body["data"] is None
    assert tree(app.files) == before


async def test_a_json_value_instead_of_a_file(app: App) -> None:
    body = await app.clients["alice"].post(UPLOAD, {"file": "aGVsbG8="})
    errors = body["data"]["uploadFile"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("NOT_A_FILE", ["file"])]


async def test_a_multipart_request_without_the_file_part(app: App) -> None:
    operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
    r = await app.clients["alice"].http.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.file"]})},
        files={"1": ("x.png", media.png(), "image/png")},
    )
    assert r.status_code == 400, "strawberry refuses a map naming a missing part"
    assert (await app.clients["alice"].data("{ me { id } }"))["me"], "still serving"
