"""A local Twitch Helix emulator: a deterministic world of streamers and clips behind a Starlette app."""

from __future__ import annotations

from local.emulator.app import EmulatorConfig, create_emulator_app
from local.emulator.world import HelixWorld

__all__ = ["EmulatorConfig", "HelixWorld", "create_emulator_app"]
