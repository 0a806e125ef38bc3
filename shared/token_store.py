"""The app token as stored in D1 for every consumer: re-read before minting, minted by one at a time."""

from __future__ import annotations

from shared import store
from shared.batch import run_statement
from shared.helix import AppToken, TokenClaim
from shared.ports import Clock, Database, Statement
from shared.timefmt import to_rfc3339

CLAIM_SECONDS = 20  # a consumer that claimed the mint and went silent is taken over after this


class StoredToken:
    """`HelixClient`'s token source over the `app_tokens` row (D1, or SQLite locally)."""

    def __init__(self, db: Database, clock: Clock, client_id: str, run_id: int) -> None:
        self._db = db
        self._clock = clock
        self._client_id = client_id
        self._run_id = run_id  # the run a refusal of the credentials is remembered for

    async def claim(self, stale: AppToken | None) -> TokenClaim:
        now = self._clock.now()
        stale_token = stale.access_token if stale else ""
        results = await store.claim_token_mint(
            self._client_id, stale_token, to_rfc3339(now), to_rfc3339(now + CLAIM_SECONDS), self._run_id
        ).run(self._db)
        row = results.first("token")
        return TokenClaim(
            AppToken.from_row(row), bool(results.rows("claimed")), store.refusal(row, self._run_id)
        )

    async def store(self, token: AppToken) -> None:
        expires, now = to_rfc3339(token.expires_at), to_rfc3339(self._clock.now())
        await run_statement(self._db, store.store_token(self._client_id, token.access_token, expires, now))

    async def release(self) -> None:
        await run_statement(
            self._db,
            Statement("UPDATE app_tokens SET minting_until = NULL WHERE client_id = ?1", (self._client_id,)),
        )

    async def refuse(self, error: str) -> None:
        now = to_rfc3339(self._clock.now())
        await run_statement(self._db, store.refuse_token(self._client_id, self._run_id, error, now))
