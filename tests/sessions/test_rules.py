"""What the session mutations refuse, and what cancelling, failing and retrying do:
wrong states, bad selections, other people's sessions, bad createSession fields, a cancel
in the middle of generation, failed jobs, retries, deletion."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from comfygraph.db.sessions import update_session
from tests.comfy.conftest import wav_bytes
from tests.graphql.client import codes, gid, row_id
from tests.sessions.conftest import Stack
from tests.sessions.helpers import (
    CANCEL,
    COMPOSE,
    CREATE,
    DELETE,
    GENERATE_CLIPS,
    GENERATE_IMAGES,
    GET,
    SELECT,
    Watch,
    create,
    errors,
    mutate,
    of_type,
    ok,
)

SESSION_FIELD = ["sessionId"]


def reviewing(stack: Stack, images: int = 2, **fields: Any) -> dict[str, Any]:
    """A session of alice's whose images are generated and waiting for review."""
    alice = stack.clients["alice"]
    session = create(alice, numImagesRequested=images, **fields)
    ok(mutate(alice, GENERATE_IMAGES, id=session["id"]))
    return Watch(alice, session["id"]).status("REVIEWING_IMAGES", "FAILED")


@pytest.fixture(scope="module")
def clips_ready(stack: Stack) -> dict[str, Any]:
    """A session of alice's with approved images and clips waiting for review."""
    alice = stack.clients["alice"]
    session = reviewing(stack, clipDurationSeconds=1.0)
    images = [a["id"] for a in of_type(session, "IMAGE")]
    ok(mutate(alice, SELECT, id=session["id"], assets=images))
    ok(mutate(alice, GENERATE_CLIPS, id=session["id"]))
    return Watch(alice, session["id"]).status("REVIEWING_VIDEOS")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [({"userProductPrompt": "   "}, [("REQUIRED", ["userProductPrompt"])]),
     ({"numImagesRequested": 0}, [("OUT_OF_RANGE", ["numImagesRequested"])]),
     ({"numImagesRequested": 13}, [("OUT_OF_RANGE", ["numImagesRequested"])]),
     ({"clipDurationSeconds": 0.5}, [("OUT_OF_RANGE", ["clipDurationSeconds"])]),
     ({"clipDurationSeconds": 10.01}, [("OUT_OF_RANGE", ["clipDurationSeconds"])]),
     ({"consistencySeed": -1}, [("OUT_OF_RANGE", ["consistencySeed"])]),
     ({"textColor": "red"}, [("INVALID_FORMAT", ["textColor"])]),
     ({"textColor": "#12345G"}, [("INVALID_FORMAT", ["textColor"])]),
     ({"textColor": "#1234567"}, [("INVALID_FORMAT", ["textColor"])]),
     ({"textFont": "Comic Sans"}, [("INVALID_CHOICE", ["textFont"])]),
     ({"styleKeywords": ["pastel", " "]}, [("INVALID_FORMAT", ["styleKeywords", "1"])]),
     ({"styleKeywords": ["k" * 300, "w" * 300]}, [("TOO_LONG", ["styleKeywords"])]),
     ({"productName": "p" * 101}, [("TOO_LONG", ["productName"])]),
     ({"callToAction": "c" * 101}, [("TOO_LONG", ["callToAction"])]),
     ({"userProductPrompt": "x" * 2001}, [("TOO_LONG", ["userProductPrompt"])]),
     ({"userProductPrompt": "", "numImagesRequested": 20, "textColor": "#fff"},
      [("REQUIRED", ["userProductPrompt"]), ("OUT_OF_RANGE", ["numImagesRequested"]),
       ("INVALID_FORMAT", ["textColor"])])],
)  # fmt: skip
def test_create_session_refuses_each_bad_field(
    stack: Stack, fields: dict[str, Any], expected: list[tuple[str, list[str]]]
) -> None:
    alice = stack.clients["alice"]
    before = alice.data("{ sessions { totalCount } }")["sessions"]["totalCount"]
    payload = mutate(alice, CREATE, input={"userProductPrompt": "shoes", **fields})
    assert payload["session"] is None
    assert errors(payload) == expected
    assert alice.data("{ sessions { totalCount } }")["sessions"]["totalCount"] == before


