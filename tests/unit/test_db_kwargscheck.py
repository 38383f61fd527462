"""ahcore.db.kwargscheck: a network driver's connection settings, as ``ahcore check`` reports them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ahcore.db.kwargscheck import check_connection_kwargs

KNOWN = ("host", "port", "user", "password", "db")


def site_with(kwargs: dict[str, Any], driver: str = "mysql") -> Any:
    spec = SimpleNamespace(name="mysql")
    db = SimpleNamespace(driver=driver, kwargs=kwargs)
    return SimpleNamespace(
        config=SimpleNamespace(databases={"shop": db}),
        drivers={"mysql": spec, "aiomysql": spec, "sqlite": SimpleNamespace(name="sqlite")},
    )


def messages(kwargs: dict[str, Any], driver: str = "mysql") -> list[tuple[str, str]]:
    return [(p.severity, p.message) for p in check_connection_kwargs(site_with(kwargs, driver), "mysql", KNOWN)]


def test_good_settings_have_no_problem() -> None:
    assert messages({"host": "db", "port": 3306, "user": "u", "password": None, "db": "shop"}) == []
    assert messages({"port": "3306"}) == []


def test_an_unknown_key_is_a_warning_with_a_suggestion() -> None:
    [(severity, message)] = messages({"hots": "db"})
    assert severity == "warning"
    assert message.startswith('databases.shop.kwargs.hots: not a mysql connection setting, ignored; did you mean "host"?')


def test_a_bad_port_and_a_non_string_are_errors_in_jsons_words() -> None:
    assert messages({"port": 70000}) == [
        ("error", "databases.shop.kwargs.port: expected a TCP port (1 to 65535), got 70000")
    ]
    assert messages({"port": True})[0][0] == "error"
    assert messages({"user": 5}) == [
        ("error", "databases.shop.kwargs.user: expected a string, got integer 5; quote it")
    ]


def test_databases_of_other_drivers_are_left_alone_and_aliases_count() -> None:
    assert messages({"hots": "x"}, driver="sqlite") == []
    assert messages({"hots": "x"}, driver="AIOMySQL") != []
