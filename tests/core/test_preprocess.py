from pathlib import Path

from core.preprocess import Preprocessor, brace_expand, preprocess_text


def lines(text: str, config_id: str = "node1") -> list[list[str]]:
    out = preprocess_text(text, config_id=config_id)
    return [[t.text for t in ln] for ln in out.lines]


def test_conditional_lines() -> None:
    text = "@node1 priority 200\n@node2 priority 100\n@^node1 weight 1\n@^node2 weight 2\n"
    assert lines(text) == [["priority", "200"], ["weight", "2"]]
    assert lines(text, "node2") == [["priority", "100"], ["weight", "1"]]


def test_conditional_needs_something_after_id() -> None:
    out = preprocess_text("@node1\n", config_id="node1")
    assert [p.code for p in out.problems] == ["conditional"]


def test_conditional_definition() -> None:
    assert lines("@node1 $P=77\npriority $P\n") == [["priority", "77"]]
    assert lines("@node1 $P=77\npriority $P\n", "other") == [["priority", "$P"]]


def test_definition_substitution_rules() -> None:
    # $X is only replaced before blank, ',', ')' or end of line; ${X} anywhere.
    text = "$X=10.0.0.1\na $X\nb $X/32\nc ${X}/32\nd $X,y\ne $UNDEFINED\n"
    assert lines(text) == [
        ["a", "10.0.0.1"],
        ["b", "$X/32"],
        ["c", "10.0.0.1/32"],
        ["d", "10.0.0.1,y"],
        ["e", "$UNDEFINED"],
    ]


def test_definition_value_is_taken_at_use_time_and_recursive() -> None:
    text = "$A=${B}x\n$B=1\nv $A\n$B=2\nv $A\n"
    assert lines(text) == [["v", "1x"], ["v", "2x"]]


def test_multiline_definition_expands_to_several_lines() -> None:
    text = "$M= \\\n 192.0.2.1 \\\n 192.0.2.2\nvirtual_ipaddress {\n$M\n}\n"
    assert lines(text) == [["virtual_ipaddress", "{"], ["192.0.2.1"], ["192.0.2.2"], ["}"]]


def test_substituted_text_is_decommented_and_can_be_conditional() -> None:
    text = "$C=@node1 priority 5 # note\n$C\n"
    assert lines(text) == [["priority", "5"]]
    assert lines(text, "x") == []


def test_reserved_names_and_builtins() -> None:
    out = preprocess_text("$_X=1\n", config_id="n")
    assert [p.code for p in out.problems] == ["reserved-name"]
    assert lines("a ${_INSTANCE} ${_HASH} ${_BANG}\n", "n9") == [["a", "n9", "#", "!"]]


def test_random_builtin_is_in_range() -> None:
    for _ in range(20):
        ((_, v),) = lines("a ${_RANDOM 5 7}\n")
        assert 5 <= int(v) <= 7


def test_seq_and_lst() -> None:
    # $X followed by "/" is not substituted (keepalived rule); ${X} is.
    assert lines("~SEQ(X,1,3) 192.0.2.$X/32\n") == [["192.0.2.$X/32"]] * 3
    assert lines("~SEQ(X,1,3) 192.0.2.${X}/32\n") == [[f"192.0.2.{i}/32"] for i in (1, 2, 3)]
    assert lines("~SEQ(X,5,-2,1) v $X\n") == [["v", "5"], ["v", "3"], ["v", "1"]]
    assert lines("~SEQx(X,9,0xb) v $X\n") == [["v", "9"], ["v", "a"], ["v", "b"]]
    assert lines("~SEQx(X,010,0x9) v $X\n") == [["v", "8"], ["v", "9"]]
    assert lines("~LST(Y,7,9) v $Y\n") == [["v", "7"], ["v", "9"]]
    assert lines("~LST({A,B},{1,2},{3,4}) v $A $B\n") == [["v", "1", "2"], ["v", "3", "4"]]
    assert lines("~SEQ(X,2) ~LST(Y,a,b) v $X $Y\n") == [
        ["v", "1", "a"],
        ["v", "1", "b"],
        ["v", "2", "a"],
        ["v", "2", "b"],
    ]


def test_seq_errors_are_problems() -> None:
    out = preprocess_text("~SEQ(X,1,0,5) a\n~SEQ(X,1\n~LST(X) a\n~SEQx(X,a,c) a\n", config_id="n")
    assert [p.code for p in out.problems] == ["loop", "loop", "loop", "loop"]
    assert out.lines == []


def test_token_locations() -> None:
    out = preprocess_text("\n\n   priority   100\n", path="k.conf", config_id="n")
    (line,) = out.lines
    assert [(t.loc.file, t.loc.line, t.loc.col) for t in line] == [
        ("k.conf", 3, 4),
        ("k.conf", 3, 15),
    ]