def test_create_session_defaults_and_enums(stack: Stack) -> None:
    alice = stack.clients["alice"]
    session = create(alice)
    assert session["status"] == "CREATED" and session["progressPercentage"] == 0
    detail = alice.data(
        """query($id: ID!) { session(id: $id) { numImagesRequested clipDurationSeconds
           consistencySeed styleKeywords backgroundMusicEnabled textFont owner { id } } }""",
        {"id": session["id"]},
    )["session"]
    assert detail["numImagesRequested"] == 6 and detail["clipDurationSeconds"] == 3.0
    assert 0 <= detail["consistencySeed"] < 2**31  # chosen at creation, kept for every image
    assert detail["styleKeywords"] == [] and detail["backgroundMusicEnabled"] is False
    body = alice.post(CREATE, {"input": {"userProductPrompt": "x", "productCategory": "SHOES"}})
    assert body.get("data") is None and codes(body)  # not an enum value: a GraphQL error
    anonymous = stack.clients["anonymous"].post(CREATE, {"input": {"userProductPrompt": "x"}})
    assert codes(anonymous) == ["UNAUTHENTICATED"]


def test_mutations_in_the_wrong_state(stack: Stack) -> None:
    alice = stack.clients["alice"]
    fresh = create(alice)
    for document in (GENERATE_CLIPS, COMPOSE):
        assert errors(mutate(alice, document, id=fresh["id"])) == [("INVALID_STATE", SESSION_FIELD)]
    some_asset = gid("Asset", uuid.uuid4())
    payload = mutate(alice, SELECT, id=fresh["id"], assets=[some_asset])
    assert errors(payload) == [("INVALID_STATE", SESSION_FIELD)]

    session = reviewing(stack)
    assert errors(mutate(alice, COMPOSE, id=session["id"])) == [("INVALID_STATE", SESSION_FIELD)]
    nothing = mutate(alice, GENERATE_CLIPS, id=session["id"])
    assert errors(nothing) == [("NOTHING_APPROVED", SESSION_FIELD)]
    assert alice.data(GET, {"id": session["id"]})["session"]["status"] == "REVIEWING_IMAGES"


def test_selection_rules(stack: Stack, clips_ready: dict[str, Any]) -> None:
    alice, bob = stack.clients["alice"], stack.clients["bob"]
    sid = clips_ready["id"]
    images = [a["id"] for a in of_type(clips_ready, "IMAGE")]
    clips = [a["id"] for a in of_type(clips_ready, "VIDEO_CLIP")]
    assert errors(mutate(alice, SELECT, id=sid, assets=[])) == [("EMPTY_SELECTION", ["assetIds"])]
    mixed = mutate(alice, SELECT, id=sid, assets=[clips[0], images[0]])
    assert errors(mixed) == [("MIXED_STAGES", ["assetIds"])]
    twice = mutate(alice, SELECT, id=sid, assets=[clips[0], clips[0]])
    assert errors(twice) == [("DUPLICATE_ASSET", ["assetIds", "1"])]
    bad_id = mutate(alice, SELECT, id=sid, assets=[clips[0], "nonsense"])
    assert errors(bad_id) == [("INVALID_ID", ["assetIds", "1"])]

    other = reviewing(stack, images=1)  # alice's too, but another session
    foreign = of_type(other, "IMAGE")[0]["id"]
    unknown = gid("Asset", uuid.uuid4())
    for stranger in (foreign, unknown):
        payload = mutate(alice, SELECT, id=sid, assets=[clips[0], stranger])
        assert errors(payload) == [("NOT_FOUND", ["assetIds", "1"])]
    # Bob: neither the session nor its assets exist for him, exactly like unknown ids.
    for session_id in (sid, gid("Session", uuid.uuid4())):
        assert errors(mutate(bob, SELECT, id=session_id, assets=clips)) == [
            ("NOT_FOUND", SESSION_FIELD)
        ]
    bob_session = create(bob)
    ok(mutate(bob, GENERATE_IMAGES, id=bob_session["id"]))
    Watch(bob, bob_session["id"]).status("REVIEWING_IMAGES")
    payload = mutate(bob, SELECT, id=bob_session["id"], assets=[images[0]])
    assert errors(payload) == [("NOT_FOUND", ["assetIds", "0"])]
    # Nothing changed by all that.
    after = alice.data(GET, {"id": sid})["session"]
    assert {a["id"]: a["status"] for a in after["assets"]} == {
        a["id"]: a["status"] for a in clips_ready["assets"]
    }

    chosen = ok(mutate(alice, SELECT, id=sid, assets=[clips[1]]))
    by_id = {a["id"]: a for a in chosen["assets"]}
    assert (by_id[clips[1]]["status"], by_id[clips[1]]["selectionOrder"]) == ("APPROVED", 1)
    assert by_id[clips[0]]["status"] == "REJECTED"
    assert all(by_id[i]["status"] == "APPROVED" for i in images)  # the other stage is untouched


