from __future__ import annotations

from tests import api_support
from tests.api_support import ApiFactory
from tests.test_dashboard import log_in, table_rows

make_api = api_support.make_api


async def test_the_streamers_page_shows_each_streamers_tier_and_next_due(make_api: ApiFactory) -> None:
    api = await make_api(3)
    await api.stack.runner.crawl(scheduled_time=api.stack.clock.now())
    quiet = api.stack.world.all_streamers()[0].id
    await api.stack.db.run(
        "UPDATE streamers SET tier = 2, next_crawl_at = ? WHERE id = ?", "2100-01-01T00:00:00Z", quiet
    )
    await api.stack.db.run("UPDATE streamers SET tier = 0, next_crawl_at = NULL WHERE id != ?", quiet)
    await log_in(api)
    rows = {
        row[0].split()[-3]: row
        for row in table_rows((await api.get("/ui/streamers", token=None)).text, "streamers")
    }
    assert rows["streamer00000"][6] == "2 every 12 h" and rows["streamer00000"][7].startswith("in ")
    assert rows["streamer00001"][6] == "0 every 1 h" and rows["streamer00001"][7] == "next crawl"
