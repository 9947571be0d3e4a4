"""Script resolution and script_security: what runs, as whom, and what is refused and why."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from scripts import ScriptRefused, ScriptSpec, choose_user, command, identity, prepare, security
from tests.checkd.support import open_dir, write_script


def test_bare_name_is_searched_in_path_and_symlinks_resolved(tmp_path: Path) -> None:
    target = write_script(tmp_path, "real-check", "exit 0")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "chk").symlink_to(target)
    exe = command.resolve("chk --fast 'two words'", search_path=str(tmp_path / "bin"))
    assert exe.path == str(target)  # the resolved path is what gets executed
    assert exe.configured_path == str(tmp_path / "bin" / "chk")
    assert exe.argv == ("chk", "--fast", "two words")
    assert not exe.via_shell


def test_missing_program_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScriptRefused, match="cannot find 'no-such-chk'"):
        command.resolve("no-such-chk", search_path=str(tmp_path))
    with pytest.raises(ScriptRefused, match="does not exist"):
        command.resolve(str(tmp_path / "gone.sh"))


def test_shell_forms(tmp_path: Path) -> None:
    tcp = command.resolve("</dev/tcp/127.0.0.1/80")
    assert tcp.via_shell and tcp.argv == ("/bin/sh", "-c", "</dev/tcp/127.0.0.1/80")
    bare = tmp_path / "no-shebang"
    bare.write_text("exit 3\n")
    bare.chmod(0o755)
    exe = command.resolve(f"{bare} arg")
    assert exe.via_shell and exe.argv == ("/bin/sh", "-c", f"{bare} arg")


def test_world_writable_directory_is_unsafe(tmp_path: Path) -> None:
    d = tmp_path / "scripts"
    d.mkdir()
    script = write_script(d, "chk.sh", "exit 0")
    assert security.unsafe_components(str(script)) == []
    d.chmod(0o777)
    (problem,) = security.unsafe_components(str(script))
    assert f"{d} (directory) is world-writable" in problem and f"chmod o-w {d}" in problem
    d.chmod(0o777 | stat.S_ISVTX)
    assert security.unsafe_components(str(script)) == []  # sticky directories are exempt


def test_group_writable_and_foreign_owner(tmp_path: Path) -> None:
    script = write_script(tmp_path, "chk.sh", "exit 0")
    os.chown(script, 0, 65534)
    script.chmod(0o775)
    (problem,) = security.unsafe_components(str(script))
    assert "group-writable" in problem and "chmod g-w" in problem
    os.chown(script, 0, 0)
    assert security.unsafe_components(str(script)) == []  # group root may write
    os.chown(script, 65534, 0)
    script.chmod(0o755)
    (problem,) = security.unsafe_components(str(script))
    assert "owned by uid 65534, not root" in problem


def _spec(path: Path, **kw: Any) -> ScriptSpec:
    return ScriptSpec(name="chk", command=str(path), **kw)


def test_enable_script_security_refuses_writable_script(tmp_path: Path) -> None:
    script = write_script(tmp_path, "chk.sh", "exit 0", mode=0o757)
    with pytest.raises(ScriptRefused) as info:
        prepare(_spec(script, script_security=True, user="root"))
    message = str(info.value)
    assert f"refusing to run {script}" in message and "world-writable" in message
    assert "script_user" in message  # says how to fix it
    # Without script security it runs, with the problem reported as a warning.
    prepared = prepare(_spec(script))
    assert any("world-writable" in w for w in prepared.warnings)


def test_unprivileged_user_is_not_subject_to_root_checks() -> None:
    with open_dir() as d:
        script = write_script(d, "chk.sh", "exit 0", mode=0o757)
        prepared = prepare(_spec(script, script_security=True, user="nobody"))
        assert prepared.identity.uid == 65534 and prepared.warnings == ()


def test_setuid_root_program_is_checked_whoever_runs_it() -> None:
    with open_dir() as d:
        writable = d / "writable"
        writable.mkdir()
        writable.chmod(0o777)
        script = write_script(writable, "chk.sh", "exit 0", mode=0o4755)
        with pytest.raises(ScriptRefused) as info:
            prepare(_spec(script, script_security=True, user="nobody"))
        assert "setuid root" in str(info.value) and "world-writable" in str(info.value)
        script.chmod(0o755)  # the same file without the setuid bit is no risk run as nobody
        assert prepare(_spec(script, script_security=True, user="nobody")).warnings == ()


def test_not_executable_for_the_user_is_refused() -> None:
    with open_dir() as d:
        script = write_script(d, "chk.sh", "exit 0", mode=0o744)
        with pytest.raises(ScriptRefused, match="not executable by user nobody"):
            prepare(_spec(script, user="nobody"))


def test_unknown_user_and_group() -> None:
    with pytest.raises(ScriptRefused, match="script user 'pk-no-such-user' does not exist"):
        identity.resolve_identity("pk-no-such-user", None)
    with pytest.raises(ScriptRefused, match="script group 'pk-no-such-group' does not exist"):
        identity.resolve_identity("nobody", "pk-no-such-group")


def test_user_with_group_and_supplementary() -> None:
    plain = identity.resolve_identity("nobody", "root")
    assert (plain.uid, plain.gid, plain.groups, plain.privileged) == (65534, 0, (), True)
    supp = identity.resolve_identity("root", ":root")
    assert 0 in supp.groups


def test_script_security_without_any_script_user_is_refused(tmp_path: Path) -> None:
    script = write_script(tmp_path, "chk.sh", "exit 0")
    if identity.resolve_identity(None, None).source != "self":
        pytest.skip("this host has a keepalived_script user")
    with pytest.raises(ScriptRefused, match=r"no user to run the script as.*set script_user"):
        prepare(_spec(script, script_security=True))
    assert prepare(_spec(script, script_security=True, user="root")).warnings == ()


def test_choose_user_follows_keepalived_order() -> None:
    # The script's own user wins over script_user; without either the runner decides.
    assert choose_user(("nobody", "daemon"), ("root", None)) == ("nobody", "daemon", "script")
    assert choose_user(None, ("root", None)) == ("root", None, "script_user")
    assert choose_user(None, None) == (None, None, "script")


def test_configtest_judges_a_root_script_by_the_runner_rules(tmp_path: Path) -> None:
    from core.scriptcheck import SYSTEM

    d = tmp_path / "scripts"
    d.mkdir()
    script = write_script(d, "chk.sh", "exit 0")
    assert SYSTEM.insecure(str(script)) is None
    d.chmod(0o777)
    # The same words the daemons use when they refuse it.
    assert SYSTEM.insecure(str(script)) == security.unsafe_components(str(script))[0]


def test_a_root_owned_symlink_is_judged_by_its_directory(tmp_path: Path) -> None:
    # /bin -> usr/bin on merged-/usr systems: the link's 0777 mode is no hole.
    script = write_script(tmp_path, "chk.sh", "exit 0")
    (tmp_path / "link").symlink_to(script)
    assert security.unsafe_components(str(tmp_path / "link"), str(script)) == []
    assert security.unsafe_components("/bin/true", os.path.realpath("/bin/true")) == []
    os.lchown(tmp_path / "link", 65534, 65534)
    (problem,) = security.unsafe_components(str(tmp_path / "link"))
    assert "(symlink) is owned by uid 65534, not root" in problem
