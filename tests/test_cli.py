"""The command line: run in-process through typer's CliRunner (exit codes, one-line errors,
output), and as a real subprocess where the entry point's own exit path is what is tested."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from surreal_store import load_schema_files
from surreal_store._cli import app

FILES = load_schema_files()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command, run in this process; the result looks like a finished subprocess's."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SURREAL_STORE_")}
    result = _RUNNER.invoke(app, list(args), env={**unset, **(env or {})}, catch_exceptions=False)
    return subprocess.CompletedProcess(
        list(args), result.exit_code, stdout=result.stdout, stderr=result.stderr
    )


_RUNNER = CliRunner()


def cli_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command as a real subprocess: the console entry point and its exit path."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SURREAL_STORE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "surreal_store", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def empty_store(url: str) -> None:
    """Create the store's files with nothing in them (no schema): a store that exists."""
    import anyio

    from surreal_store import Store

    async def make() -> None:
        async with Store(url, check_schema=False):
            pass

    anyio.run(make, backend="asyncio")


def test_status_json_after_migrate_shows_nothing_pending(kv_url: str) -> None:
    missing = cli_process("--url", kv_url, "status", "--json")
    assert missing.returncode == 1 and "no store at" in missing.stderr, missing.stderr
    assert not Path(kv_url.removeprefix("surrealkv://")).exists()
    empty_store(kv_url)
    before = cli_process("--url", kv_url, "status", "--json")
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["pending"] == [f.label for f in FILES]

    done = cli("--url", kv_url, "migrate")
    assert done.returncode == 0, done.stderr
    for f in FILES:
        assert f"applied {f.label}" in done.stdout
    assert "applied the access layer" in done.stdout

    after = cli("--url", kv_url, "status", "--json")
    assert after.returncode == 0, after.stderr
    data = json.loads(after.stdout)
    assert data["pending"] == []
    assert data["db_version"] == data["code_version"] == FILES[-1].version
    assert data["drift"]["ok"] is True
    assert data["access_layer"] == "current"
    assert [m["version"] for m in data["applied"]] == [f.version for f in FILES]


def test_url_from_the_environment(kv_url: str) -> None:
    done = cli("migrate", env={"SURREAL_STORE_URL": kv_url})
    assert done.returncode == 0, done.stderr
    verified = cli("verify", env={"SURREAL_STORE_URL": kv_url})
    assert verified.returncode == 0, verified.stderr
    assert "schema verified" in verified.stdout


def test_dry_run_prints_the_plan_and_writes_nothing(kv_url: str) -> None:
    missing = cli("--url", kv_url, "migrate", "--dry-run")
    assert missing.returncode == 1 and "no store at" in missing.stderr
    assert not Path(kv_url.removeprefix("surrealkv://")).exists()  # not even its folder
    empty_store(kv_url)
    plan = cli("--url", kv_url, "migrate", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "001_core.surql" in plan.stdout
    assert "DEFINE TABLE OVERWRITE schema_migration" in plan.stdout
    status = cli("--url", kv_url, "status", "--json", "--no-drift")
    assert json.loads(status.stdout)["applied"] == []


def test_verify_fails_on_a_tampered_file_and_rebless_fixes_it(
    kv_url: str, schema_copy: Path
) -> None:
    common = ("--url", kv_url, "--schema-dir", str(schema_copy))
    assert cli(*common, "migrate").returncode == 0
    core = schema_copy / "001_core.surql"
    core.write_text(core.read_text() + "\n-- an edit after the fact\n")

    verified = cli(*common, "verify")
    assert verified.returncode == 1
    assert "001_core.surql changed since it was applied" in verified.stderr

    refused = cli(*common, "migrate")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "Traceback" not in refused.stderr

    blessed = cli(*common, "rebless", "001")
    assert blessed.returncode == 0, blessed.stderr
    assert cli(*common, "verify").returncode == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--url", "rocksdb://nope", "status"), "unsupported URL scheme"),
        (("--url", "ws://127.0.0.1:9", "status"), "could not connect"),
        (("--url", "mem://", "rebless", "999"), "no schema file"),
    ],
)
def test_errors_are_one_line_and_non_zero(args: tuple[str, ...], fragment: str) -> None:
    result = cli(*args)
    assert result.returncode == 1
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_password_from_environment_is_not_printed() -> None:
    result = cli(
        "--url",
        "ws://127.0.0.1:9",
        "--username",
        "root",
        "status",
        env={"SURREAL_STORE_PASSWORD": "s3cret-value"},
    )
    assert result.returncode == 1
    assert "s3cret-value" not in result.stderr + result.stdout


