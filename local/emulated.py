"""Wiring the crawler to the in-process Helix emulator."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from local.emulator import EmulatorConfig
from shared.config import Settings

EMULATOR_URL = "http://twitch.emulator"


def emulator_client(app: ASGIApp) -> httpx.AsyncClient:
    """An httpx client whose requests go straight into the emulator app, no socket involved."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=EMULATOR_URL)


def emulator_settings(settings: Settings, config: EmulatorConfig) -> Settings:
    """Point the crawler's Twitch URLs and credentials at the emulator."""
    return settings.with_(
        twitch_api_url=EMULATOR_URL + "/helix",
        twitch_auth_url=EMULATOR_URL + "/oauth2",
        twitch_client_id=config.client_id,
        twitch_client_secret=config.client_secret,
    )
