"""keepalived's command splitting, shared by core's model and the script runner."""

import pytest

from core.model import Script
from scripts import split_command


@pytest.mark.parametrize(
    ("cmd", "argv"),
    [
        ("/bin/echo 'a b' c\\x41", ["/bin/echo", "a b", "cA"]),
        ('abc"d e"f', ["abcd ef"]),
        ("a\\ b  c", ["a b", "c"]),
        ("x \\101\\t", ["x", "A\t"]),
        ("killall -0 sshd", ["killall", "-0", "sshd"]),
        ("", []),
    ],
)
def test_split_command(cmd: str, argv: list[str]) -> None:
    assert split_command(cmd) == argv


def test_the_model_shows_the_argv_the_runner_executes() -> None:
    command = "/bin/echo 'a b' c\\x41"
    assert Script(command).argv == split_command(command) == ["/bin/echo", "a b", "cA"]