def test_read_commands_over_the_domains(kv_url: str) -> None:
    import anyio

    from surreal_store import Store, commits, releases, runs

    async def seed() -> str:
        async with Store(kv_url) as store:
            await commits.commit(store, state={"step": 1}, message="first", author="agent")
            head = await commits.commit(store, state={"step": 2}, message="second", author="agent")
            await runs.create_run(store, spec_digest="a" * 64, agent_name="planner", run_id="r1")
            await runs.append_events(store, run_id="r1", events=[("tool_called", {"q": "x"})] * 3)
            await releases.promote(
                store,
                agent_name="planner",
                spec_digest="a" * 64,
                version_label="v1",
                promoted_by="ops",
            )
            return head.id

    head = anyio.run(seed, backend="asyncio")
    log = cli("--url", kv_url, "log", "--json")
    assert log.returncode == 0, log.stderr
    assert [c["message"] for c in json.loads(log.stdout)] == ["second", "first"]
    shown = cli("--url", kv_url, "show", head, "--json")
    assert json.loads(shown.stdout)["state"] == {"step": 2}
    assert json.loads(cli("--url", kv_url, "branches", "--json").stdout)[0]["head"] == head
    assert [r["id"] for r in json.loads(cli("--url", kv_url, "runs", "--json").stdout)] == ["r1"]
    events = json.loads(cli("--url", kv_url, "events", "r1", "--from", "2", "--json").stdout)
    assert [e["seq"] for e in events] == [2, 3]
    rel = json.loads(cli("--url", kv_url, "releases", "planner", "--json").stdout)
    assert rel[0]["version_label"] == "v1"
    for args in (("log",), ("branches",), ("runs",), ("events", "r1"), ("releases", "planner")):
        human = cli("--url", kv_url, *args)
        assert human.returncode == 0, (args, human.stderr)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("show", "f" * 64), "no commit"),
        (("show", "not-a-commit"), "invalid commit id"),
        (("events", "ghost"), "no run"),
        (("runs", "--status", "PAUSED"), "unknown status"),
        (("log", "--branch", "nope"), "no branch 'nope'"),
    ],
)
def test_read_commands_fail_in_one_line(kv_url: str, args: tuple[str, ...], fragment: str) -> None:
    assert cli("--url", kv_url, "migrate").returncode == 0
    result = cli("--url", kv_url, *args)
    assert result.returncode == 1
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_demo_builds_once_and_the_provenance_commands_read_it(kv_url: str) -> None:
    first = cli("--url", kv_url, "demo")
    assert first.returncode == 0, first.stderr
    assert "demo history built" in first.stdout
    for heading in ("commit log", "recall", "lineage of a summary", "why was this", "run 3 hid"):
        assert heading in first.stdout, heading
    again = cli("--url", kv_url, "demo", "--quiet")
    assert again.returncode == 0 and again.stdout == "", again.stderr
    hits = json.loads(cli("--url", kv_url, "recall", "Kyoto hotel", "--k", "3", "--json").stdout)
    assert len(hits) == 3 and hits[0]["vector_rank"] is not None
    assert all("Kyoto" in h["memory"]["content"] or h["text_rank"] is None for h in hits[:1])
    kinds = cli("--url", kv_url, "recall", "hotel", "--kind", "summary", "--json").stdout
    assert {h["memory"]["kind"] for h in json.loads(kinds)} == {"summary"}
    mid = hits[0]["memory"]["id"]
    graph = json.loads(cli("--url", kv_url, "lineage", mid, "--json").stdout)
    assert graph["roots"] and graph["nodes"][0]["id"] == f"memory:{mid}"
    impact = json.loads(cli("--url", kv_url, "impact", "demo-run-3:4", "--json").stdout)
    assert impact["memories"]
    decision = json.loads(cli("--url", kv_url, "impact", mid, "--json").stdout)
    assert mid in decision["memories"]
    runs_out = json.loads(cli("--url", kv_url, "runs", "--json").stdout)
    assert {r["id"] for r in runs_out} == {"demo-run-1", "demo-run-2", "demo-run-3"}
    d_id = json.loads(cli("--url", kv_url, "why", _any_decision(kv_url), "--json").stdout)
    assert any(n["kind"] == "decision" for n in d_id["nodes"])
    for args in (("recall", "train"), ("lineage", mid), ("why", _any_decision(kv_url))):
        human = cli("--url", kv_url, *args)
        assert human.returncode == 0, (args, human.stderr)