def test_brace_expand() -> None:
    assert brace_expand("a{b,c{d,e}}f") == ["abf", "acdf", "acef"]
    assert brace_expand("x{y}z") == ["x{y}z"]


def test_include_relative_glob_and_order(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("b 2\n")
    (tmp_path / "conf.d" / "a.conf").write_text("a 1\ninclude ../leaf.inc\n")
    (tmp_path / "leaf.inc").write_text("leaf 3\n")
    (tmp_path / "conf.d" / "sub.conf").mkdir()  # directories are skipped
    main = tmp_path / "main.conf"
    main.write_text("top {\ninclude conf.d/*.conf\n}\n")
    out = Preprocessor("n").run_file(str(main))
    assert [[t.text for t in ln] for ln in out.lines] == [
        ["top", "{"],
        ["a", "1"],
        ["leaf", "3"],
        ["b", "2"],
        ["}"],
    ]
    assert out.lines[2][0].loc.file == str(tmp_path / "conf.d" / "../leaf.inc")
    assert out.problems == []


def test_include_missing_is_warning_strict_variants_error(tmp_path: Path) -> None:
    main = tmp_path / "main.conf"
    main.write_text("include nothere.conf\nincluder nothere.conf\n")
    out = Preprocessor("n").run_file(str(main))
    assert [(p.severity, p.code) for p in out.problems] == [
        ("warning", "config-missing"),
        ("error", "config-missing"),
    ]


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf\nx 1\n")
    (tmp_path / "b.conf").write_text("include a.conf\ny 1\n")
    out = Preprocessor("n").run_file(str(tmp_path / "a.conf"))
    assert [p.code for p in out.problems] == ["include-loop"]
    assert [[t.text for t in ln] for ln in out.lines] == [["y", "1"], ["x", "1"]]


def test_include_on_conditional_line_is_not_honoured(tmp_path: Path) -> None:
    (tmp_path / "x.conf").write_text("x 1\n")
    (tmp_path / "m.conf").write_text("@n include x.conf\n")
    out = Preprocessor("n").run_file(str(tmp_path / "m.conf"))
    assert [[t.text for t in ln] for ln in out.lines] == [["include", "x.conf"]]


def test_missing_main_file_is_fatal(tmp_path: Path) -> None:
    out = Preprocessor("n").run_file(str(tmp_path / "nope.conf"))
    assert [(p.severity, p.code) for p in out.problems] == [("fatal", "config-missing")]


def test_line_too_long_and_unterminated_quote() -> None:
    out = preprocess_text("a " + "x" * 1100 + '\nb "open\nc 1\n', config_id="n")
    assert [p.code for p in out.problems] == ["line-too-long", "unterminated-quote"]
    assert [[t.text for t in ln] for ln in out.lines] == [["c", "1"]]


def test_runaway_expansions_are_stopped() -> None:
    defs = "".join(f"$D{i}=${{D{i + 1}}}${{D{i + 1}}}\n" for i in range(40))
    out = preprocess_text(defs + "a ${D0}\n$S=${S}x\nb ${S}\n", config_id="n")
    assert [(p.code, p.line) for p in out.problems] == [
        ("expansion-depth", 41),
        ("expansion-depth", 43),
    ]


def test_many_substitutions_on_one_line() -> None:
    text = "$X=1\nv " + " ".join(["$X"] * 100) + "\n"
    assert lines(text) == [["v", *(["1"] * 100)]]


def test_nested_loops_are_capped() -> None:
    p = Preprocessor("n")
    p._loop_budget = 50
    out = p.run_text("~SEQ(A,10) ~SEQ(B,10) v $A $B\n", "<t>")
    assert len(out.lines) < 50 and [x.code for x in out.problems] == ["loop"]


def test_include_loop_through_another_spelling(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "a.conf").write_text("include d/../a.conf\nx 1\n")
    out = Preprocessor("n").run_file(str(tmp_path / "a.conf"))
    assert [p.code for p in out.problems] == ["include-loop"]


def test_include_brace_alternatives_keep_their_order(tmp_path: Path) -> None:
    (tmp_path / "a.inc").write_text("a 1\n")
    (tmp_path / "b.inc").write_text("b 2\n")
    (tmp_path / "m.conf").write_text('include {b,a}.inc "x y.none"\n')
    out = Preprocessor("n").run_file(str(tmp_path / "m.conf"))
    assert [[t.text for t in ln] for ln in out.lines] == [["b", "2"], ["a", "1"]]
    assert [p.text for p in out.problems] == ["x y.none"]
