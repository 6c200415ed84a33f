"""``/v1/recordings`` and ``/v1/replays`` on a real API and Kafka: scopes, hostile names,
the live guard, a damaged file, a recording started and stopped, a replay steered."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx

from recordings.store import SEEDS_DIR
from streams.topics import raw_topic
from tests.utils.apikeys import auth
from tests.utils.events import Record
from tests.utils.eventually import eventually
from tests.utils.kafka import produce
from tests.utils.namespaces import NamespaceFactory
from tests.utils.services import start_api


def test_recordings_and_replays_over_http(
    namespace_factory: NamespaceFactory, tmp_path: Path
) -> None:
    home, sandbox = asyncio.run(namespace_factory()), asyncio.run(namespace_factory())
    recordings = tmp_path / "recordings"
    broken = recordings / "broken"
    broken.mkdir(parents=True)
    data = (SEEDS_DIR / "typhoon-yagi.mcap").read_bytes()
    (broken / "part-00000.mcap").write_bytes(data[: len(data) // 2])
    process, base = start_api(home, env={"IOC_RECORDINGS__DIR": str(recordings)})
    try:
        with httpx.Client(base_url=base, headers=auth("replay"), timeout=60) as client:
            assert httpx.get(f"{base}/v1/recordings", headers=auth("view")).status_code == 403
            listed = client.get("/v1/recordings").json()["recordings"]
            assert {(r["name"], r["source"]) for r in listed} >= {
                ("typhoon-yagi", "seed"),
                ("broken", "recorded"),
            }
            info = client.get("/v1/recordings/typhoon-yagi").json()
            assert info["ok"]
            assert info["records"] > 100_000
            assert set(info["topics"]) == {
                f"ioc.{d}.events" for d in ("traffic", "hospital", "school", "security")
            }

            # Names that try to leave the recordings directory.
            for hostile in ("..%2F..%2Fetc%2Fpasswd", ".hidden", "a..b", "%2e%2e", "x" * 70):
                answer = client.get(f"/v1/recordings/{hostile}")
                assert answer.status_code in (404, 422), (hostile, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
            for hostile in ("../escape", "/abs", "a/b", "..", "nul\u0000"):
                answer = client.post("/v1/recordings", json={"name": hostile})
                assert answer.status_code == 422, (hostile, answer.text)
                answer = client.post("/v1/replays", json={"recording": hostile})
                assert answer.status_code == 422, (hostile, answer.text)
            assert not (tmp_path / "escape").exists()

            # A damaged recording: where it broke, and what can be recovered.
            info = client.get("/v1/recordings/broken").json()
            assert not info["ok"]
            assert "chunk" in info["damage"]
            assert info["records"] > 0
            refused = client.post(
                "/v1/replays", json={"recording": "broken", "namespace": sandbox.settings.namespace}
            )
            assert refused.status_code == 422
            assert refused.json()["type"].endswith("damaged-recording")
            assert "part-00000.mcap: chunk" in refused.json()["detail"]

            # The API's own namespace stands for live: admin only, and only when asked.
            live = {"recording": "typhoon-yagi", "namespace": home.settings.namespace}
            assert client.post("/v1/replays", json=live).status_code == 403
            admin = httpx.post(f"{base}/v1/replays", json=live, headers=auth("admin"))
            assert admin.status_code == 422
            assert admin.json()["type"].endswith("live-not-allowed")
            bad = client.post("/v1/replays", json={"recording": "typhoon-yagi", "speed": 5000})
            assert bad.status_code == 422

            # A replay started paused, stepped, sought, then stopped.
            started = client.post(
                "/v1/replays",
                json={
                    "recording": "typhoon-yagi",
                    "namespace": sandbox.settings.namespace,
                    "speed": 1,
                    "paused": True,
                },
            )
            assert started.status_code == 201, started.text
            url = f"/v1/replays/{started.json()['id']}"
            eventually(
                lambda: client.get(url).json(),
                until=lambda b: b["state"] == "paused",
                within_s=60,
                what="the replay to start paused",
            )
            client.post(f"{url}/step", json={"count": 5})
            stepped = eventually(
                lambda: client.get(url).json(),
                until=lambda b: b["sent"] == 5,
                within_s=60,
                what="five stepped records",
            )
            assert stepped["state"] == "paused"
            assert stepped["position"] == 4
            # Not a wait for something: half a second in which a running replay (x1) would
            # have sent more, so that the next status shows the pause held.
            time.sleep(0.5)
            assert client.get(url).json()["sent"] == 5  # paused: nothing more
            client.post(f"{url}/seek", json={"index": 100_000})
            client.post(f"{url}/step", json={"count": 1})
            sought = eventually(
                lambda: client.get(url).json(),
                until=lambda b: b["position"] >= 100_000,
                within_s=60,
                what="the seek",
            )
            assert sought["primed"] > 1000  # every entity's state before the new point
            stopped = client.post(f"{url}/stop").json()
            assert stopped["state"] == "stopped"
            assert client.post(f"{url}/resume").status_code == 409
            assert client.get("/v1/replays/nope").status_code == 404

            # A recording of the API's namespace, started and stopped over HTTP.
            made = client.post("/v1/recordings", json={"name": "api-made"})
            assert made.status_code == 201, made.text
            assert client.post("/v1/recordings", json={"name": "api-made"}).status_code == 409
            topic = raw_topic(home.settings, "traffic")
            records = [Record(f"qn-{i}".encode(), b"{}", 1_725_670_800_000 + i) for i in range(300)]
            asyncio.run(produce(home.settings, topic, records))
            eventually(
                lambda: client.get("/v1/recordings/api-made").json(),
                until=lambda b: (b.get("recording") or {}).get("records") == 300,
                within_s=60,
                what="the API's recorder",
            )
            done = client.post("/v1/recordings/api-made/stop").json()
            assert done["state"] == "done"
            assert done["records"] == 300
            info = client.get("/v1/recordings/api-made").json()
            assert info["ok"]
            assert info["topics"][topic]["records"] == 300
    finally:
        process.stop()
    shutil.rmtree(recordings)


def test_replays_and_recordings_at_once_are_capped_and_named(
    namespace_factory: NamespaceFactory, tmp_path: Path
) -> None:
    """Replays and recordings run in the API process: past the configured number active
    at once, a start is 409 naming the active ones and the setting; once one ends, a
    start is accepted again."""
    home, sandbox = asyncio.run(namespace_factory()), asyncio.run(namespace_factory())
    env = {
        "IOC_RECORDINGS__DIR": str(tmp_path / "recordings"),
        "IOC_RECORDINGS__MAX_ACTIVE_REPLAYS": "2",
        "IOC_RECORDINGS__MAX_ACTIVE_RECORDINGS": "1",
    }
    process, base = start_api(home, env=env)
    replay = {"recording": "typhoon-yagi", "namespace": sandbox.settings.namespace}
    try:
        with httpx.Client(base_url=base, headers=auth("replay"), timeout=60) as client:
            first, second = (
                client.post("/v1/replays", json={**replay, "paused": True}) for _ in range(2)
            )
            assert (first.status_code, second.status_code) == (201, 201), second.text
            ids = {first.json()["id"], second.json()["id"]}
            refused = client.post("/v1/replays", json=replay)
            assert refused.status_code == 409, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            problem = refused.json()
            assert problem["type"].endswith("too-many-replays")
            assert "IOC_RECORDINGS__MAX_ACTIVE_REPLAYS" in problem["detail"]
            assert all(i in problem["detail"] for i in ids)
            # A stopped replay makes room.
            stopped = client.post(f"/v1/replays/{first.json()['id']}/stop")
            assert stopped.json()["state"] == "stopped"
            again = client.post("/v1/replays", json={**replay, "paused": True})
            assert again.status_code == 201, again.text
            states = {r["id"]: r["state"] for r in client.get("/v1/replays").json()["replays"]}
            assert states[first.json()["id"]] == "stopped"
            assert {s for i, s in states.items() if i != first.json()["id"]} <= {
                "pending",
                "paused",
            }

            made = client.post("/v1/recordings", json={"name": "one"})
            assert made.status_code == 201, made.text
            refused = client.post("/v1/recordings", json={"name": "two"})
            assert refused.status_code == 409, refused.text
            assert refused.json()["type"].endswith("too-many-recordings")
            assert "one" in refused.json()["detail"]
            assert client.post("/v1/recordings/one/stop").json()["state"] == "done"
            assert client.post("/v1/recordings", json={"name": "two"}).status_code == 201
    finally:
        process.stop()