def _any_decision(url: str) -> str:
    import anyio

    from surreal_store import Store

    async def first() -> str:
        async with Store(url) as store:
            return await store.query_required_single(
                "SELECT VALUE record::id(id) FROM decision ORDER BY created_at LIMIT 1;", str
            )

    return anyio.run(first, backend="asyncio")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("lineage", "ab" * 32), "no memory"),
        (("lineage", "nope"), "invalid memory id"),
        (("why", "nothing-here"), "no decision nothing-here"),
        (("impact", "memory:" + "cd" * 32), "no memory"),
    ],
)
def test_provenance_commands_fail_in_one_line(
    kv_url: str, args: tuple[str, ...], fragment: str
) -> None:
    assert cli("--url", kv_url, "migrate").returncode == 0
    result = cli("--url", kv_url, *args)
    assert result.returncode == 1, result.stdout
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_export_and_import_from_the_command_line(kv_url: str, tmp_path: Path) -> None:
    assert cli("--url", kv_url, "demo", "--quiet").returncode == 0
    bundle = tmp_path / "bundle"
    done = cli("--url", kv_url, "export", str(bundle))
    assert done.returncode == 0, done.stderr
    assert "exported" in done.stdout and (bundle / "manifest.json").is_file()
    target = f"surrealkv://{tmp_path / 'copy'}"
    loaded = cli("--url", target, "import", str(bundle), "--quiet")
    assert loaded.returncode == 0 and loaded.stdout == "", loaded.stderr
    again = cli("--url", target, "import", str(bundle))
    assert again.returncode == 1 and "not empty" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    missing = cli("--url", target, "import", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "manifest" in missing.stderr


def test_import_of_another_schema_version_fails_in_one_line(kv_url: str, tmp_path: Path) -> None:
    assert cli("--url", kv_url, "migrate").returncode == 0
    bundle = tmp_path / "bundle"
    assert cli("--url", kv_url, "export", str(bundle), "--quiet").returncode == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["schema"][-1]["checksum"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = cli("--url", f"surrealkv://{tmp_path / 'other'}", "import", str(bundle))
    assert result.returncode == 1 and "same schema version" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_entry_point_exits_with_the_commands_status(kv_url: str) -> None:
    ok = cli_process("--url", kv_url, "migrate", "--json")
    assert ok.returncode == 0, ok.stderr
    usage = cli_process("log", "--url", kv_url, "--bogus")
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines() == [
        "error: No such option: --bogus (see: surreal-store log --help)"
    ]


def test_store_options_go_before_or_after_the_command(kv_url: str, tmp_path: Path) -> None:
    after = cli("migrate", "--url", kv_url, "--ns", "a", "--db", "b", "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["applied"] == [f.label for f in FILES]
    before = cli("--url", kv_url, "--ns", "a", "--db", "b", "status", "--json")
    assert json.loads(before.stdout)["pending"] == []
    # Given after the command, an option beats the same one given before it.
    other = f"surrealkv://{tmp_path / 'other'}"
    empty_store(other)
    mixed = cli("--url", kv_url, "status", "--url", other, "--json")
    assert json.loads(mixed.stdout)["db_version"] == 0


@pytest.mark.parametrize(
    "args",
    [("log", "--bogus"), ("nosuch",), ("recall",), ("log", "--limit", "zero"), ("--frob",)],
)
def test_usage_errors_are_one_line(args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def _colliding_contents(chars: int = 6) -> tuple[str, str]:
    """Two contents whose memory ids (default scope) share their first ``chars`` hex."""
    from surreal_store import memory

    seen: dict[str, str] = {}
    for i in range(1_000_000):
        content = f"collision {i}"
        prefix = memory.memory_id("default", content)[:chars]
        if prefix in seen:
            return seen[prefix], content
        seen[prefix] = content
    raise AssertionError("no collision")  # pragma: no cover


def test_ids_by_unique_prefix_as_git_takes_them(kv_url: str) -> None:
    from surreal_store import Store, memory

    a, b = _colliding_contents()

    async def fill() -> str:
        async with Store(kv_url) as store:
            first = await memory.remember(store, content=a)
            await memory.remember(store, content=b)
            return first.id

    import anyio

    key = anyio.run(fill, backend="asyncio")
    shared = key[:6]
    ambiguous = cli("--url", kv_url, "lineage", shared)
    assert ambiguous.returncode == 1
    assert f"memory id prefix {shared} is ambiguous" in ambiguous.stderr
    assert len(ambiguous.stderr.strip().splitlines()) == 1
    # A prefix long enough to tell them apart, in either spelling, is the memory.
    unique = next(n for n in range(7, 64) if not memory.memory_id("default", b).startswith(key[:n]))
    for spelling in (key[:unique], f"memory:{key[:unique]}", key[:unique].upper()):
        found = cli("--url", kv_url, "lineage", spelling, "--json")
        assert found.returncode == 0, found.stderr
        assert [n["id"] for n in json.loads(found.stdout)["nodes"]] == [f"memory:{key}"]
    assert "at least 6" in cli("--url", kv_url, "lineage", key[:5]).stderr
    assert "no memory id starts with" in cli("--url", kv_url, "lineage", "ffffff0").stderr


def test_ids_of_the_wrong_kind_say_what_was_expected(kv_url: str) -> None:
    built = json.loads(cli("--url", kv_url, "demo", "--json").stdout)
    assert built["created"] is True and built["memories"] == 225
    history = json.loads(cli("--url", kv_url, "log", "--json", "--limit", "1").stdout)
    commit = history[0]["id"]
    shown = cli("--url", kv_url, "show", commit[:8], "--json")
    assert json.loads(shown.stdout)["commit"]["id"] == commit
    wrong = cli("--url", kv_url, "lineage", f"commit:{commit[:8]}")
    assert wrong.returncode == 1
    assert "is a commit id, but a memory id is expected here" in wrong.stderr
    unknown_run = cli("--url", kv_url, "impact", "no-such-run:3")
    assert unknown_run.returncode == 1 and "no run 'no-such-run'" in unknown_run.stderr
    unknown_event = cli("--url", kv_url, "impact", "demo-run-1:999")
    assert unknown_event.returncode == 1 and "has no event 999" in unknown_event.stderr
    # No SurrealQL in what a user reads.
    for args, said in (
        (("log", "--commit", "ab" * 32), "no commit abab"),
        (("show", "cd" * 32), "no commit cdcd"),
        (("why", "ef" * 16), "no decision efef"),
        (("import", str(Path(kv_url.removeprefix("surrealkv://")).parent / "x")), "no bundle"),
    ):
        failed = cli("--url", kv_url, *args)
        assert failed.returncode == 1
        assert failed.stderr.startswith(f"error: {said}") or said in failed.stderr, failed.stderr
        assert not any(w in failed.stderr for w in ("SELECT", "statement", "$", "::")), args
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr


def test_tables_and_trees_fit_80_columns_without_cutting_words(kv_url: str) -> None:
    from surreal_store import _cli

    cli("--url", kv_url, "demo", "--quiet")
    width = _cli.out.width
    _cli.out.width = 80
    try:
        tour = cli("--url", kv_url, "demo").stdout
        recall = cli("--url", kv_url, "recall", "Kyoto hotel", "--k", "5")
        hits = json.loads(
            cli("--url", kv_url, "recall", "Kyoto hotel", "--k", "5", "--json").stdout
        )
    finally:
        _cli.out.width = width
    for text in (tour, recall.stdout):
        assert max(len(line) for line in text.splitlines()) <= 80
    # Every word of every hit's content is whole somewhere in the output: wrapped, not cut.
    words = set(recall.stdout.replace("│", " ").split())
    for hit in hits:
        assert set(hit["memory"]["content"].split()) <= words
    tour_words = set(tour.replace("│", " ").split())
    assert "..." not in tour and {"Kyoto", "hotel", "availability"} <= tour_words


def test_reindex_rebuilds_the_recall_index_of_the_demo(kv_url: str) -> None:
    assert cli("--url", kv_url, "demo", "--quiet").returncode == 0
    done = cli("--url", kv_url, "reindex")
    assert done.returncode == 0, done.stderr
    assert "rebuilt the recall index:" in done.stdout and ".memindex" in done.stdout
    recalled = cli("--url", kv_url, "recall", "tea", "--json")
    assert recalled.returncode == 0, recalled.stderr


_READ_ONLY = [
    ("recall", "hotel"),
    ("log",),
    ("show", "ab" * 32),
    ("branches",),
    ("runs",),
    ("events", "r1"),
    ("releases", "planner"),
    ("lineage", "ab" * 32),
    ("impact", "r1:1"),
    ("why", "ef" * 16),
    ("status",),
    ("verify",),
    ("migrate", "--dry-run"),
    ("rebless", "001"),
    ("reindex",),
    ("users", "list"),
    ("users", "remove", "ana"),
]


def test_read_only_commands_never_create_a_store(tmp_path: Path) -> None:
    """A mistyped path is one line naming it and how to make a store, exit 1, and nothing is
    created there: not the store, not its folders."""
    where = tmp_path / "nonexistent" / "dir" / "x.db"
    url = f"surrealkv://{where}"
    for args in [*_READ_ONLY, ("export", str(tmp_path / "bundle"))]:
        result = cli("--url", url, *args)
        assert result.returncode == 1, (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: no store at {where}:"), args
        assert f"--url {url} migrate" in lines[0], lines[0]
        assert not (tmp_path / "nonexistent").exists(), args
        assert not (tmp_path / "bundle").exists()
    # The default store too, before the demo made it: named, and how to make it.
    result = cli("recall", "hotel")
    assert result.returncode == 1
    assert "no store at" in result.stderr and "surreal-store migrate" in result.stderr
    assert not (tmp_path / "xdg").exists()


def test_reading_a_tenant_nothing_was_stored_in_creates_no_tenant(kv_url: str) -> None:
    assert cli("--url", kv_url, "migrate").returncode == 0
    for args in (("recall", "x"), ("log",), ("users", "list")):
        result = cli("--url", kv_url, "--tenant", "ghost", *args)
        assert result.returncode == 1, result.stdout
        (line,) = result.stderr.strip().splitlines()
        assert "no tenant 'ghost'" in line and "--tenant ghost migrate" in line, line
    # No schema was applied there: the tenant is still empty.
    status = cli("--url", kv_url, "--tenant", "ghost", "status", "--json", "--no-drift")
    assert json.loads(status.stdout)["applied"] == []


def test_empty_answers_are_answers(kv_url: str) -> None:
    """On a store with nothing in it: exit 0, one line saying so, and [] with --json."""
    assert cli("--url", kv_url, "migrate").returncode == 0
    import anyio

    from surreal_store import Store, runs

    async def a_run_without_events() -> None:
        async with Store(kv_url) as store:
            await runs.create_run(store, spec_digest="a" * 64, agent_name="bot", run_id="r1")

    anyio.run(a_run_without_events, backend="asyncio")
    answers = {
        ("log",): "no commits yet",
        ("branches",): "no branches yet",
        ("runs", "--agent", "nobody"): "no runs match",
        ("events", "r1"): "run r1 has no events",
        ("releases", "planner"): "no releases for agent 'planner'",
        ("recall", "hotel"): "no memories match 'hotel'",
        ("users", "list"): "no users or agents",
    }
    for args, said in answers.items():
        human = cli("--url", kv_url, *args)
        assert human.returncode == 0, (args, human.stderr)
        assert human.stdout.strip().splitlines() == [human.stdout.strip()], args
        assert said in human.stdout, (args, human.stdout)
        if args[0] == "users":
            continue
        as_json = cli("--url", kv_url, *args, "--json")
        assert as_json.returncode == 0 and json.loads(as_json.stdout) == [], args


def _words(text: str) -> str:
    return " ".join(text.split())


def test_every_command_reads_at_80_columns(kv_url: str, tmp_path: Path) -> None:
    """Every command's output (help included) at 80 columns: no line longer, none with
    trailing spaces, and what it says whole: the help's sentences and each shown memory's
    words (wrapped, never cut)."""
    from surreal_store import _cli

    assert cli("--url", kv_url, "demo", "--quiet").returncode == 0
    hits = json.loads(cli("--url", kv_url, "recall", "Kyoto hotel", "--json").stdout)
    mid, decision = hits[0]["memory"]["id"], _any_decision(kv_url)
    commit = json.loads(cli("--url", kv_url, "log", "--json", "--limit", "1").stdout)[0]["id"]
    width = _cli.out.width
    _cli.out.width = 80
    outputs: dict[tuple[str, ...], str] = {}
    try:
        for args in [
            ("demo",), ("recall", "Kyoto hotel"), ("log",), ("show", commit[:8]), ("branches",),
            ("runs",), ("events", "demo-run-1"), ("releases", "trip-planner"),
            ("lineage", mid), ("impact", "demo-run-3:4"), ("impact", mid), ("why", decision),
            ("status",), ("verify",), ("migrate",), ("migrate", "--dry-run"), ("users", "list"),
            ("version",), ("reindex",), ("export", str(tmp_path / "b")),
        ]:  # fmt: skip
            result = cli("--url", kv_url, *args)
            assert result.returncode == 0, (args, result.stderr)
            outputs[args] = result.stdout
        names = [c.name for c in _cli.app.registered_commands] + ["users"]
        helps = [("--help",), *((n, "--help") for n in names if n), ("users", "add", "--help")]
        for args in helps:
            shown = _RUNNER.invoke(_cli.app, list(args), terminal_width=80)
            assert shown.exit_code == 0, args
            outputs[args] = shown.stdout
    finally:
        _cli.out.width = width
    for args, text in outputs.items():
        for line in text.splitlines():
            # Longer only when it is one word that cannot wrap (a path, to be copied whole).
            assert len(line) <= 80 or " " not in line.strip(), (args, line)
            assert line == line.rstrip(), (args, line)
    # The command list shows each command's first paragraph whole.
    listing = _words(outputs[("--help",)])
    for command in _cli.app.registered_commands:
        doc = (command.callback.__doc__ or "") if command.callback else ""
        assert _words(doc.split("\n\n")[0]) in listing, command.name
    # Every word of what a table or tree shows is whole somewhere in it.
    recall_words = set(outputs[("recall", "Kyoto hotel")].replace("│", " ").split())
    for hit in hits:
        assert set(hit["memory"]["content"].split()) <= recall_words
    impact = outputs[("impact", "demo-run-3:4")]
    assert "7 memories and 2 decisions depend on demo-run-3:4" in impact
    assert "Kyoto hotel availability is high in June" in _words(impact.replace("│", " "))
    assert "1 memory and" in outputs[("impact", mid)] or "memories and" in outputs[("impact", mid)]
    status = outputs[("status",)]
    assert "memory_vector_fields" in status and "applied by: surrealdb-" in status


def test_recall_downloads_no_model_for_a_space_it_cannot_load(
    kv_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A space named after an API model (or any model not on this machine): recall asks
    sentence-transformers for its local copy only, finds none, and answers by full text with a
    one-line note on stderr."""
    import types

    import anyio

    from surreal_store import Store, memory

    asked: list[tuple[str, bool]] = []

    class SentenceTransformer:  # sentence-transformers' loader, with an empty model cache
        def __init__(self, name: str, device: str | None = None, **kw: bool) -> None:
            asked.append((name, kw.get("local_files_only", False)))
            if kw.get("local_files_only"):
                raise OSError(f"{name} is not in the local cache")
            raise AssertionError(f"a download of {name} was attempted")

    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = SentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)

    async def make() -> None:
        async with Store(kv_url) as s:
            await memory.declare_space(s, model="text-embedding-3-small", dimension=1536)
            await memory.remember(s, content="the hotel in Kyoto is booked")

    anyio.run(make, backend="asyncio")
    done = cli("--url", kv_url, "recall", "Kyoto hotel", "--json")
    assert done.returncode == 0, done.stderr
    assert [h["memory"]["content"] for h in json.loads(done.stdout)] == [
        "the hotel in Kyoto is booked"
    ]
    assert asked == [("text-embedding-3-small", True)]
    (note,) = done.stderr.strip().splitlines()
    assert note.startswith("note: full-text recall: the store's model text-embedding-3-small")
