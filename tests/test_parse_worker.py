"""The parse worker (`audit.parser`): a long history is parsed in a second process ahead of the reader.

What it must never change is what the audit reads: every statement gets the tree, the error or the
problem an in-process parse gives, whatever the worker does (answers, fails, dies, is asked out of
order), and a worker never outlives the reading that started it.
"""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml

from blueprint_mcp.audit import audit_parsed, parser
from blueprint_mcp.audit.parse import Split, read_sql
from blueprint_mcp.audit.parser import Parses, parse
from blueprint_mcp.templates import load_template, template_names
from blueprint_mcp.tools import blueprint_sql

CORPUS = yaml.safe_load((Path(__file__).parent / "corpus" / "platform.yaml").read_text(encoding="utf-8"))

TRICKY = [
    ("plain.sql", "create table public.t (id int primary key, name text not null);\n"
                  "alter table public.t enable row level security;\n"
                  "create policy p on public.t for select to authenticated using (name <> 'x');"),
    ("errors.sql", "create tabel public.oops (id int);\nselect 'unterminated;\ncreate table public.after (id int);"),
    ("unicode.sql", "create table public.café (naïve text default 'é😀');\n"
                    "create policy \"é p\" on public.café using (naïve = '😀');"),
    ("nul.sql", "create table public.n (a text default 'x\x00y');"),
    # JSON deeper than orjson takes (the standard library decodes it), and deeper than the grammar takes
    ("deep.sql", "select " + "(" * 3000 + "1" + ")" * 3000 + ";\ncreate table public.d (id int);"),
    ("deeper.sql", "select " + "(" * 20000 + "1" + ")" * 20000 + ";"),
    ("atomic.sql", "create function public.f() returns int language sql begin atomic select 1; end;\n"
                   "select 1; select 2;"),
    ("meta.sql", "\\set ON_ERROR_STOP on\ncreate table public.m (id int);\n\\i other.sql\n"),
    ("tx.sql", "begin;\ncreate table public.gone (id int);\nrollback;\nbegin;\nsavepoint a;\n"
               "create table public.kept (id int);\nrelease a;\ncommit;"),
    ("empty.sql", ""),
    ("comments.sql", "-- only a comment\n/* and a block */"),
    ("surrogate.sql", "create table public.s (a text default '\udcff');"),
]


