"""What the readers show of a real verification: the API's deleted filter and game names, after crawls."""

from __future__ import annotations

from tests import api_support
from tests.api_support import ApiFactory
from tests.conftest import make_stack  # noqa: F401  (make_api's fixture)

make_api = api_support.make_api
HOUR = 3600.0


async def test_a_clip_twitch_deleted_is_listed_as_deleted_with_its_game_named(make_api: ApiFactory) -> None:
    api = await make_api(2)
    stack = api.stack
    await stack.runner.crawl()
    newest = await stack.db.first("SELECT id, created_at FROM clips ORDER BY created_at DESC LIMIT 1")
    stack.world.delete_clip(newest["id"], at=stack.clock.now() + 60)
    for _ in range(4):  # past its first check, a day after creation
        stack.clock.set(stack.clock.now() + 8 * HOUR)
        await stack.runner.crawl()
    gone = (await api.get("/clips", params={"deleted": "only", "limit": 100})).json()
    assert [c["id"] for c in gone["clips"]] == [newest["id"]]
    assert gone["clips"][0]["deleted_at"] is not None and gone["clips"][0]["game_name"]
    live = (await api.get("/clips", params={"limit": 100})).json()["clips"]
    assert live and newest["id"] not in {c["id"] for c in live}
    assert all(c["game_name"] and c["deleted_at"] is None for c in live)
