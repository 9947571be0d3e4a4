"""``HOST:PORT`` for the metrics endpoint: the --metrics flag and the metrics_listen keyword."""

from __future__ import annotations

from pathlib import Path

import pytest

import core
from core.listen import parse_listen
from watchdog.cli import build_parser, main
from watchdog.settings import read_settings


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:9650", ("127.0.0.1", 9650)),
        (":9650", ("0.0.0.0", 9650)),
        ("[2001:db8::1]:9650", ("2001:db8::1", 9650)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_accepted(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["127.0.0.1", "h:0", "h:65536", "h:x", "2001:db8::1:9650", "[::1"])
def test_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


def test_a_bad_keyword_value_names_the_line() -> None:
    r = core.loads("global_defs {\n    metrics_listen 9650\n}\n", path="/k.conf", config_id="n")
    (p,) = [p for p in r.problems if p.severity == "error"]
    assert p.line == 2 and "HOST:PORT" in p.message


def test_the_keyword_and_the_flag_read_one_syntax(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n    metrics_listen 127.0.0.1:9650\n}\n")
    assert read_settings(conf).metrics == ("127.0.0.1", 9650)
    assert build_parser().parse_args(["--metrics", ":9651"]).metrics == ("0.0.0.0", 9651)


def test_a_bad_flag_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--metrics", "9650"])
    assert exc.value.code == 2
    assert "is not HOST:PORT" in capsys.readouterr().err