def _state(value):
    """Everything a model holds, excluded fields (the parse trees) included."""
    if isinstance(value, pydantic.BaseModel):
        return {name: _state(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, list | tuple):
        return [_state(v) for v in value]
    if isinstance(value, dict):
        return {k: _state(v) for k, v in value.items()}
    return value


def _read_both(sources):
    local, worker = read_sql(sources, worker=False), read_sql(sources, worker=True)
    return local, worker


HISTORIES = [
    pytest.param(TRICKY, id="tricky"),
    pytest.param([(f"{c['name']}.sql", c["sql"]) for c in CORPUS], id="platform-corpus"),
    *[pytest.param(blueprint_sql(load_template(t), t), id=t) for t in template_names()],
]


@pytest.mark.parametrize("sources", HISTORIES)
def test_the_worker_reads_every_history_exactly_as_this_process_does(sources):
    local, worker = _read_both(sources)
    assert _state(worker.schema) == _state(local.schema)
    assert [s.model_dump() if isinstance(s, pydantic.BaseModel) else vars(s) for s in worker.suppressions] == \
        [s.model_dump() if isinstance(s, pydantic.BaseModel) else vars(s) for s in local.suppressions]
    assert audit_parsed(worker) == audit_parsed(local)


def test_the_tricky_history_has_the_problems_an_in_process_parse_reports():
    """The reference itself: bad statements are problems at their place, the rest is read."""
    problems = [(p.location.file, p.location.line, p.message) for p in read_sql(TRICKY, worker=True).schema.problems]
    assert problems == [
        ("errors.sql", 1, 'syntax error: syntax error at or near "tabel"'),
        ("errors.sql", 2, "syntax error: unterminated quoted string at or near \"'unterminated;\ncreate table "
                          "public.after (id int);\""),
        ("deeper.sql", 1, 'syntax error: memory exhausted at or near "("'),
        ("surrogate.sql", 1, "statement cannot be parsed (UnicodeEncodeError: nested too deeply or not valid text)"),
    ]
    tables = {t.qualified for t in read_sql(TRICKY, worker=True).schema.tables}
    assert {"public.t", "public.café", "public.d", "public.m", "public.kept"} <= tables
    assert "public.gone" not in tables


def _texts(sources):
    return [Split(text).texts for _, text in sources]


def _answers(parses, texts):
    out = []
    for text in texts:
        try:
            out.append(("tree", parses.take(text)))
        except Exception as exc:  # noqa: BLE001 - compared with what parse raises
            out.append(("error", type(exc).__name__, str(exc)))
    return out


def _expected(texts):
    out = []
    for text in texts:
        try:
            out.append(("tree", parse(text)))
        except Exception as exc:  # noqa: BLE001
            out.append(("error", type(exc).__name__, str(exc)))
    return out


def test_a_worker_that_dies_leaves_the_rest_to_this_process():
    batches = _texts(TRICKY) * 3
    texts = [t for b in batches for t in b]
    with Parses(True) as parses:
        for b in batches:
            parses.add(b)
        parses.added_all()
        first = _answers(parses, texts[:5])
        parses._proc.kill()
        rest = _answers(parses, texts[5:])
    assert first + rest == _expected(texts)


def test_a_statement_asked_out_of_order_is_parsed_here_and_the_worker_stopped():
    with Parses(True) as parses:
        parses.add(["select 1", "select 2"])
        parses.added_all()
        proc = parses._proc
        assert parses.take("select 2") == parse("select 2")
        assert parses._proc is None and proc.poll() is not None
        assert parses.take("select 1") == parse("select 1")


def test_a_reading_that_stops_early_stops_its_worker():
    batch = ["create table public.t%d (id int);" % i for i in range(20000)]
    with pytest.raises(RuntimeError), Parses(True) as parses:
        parses.add(batch)
        parses.added_all()
        proc = parses._proc
        parses.take(batch[0])
        raise RuntimeError("a handler failed")
    assert proc.poll() is not None


def test_the_worker_runs_only_for_a_long_history_on_a_machine_with_a_second_core(monkeypatch):
    long = [("a.sql", "x" * parser.WORKER_MIN_CHARS)]
    assert Parses.wanted(long)
    assert not Parses.wanted([("a.sql", "x" * (parser.WORKER_MIN_CHARS - 1))])
    monkeypatch.setattr(parser.os, "sched_getaffinity", lambda pid: {0})
    assert not Parses.wanted(long)
    monkeypatch.delattr(parser.os, "sched_getaffinity")
    monkeypatch.setattr(parser.os, "cpu_count", lambda: 2)
    assert Parses.wanted(long)


def test_without_a_worker_every_statement_is_parsed_here():
    parses = Parses(False)
    assert parses._proc is None
    texts = [t for b in _texts(TRICKY) for t in b]
    assert _answers(parses, texts) == _expected(texts)


def test_the_worker_answers_and_only_what_it_could_not_parse_is_parsed_again_here(monkeypatch):
    here = []
    real = parser.parse
    monkeypatch.setattr(parser, "parse", lambda text: here.append(text) or real(text))
    read_sql(TRICKY, worker=True)
    assert [t[:20] for t in here] == ["create tabel public.", "select 'unterminated", "select " + "(" * 13,
                                      "create table public."]
    assert "\udcff" in here[-1]


def test_a_batch_with_a_nul_is_parsed_here():
    """The worker separates statements with NUL (the reader replaces NULs in the SQL it reads); a caller
    that sends one anyway gets this process's parses, not misaligned answers."""
    texts = ["select 1", "select 'a\x00b'", "select 2"]
    with Parses(True) as parses:
        parses.add(texts)
        parses.added_all()
        assert parses._proc is None
        assert _answers(parses, texts) == _expected(texts)


def test_a_worker_that_cannot_start_its_parser_leaves_everything_to_this_process(monkeypatch):
    """A worker that fails at once (here: its script is missing) costs a failed start, never an answer."""
    monkeypatch.setattr(parser, "_WORKER", Path("/nonexistent/parse_worker.py"))
    texts = [t for b in _texts(TRICKY) for t in b]
    with Parses(True) as parses:
        parses.add(texts)
        parses.added_all()
        assert _answers(parses, texts) == _expected(texts)
        assert parses._proc is None