def test_other_users_get_not_found_like_a_missing_session(stack: Stack) -> None:
    alice, bob, admin = stack.clients["alice"], stack.clients["bob"], stack.clients["admin"]
    session = create(alice, numImagesRequested=1)
    missing = gid("Session", uuid.uuid4())
    for document in (GENERATE_IMAGES, GENERATE_CLIPS, COMPOSE, CANCEL):
        theirs = mutate(bob, document, id=session["id"])
        nowhere = mutate(bob, document, id=missing)
        assert (
            theirs
            == nowhere
            == {
                "session": None,
                "userErrors": [
                    {
                        "field": SESSION_FIELD,
                        "message": "no session with this id",
                        "code": "NOT_FOUND",
                    }
                ],
            }
        )
    assert mutate(bob, DELETE, id=session["id"]) == mutate(bob, DELETE, id=missing)
    assert bob.data(GET, {"id": session["id"]})["session"] is None
    body = stack.clients["anonymous"].post(GENERATE_IMAGES, {"id": session["id"]})
    assert codes(body) == ["UNAUTHENTICATED"]
    # An admin may drive anyone's session; the jobs still belong to its owner.
    started = ok(mutate(admin, GENERATE_IMAGES, id=session["id"]))
    done = Watch(alice, started["id"]).status("REVIEWING_IMAGES")
    assert of_type(done, "IMAGE")[0]["job"] is not None  # alice sees the job: it is hers


def test_cancel_mid_generation_stops_jobs_and_no_asset_appears(stack: Stack) -> None:
    alice = stack.clients["alice"]
    stack.fault(action="stall", class_type="KSampler", times=10)
    try:
        session = create(alice, numImagesRequested=2)
        started = ok(mutate(alice, GENERATE_IMAGES, id=session["id"]))
        assert started["status"] == "GENERATING_IMAGES"
        wait_until_stalled(stack)
        cancelled = ok(mutate(alice, CANCEL, id=session["id"]))
    finally:
        stack.fault(action="clear")
        stack.fault(action="release")
    assert cancelled["status"] == "CANCELLED"
    assert [a["status"] for a in cancelled["assets"]] == ["FAILED", "FAILED"]
    assert all(a["metadata"]["error"] == "cancelled" for a in cancelled["assets"])
    assert [a["job"]["status"] for a in cancelled["assets"]] == ["CANCELLED", "CANCELLED"]
    # The worker runs prompts in order: once a later session's image is done, anything
    # the cancelled one could still have produced would have arrived.
    later = reviewing(stack, images=1)
    assert later["status"] == "REVIEWING_IMAGES"
    after = alice.data(GET, {"id": session["id"]})["session"]
    assert after["assets"] == cancelled["assets"] and after["status"] == "CANCELLED"
    assert all(a["url"] is None for a in after["assets"])
    for document in (GENERATE_IMAGES, GENERATE_CLIPS, COMPOSE, CANCEL):
        assert errors(mutate(alice, document, id=session["id"])) == [
            ("INVALID_STATE", SESSION_FIELD)
        ]


def wait_until_stalled(stack: Stack, within: float = 15.0) -> None:
    """Until the worker holds a stalled KSampler (a bounded poll of its admin route)."""
    deadline = time.monotonic() + within
    while not httpx.get(f"{stack.emulator}/emulator/faults", timeout=5).json()["stalled"]:
        assert time.monotonic() < deadline, "the worker never reached the stalled node"
        time.sleep(0.02)


def test_failed_images_leave_a_usable_session_then_a_failed_one(stack: Stack) -> None:
    alice = stack.clients["alice"]
    stack.fault(action="fail", class_type="KSampler", times=1, message="CUDA out of memory")
    partly = reviewing(stack, images=2)
    assert partly["status"] == "REVIEWING_IMAGES" and partly["errorMessage"] is None
    statuses = sorted(a["status"] for a in partly["assets"])
    assert statuses == ["COMPLETED", "FAILED"]
    failed = next(a for a in partly["assets"] if a["status"] == "FAILED")
    assert "CUDA out of memory" in failed["metadata"]["error"] and failed["url"] is None
    payload = mutate(alice, SELECT, id=partly["id"], assets=[failed["id"]])
    assert errors(payload) == [("NOT_SELECTABLE", ["assetIds", "0"])]

    stack.fault(action="fail", class_type="KSampler", times=2, message="CUDA out of memory")
    broken = reviewing(stack, images=2)
    assert broken["status"] == "FAILED" and broken["currentStage"] == "image_gen"
    assert "all 2 image generations failed" in broken["errorMessage"]
    assert "CUDA out of memory" in broken["errorMessage"]
    # A retry regenerates the images and counts.
    retried = ok(mutate(alice, GENERATE_IMAGES, id=broken["id"]))
    assert retried["retryCount"] == 1 and retried["errorMessage"] is None
    done = Watch(alice, broken["id"]).status("REVIEWING_IMAGES", "FAILED")
    assert done["status"] == "REVIEWING_IMAGES"
    current = [a for a in of_type(done, "IMAGE") if a["status"] == "COMPLETED"]
    assert len(current) == 2 and len(of_type(done, "IMAGE")) == 4


