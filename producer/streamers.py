"""Adding streamers by login: resolved through Get Users, stored by broadcaster id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from shared import redaction, store
from shared.budget import Budget
from shared.config import Settings
from shared.helix import AppToken, HelixClient, check_logins
from shared.metered import MeteredDatabase
from shared.ports import Clock, Database
from shared.timefmt import to_rfc3339


@dataclass(frozen=True)
class AddedStreamers:
    added: list[dict[str, str]]  # id, login, display_name
    unknown: list[str]  # logins Twitch does not know


async def add_streamers(
    db: Database, http: httpx.AsyncClient, settings: Settings, clock: Clock, logins: Sequence[str]
) -> AddedStreamers:
    """Resolve logins (100 per Get Users call) and upsert the streamers found; report the rest."""
    redaction.remember_settings(settings)  # Twitch's error text can repeat the secret; a 502 returns it
    wanted = check_logins(logins)
    budget = Budget(*settings.limits)
    metered = MeteredDatabase(db, budget)
    row = await metered.first(store.read_token(settings.twitch_client_id).sql, settings.twitch_client_id)
    cached = AppToken.from_row(row)
    helix = HelixClient(http, settings, budget, clock, cached)
    users = await helix.get_users(logins=wanted) if wanted else []
    now = to_rfc3339(clock.now())
    statements = [store.upsert_streamers(users, now)] if users else []
    if helix.minted is not None:
        t = helix.minted
        statements.append(
            store.store_token(settings.twitch_client_id, t.access_token, to_rfc3339(t.expires_at), now)
        )
    if statements:
        await metered.batch(statements)
    found = {str(u.get("login", "")).lower() for u in users}
    added = [
        {"id": u["id"], "login": str(u.get("login", "")), "display_name": str(u.get("display_name", ""))}
        for u in users
    ]
    return AddedStreamers(added, [login for login in wanted if login not in found])
