"""The emulated world's game catalogue: what Get Games serves and what clip `game_id`s are drawn from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

_BOX_ART = "https://static-cdn.jtvnw.net/ttv-boxart/"


@dataclass(frozen=True)
class Game:
    """One category or game; `igdb_id` is "" for categories that are not games (Just Chatting)."""

    id: str
    name: str
    igdb_id: str = ""
    box_art_file: str = ""  # e.g. "32982_IGDB": Twitch names some box art files after the IGDB entry

    def to_helix(self) -> dict[str, Any]:
        """This game as a Get Games entry; `box_art_url` keeps Twitch's `{width}x{height}` template."""
        return {
            "id": self.id,
            "name": self.name,
            "box_art_url": f"{_BOX_ART}{self.box_art_file or self.id}-{{width}}x{{height}}.jpg",
            "igdb_id": self.igdb_id,
        }


# Ids, names, IGDB ids and box art file names as a recorded Get Top Games answer has them (the last two
# categories from Twitch's own reference examples). The order matters: streamers sample their games from it.
CATALOGUE: tuple[Game, ...] = (
    Game("509658", "Just Chatting"),
    Game("32982", "Grand Theft Auto V", "1020", "32982_IGDB"),
    Game("21779", "League of Legends", "115"),
    Game("33214", "Fortnite", "1905"),
    Game("27471", "Minecraft", "121", "27471_IGDB"),
    Game("516575", "VALORANT", "126459"),
    Game("511224", "Apex Legends", "114795"),
    Game("491487", "Dead by Daylight", "18866"),
    Game("18122", "World of Warcraft", "123"),
    Game("29595", "Dota 2", "2963"),
    Game("512710", "Call of Duty: Warzone", "131800"),
    Game("263490", "Rust", "3277", "263490_IGDB"),
    Game("460630", "Tom Clancy's Rainbow Six Siege", "7360", "460630_IGDB"),
    Game("138585", "Hearthstone", "1279", "138585_IGDB"),
    Game("417752", "Talk Shows & Podcasts"),
    Game("1469308723", "Software and Game Development"),
    Game("27546", "World of Tanks", "1184"),
    Game("32399", "Counter-Strike: Global Offensive", "1372", "32399_IGDB"),
    Game("513143", "Teamfight Tactics", "120176"),
    Game("515025", "Overwatch 2", "125174"),
)


class GameCatalogue:
    """Games looked up by id, exact name or IGDB id."""

    def __init__(self, games: Iterable[Game] = CATALOGUE) -> None:
        self._games = tuple(games)
        if not self._games:
            raise ValueError("a game catalogue needs at least one game")
        self._by_id = _unique(self._games, "id")
        self._by_name = _unique(self._games, "name")
        self._by_igdb = {g.igdb_id: g for g in self._games if g.igdb_id}

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self._games)

    def __iter__(self) -> Iterator[Game]:
        return iter(self._games)

    def by_id(self, game_id: str) -> Game | None:
        return self._by_id.get(game_id)

    def by_name(self, name: str) -> Game | None:
        """Twitch wants the name exactly as the category is titled."""
        return self._by_name.get(name)

    def by_igdb_id(self, igdb_id: str) -> Game | None:
        return self._by_igdb.get(igdb_id) if igdb_id else None

    def name_of(self, game_id: str) -> str:
        """The name Get Streams puts beside a game id; "" for none, as Twitch does."""
        game = self._by_id.get(game_id)
        return game.name if game else ""

    def lookup(self, selectors: Sequence[tuple[str, str]]) -> list[Game]:
        """Games for ("id" | "name" | "igdb_id", value) pairs in input order, minus unknown and repeated."""
        finders = {"id": self.by_id, "name": self.by_name, "igdb_id": self.by_igdb_id}
        found: dict[str, Game] = {}
        for kind, value in selectors:
            game = finders[kind](value)
            if game is not None:
                found.setdefault(game.id, game)
        return list(found.values())


def _unique(games: Sequence[Game], attribute: str) -> dict[str, Game]:
    index: dict[str, Game] = {}
    for game in games:
        key = getattr(game, attribute)
        if key in index:
            raise ValueError(f"two games in the catalogue share the {attribute} {key!r}")
        index[key] = game
    return index