def test_regenerating_images_rejects_the_previous_ones(stack: Stack) -> None:
    alice = stack.clients["alice"]
    first = reviewing(stack, images=1)
    old = of_type(first, "IMAGE")[0]["id"]
    ok(mutate(alice, SELECT, id=first["id"], assets=[old]))
    again = ok(mutate(alice, GENERATE_IMAGES, id=first["id"]))
    assert again["retryCount"] == 1
    done = Watch(alice, first["id"]).status("REVIEWING_IMAGES")
    by_id = {a["id"]: a for a in of_type(done, "IMAGE")}
    assert by_id[old]["status"] == "REJECTED" and not by_id[old]["userSelected"]
    stale = mutate(alice, SELECT, id=first["id"], assets=[old])
    assert errors(stale) == [("NOT_SELECTABLE", ["assetIds", "0"])]
    assert done["progressPercentage"] == 40


def test_failed_compose_fails_the_session_and_a_retry_completes_it(
    stack: Stack, clips_ready: dict[str, Any]
) -> None:
    alice = stack.clients["alice"]
    sid = clips_ready["id"]
    clips = [a["id"] for a in of_type(clips_ready, "VIDEO_CLIP")]
    ok(mutate(alice, SELECT, id=sid, assets=clips))
    stack.fault(action="fail", class_type="AdComposeVideo", times=1, message="ffmpeg broke")
    ok(mutate(alice, COMPOSE, id=sid))
    failed = Watch(alice, sid).status("FAILED", "COMPLETED")
    assert failed["status"] == "FAILED" and "ffmpeg broke" in failed["errorMessage"]
    assert failed["currentStage"] == "composition"
    retried = ok(mutate(alice, COMPOSE, id=sid))
    assert retried["retryCount"] == 1
    done = Watch(alice, sid).status("COMPLETED", "FAILED")
    assert done["status"] == "COMPLETED" and done["progressPercentage"] == 100
    finals = of_type(done, "FINAL_VIDEO")
    assert sorted(a["status"] for a in finals) == ["COMPLETED", "FAILED"]
    final = alice.data("query($id: ID!) { session(id: $id) { finalVideo { id status } } }",
                       {"id": sid})["session"]["finalVideo"]  # fmt: skip
    assert final["status"] == "COMPLETED"


def test_delete_session(stack: Stack) -> None:
    alice = stack.clients["alice"]
    session = create(alice)
    assert mutate(alice, DELETE, id=session["id"]) == {"deletedId": session["id"], "userErrors": []}
    assert alice.data(GET, {"id": session["id"]})["session"] is None
    assert errors(mutate(alice, GENERATE_IMAGES, id=session["id"])) == [
        ("NOT_FOUND", SESSION_FIELD)
    ]
    again = mutate(alice, DELETE, id=session["id"])
    assert again == {
        "deletedId": None,
        "userErrors": [{"field": SESSION_FIELD, "code": "NOT_FOUND"}],
    }


async def test_compose_fits_the_sessions_music(stack: Stack, pool: asyncpg.Pool) -> None:
    alice = stack.clients["alice"]
    session = reviewing(stack, images=1, clipDurationSeconds=1.0, backgroundMusicEnabled=True,
                        musicGenre="lo-fi")  # fmt: skip
    sid = session["id"]
    ok(mutate(alice, SELECT, id=sid, assets=[of_type(session, "IMAGE")[0]["id"]]))
    ok(mutate(alice, GENERATE_CLIPS, id=sid))
    clips = Watch(alice, sid).status("REVIEWING_VIDEOS")
    ok(mutate(alice, SELECT, id=sid, assets=[of_type(clips, "VIDEO_CLIP")[0]["id"]]))
    # No mutation sets a music file yet: put one in storage and name it on the session.
    music = stack.files / "uploads" / "music" / "track.wav"
    music.parent.mkdir(parents=True, exist_ok=True)
    music.write_bytes(wav_bytes(3.0))
    url = f"{stack.url}/files/uploads/music/track.wav"
    async with pool.acquire() as conn:
        await update_session(conn, row_id(sid), music_url=url)
    ok(mutate(alice, COMPOSE, id=sid))
    done = Watch(alice, sid).status("COMPLETED", "FAILED")
    assert done["status"] == "COMPLETED", done["errorMessage"]
    final = of_type(done, "FINAL_VIDEO")[0]
    async with pool.acquire() as conn:
        parameters = await conn.fetchval(
            "SELECT parameters FROM video_jobs WHERE id = $1", row_id(final["job"]["id"])
        )
    assert parameters["music"] == url
