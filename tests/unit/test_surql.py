from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surreal_store import RecordId, ValidationError
from surreal_store._surql import checksum, normalise, shape, split_statements, validate_identifier


def test_split_respects_strings_comments_and_blocks() -> None:
    text = """
    -- a comment; with a semicolon
    DEFINE EVENT e ON t WHEN $event = 'CREATE' THEN { CREATE audit SET a = 1; CREATE b; };
    RETURN "a;b" + 'c;\\'d'; # trailing; comment
    SELECT * FROM `we;ird` WHERE x = ⟨semi;colon⟩ /* block; comment */;
    """
    statements = split_statements(text)
    assert len(statements) == 3
    assert statements[0].startswith("DEFINE EVENT") and statements[0].endswith("}")
    assert statements[1].startswith("RETURN")
    assert statements[2].startswith("SELECT")


@pytest.mark.parametrize(
    ("text", "read_only"),
    [
        ("SELECT * FROM t WHERE a = $a", True),
        ("RETURN 1; INFO FOR DB", True),
        ("SELECT * FROM t; CREATE t:1", False),
        ("RETURN fn::counter()", False),
        ("SELECT * FROM t WHERE name = 'DELETE ME'", True),
        ("SELECT * FROM (UPDATE t SET a = 1)", False),
        ("LET $x = 1; RETURN $x", True),
    ],
)
def test_read_only_classification(text: str, read_only: bool) -> None:
    assert shape(text).read_only is read_only


@pytest.mark.parametrize(
    ("text", "atomic"),
    [
        ("CREATE t:1", True),
        ("BEGIN; CREATE t:1; CREATE t:2; COMMIT;", True),
        ("BEGIN TRANSACTION; CREATE t:1; COMMIT TRANSACTION;", True),
        ("CREATE t:1; CREATE t:2", False),
        ("BEGIN; CREATE t:1; COMMIT; CREATE t:2", False),
        ("BEGIN; CREATE t:1; COMMIT; BEGIN; CREATE t:2; COMMIT;", False),
    ],
)
def test_atomic_classification(text: str, atomic: bool) -> None:
    assert shape(text).atomic is atomic


def test_normalise_ignores_line_endings_and_trailing_space_only() -> None:
    base = "DEFINE TABLE a;\nDEFINE TABLE b;\n"
    assert checksum(base) == checksum("DEFINE TABLE a;   \r\nDEFINE TABLE b;\r\n\r\n")
    assert checksum(base) != checksum("DEFINE TABLE a;\nDEFINE TABLE  b;\n")
    assert checksum(base) != checksum("-- note\n" + base)
    assert normalise("x\r\ny  ") == "x\ny\n"


_atom = st.text(alphabet=st.characters(blacklist_characters="'\\\n\r"), max_size=20)


@given(st.lists(_atom, min_size=1, max_size=6))
def test_split_round_trips_generated_statements(values: list[str]) -> None:
    text = ";\n".join(f"RETURN '{v}'" for v in values)
    assert split_statements(text) == [f"RETURN '{v}'" for v in values]


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a;DROP", "a b", "ü", "x" * 200])
def test_identifier_validation_refuses(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_identifier(name)


def test_record_id_parse_and_format() -> None:
    assert RecordId.parse("commit:abc") == RecordId("commit", "abc")
    assert RecordId.parse("event:42") == RecordId("event", 42)
    assert RecordId.parse("abc", table="commit") == RecordId("commit", "abc")
    odd = RecordId("memory", "has space:⟩")
    assert RecordId.parse(str(odd)) == odd
    assert hash(RecordId("t", ["a", 1])) == hash(RecordId("t", ["a", 1]))
    for bad in ("nocolon", "commit:", "bad table:x", "a:b c"):
        with pytest.raises(ValidationError):
            RecordId.parse(bad)
    with pytest.raises(ValidationError):
        RecordId.parse("branch:x", table="commit")
