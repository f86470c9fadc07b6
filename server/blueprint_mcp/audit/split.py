"""Cut SQL source into statements without parsing it, the way psql does.

Semicolons inside quotes, dollar-quoted bodies, comments (nested block comments included) and
`BEGIN ATOMIC ... END` function bodies do not end a statement; a psql meta-command (`\\set`, `\\i`...)
runs to the end of its line. One bad statement therefore never hides the rest of a file.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

# Everything that changes how the following characters are read; the rest is skipped in bulk. Each
# pattern starts with a character class, so the regex engine skips uninteresting text in C; whether a
# keyword, an E'' string or a dollar quote starts a word is checked on the (few) candidates it finds.
_WORDS = ("begin", "atomic", "case", "end", "where", "using", "check", "with")
_SPLIT_WORDS = ("begin", "case", "end")


def _token_pattern(words: tuple[str, ...], singles: str) -> re.Pattern[str]:
    """One character from a class, then what it must be followed by to start a token: `--`, `/*`, a
    dollar quote, the rest of a keyword, or nothing (a quote or one of `singles`). An E'' string is found
    from its quote, so the common letter e is not in the class."""
    firsts = "".join(sorted({w[0] + w[0].upper() for w in words}))
    followers = [r"(?<=-)-", r"(?<=/)\*", r"(?<=\$)(?:[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$"]
    followers += ["(?<=[%s%s])%s(?![\\w$])" % (w[0], w[0].upper(), "".join(f"[{c}{c.upper()}]" for c in w[1:]))
                  for w in words]
    followers.append(f"(?<=['\"{singles}])")
    return re.compile(f"[-/$'\"{firsts}{singles}](?:{'|'.join(followers)})")


@lru_cache(maxsize=None)
def _tokens(kind: str) -> re.Pattern[str]:
    """The patterns, compiled at first use (together 30 ms: not at server start). `split` needs only `;`
    and backslashes, and BEGIN/CASE/END when the source has BEGIN ATOMIC ("atomic"); `paren` finds groups."""
    words, singles = {"all": (_WORDS, ";\\\\()"), "atomic": (_SPLIT_WORDS, ";\\\\"), "plain": ((), ";\\\\"),
                      "paren": ((), "()")}[kind]
    return _token_pattern(words, singles)


_WORD_CHAR = re.compile(r"[\w$]")
_STRING_END = re.compile(r"(?:[^']|'')*'")
_ESTRING_END = re.compile(r"(?:[^'\\]|\\.|'')*'", re.DOTALL)
_IDENT_END = re.compile(r'(?:[^"]|"")*"')
_BLOCK = re.compile(r"/\*|\*/")
_BLANK = re.compile(r"\s*")
_ATOMIC = re.compile(r"\s+atomic(?![\w$])", re.IGNORECASE)
_ATOMIC_ANYWHERE = re.compile(r"atomic", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement: `text` starts at its first significant character (offset `start` in the source)."""

    text: str
    start: int
    end: int  # offset just past the terminating ';' (or the end of the source)
    meta: bool = False  # a psql meta-command line, never sent to the parser


@dataclass(frozen=True, slots=True)
class Comment:
    text: str  # without the leading "--"
    start: int


class Lines:
    """Offset -> 1-based (line, column) in one source text."""

    def __init__(self, source: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def at(self, offset: int) -> tuple[int, int]:
        i = bisect_right(self._starts, offset) - 1
        return i + 1, offset - self._starts[i] + 1


def _skip_block_comment(source: str, pos: int) -> int:
    """Past the end of the (possibly nested) block comment opened just before `pos`."""
    depth = 1
    for m in _BLOCK.finditer(source, pos):
        depth += 1 if m.group() == "/*" else -1
        if depth == 0:
            return m.end()
    return len(source)


def _lead(source: str, pos: int, stop: int) -> int:
    """The first offset at or after `pos` that is neither blank nor inside a comment."""
    while True:
        pos = _BLANK.match(source, pos, stop).end()
        if source.startswith("--", pos):
            eol = source.find("\n", pos, stop)
            pos = stop if eol < 0 else eol
        elif source.startswith("/*", pos):
            pos = min(_skip_block_comment(source, pos + 2), stop)
        else:
            return pos


def _skip_quoted(source: str, token: str, pos: int) -> int:
    """Past the end of the literal, quoted identifier or dollar-quoted body that `token` opened."""
    if token.startswith("$"):
        end = source.find(token, pos)
        return len(source) if end < 0 else end + len(token)
    pattern = {"'": _STRING_END, '"': _IDENT_END}.get(token, _ESTRING_END)
    m = pattern.match(source, pos)
    return m.end() if m else len(source)


def _scan(text: str, pos: int = 0, tokens: re.Pattern[str] | None = None):
    """Significant tokens (lower-cased, start, end) from `pos`; comments come out as "--" tokens."""
    search, word_char, origin = (tokens or _tokens("all")).search, _WORD_CHAR.match, pos
    while True:
        m = search(text, pos)
        if m is None:
            return
        start, pos = m.span()
        token = m.group()
        if len(token) > 1 and token[0] not in "-/" and start and word_char(text, start - 1):
            pos = start + 1  # inside a longer word: `a$b$` is no dollar quote, `legend` no END
            continue
        token = token.lower()
        if token == "--":
            eol = text.find("\n", pos)
            pos = len(text) if eol < 0 else eol
            yield token, start, pos
        elif token == "/*":
            pos = _skip_block_comment(text, pos)
        elif token == "'":
            e_string = start > origin and text[start - 1] in "eE" and not (start > 1 and word_char(text, start - 2))
            pos = _skip_quoted(text, "e'" if e_string else "'", pos)
        elif token[0] in "\"$":
            pos = _skip_quoted(text, m.group() if token[0] == "$" else token, pos)
        else:
            yield token, start, pos


def _mentions_atomic(source: str) -> bool:
    """Whether "atomic" appears in any case. A case-insensitive regex compares every character of the file
    (a fifth of splitting it); ASCII text is lowered and searched in bulk instead. Other text keeps the
    regex, whose case folding matches more than lowering does (İ and ı are i to it)."""
    if source.isascii():
        return "atomic" in source.lower()
    return _ATOMIC_ANYWHERE.search(source) is not None


def split(source: str) -> tuple[list[Statement], list[Comment]]:
    """Statements and `--` comments of `source`, in order."""
    statements: list[Statement] = []
    comments: list[Comment] = []
    begin = 0  # where the current statement's text (leading blanks included) starts
    atomic = 0  # nesting inside BEGIN ATOMIC ... END, where ';' does not end the statement
    skip_to = 0  # a meta-command owns the rest of its line

    def flush(stop: int, end: int) -> None:
        lead = _lead(source, begin, stop)
        if lead < stop:
            statements.append(Statement(source[lead:stop], lead, end))

    tokens = _tokens("atomic" if _mentions_atomic(source) else "plain")
    for token, start, end in _scan(source, 0, tokens):
        if start < skip_to:
            continue
        if token == "--":
            comments.append(Comment(source[start + 2:end], start))
        elif token == ";" and atomic == 0:
            flush(start, end)
            begin = end
        elif token == "\\":
            # psql meta-command: the buffer so far is a statement of its own, the line is not SQL.
            flush(start, start)
            eol = source.find("\n", end)
            skip_to = begin = len(source) if eol < 0 else eol
            statements.append(Statement(source[start:skip_to], start, skip_to, meta=True))
        elif token == "begin" and (atomic or _ATOMIC.match(source, end)):
            atomic += 1
        elif token == "case" and atomic:
            atomic += 1
        elif token == "end" and atomic:
            atomic -= 1
    flush(len(source), len(source))
    return statements, comments


def paren_group(text: str, after: int = 0) -> tuple[int, int] | None:
    """(start, end) of the contents of the first parenthesised group at or after `after`, blanks trimmed."""
    depth, open_at = 0, -1
    for token, start, end in _scan(text, after, _tokens("paren")):
        if token == "(":
            if depth == 0:
                open_at = end
            depth += 1
        elif token == ")" and depth:
            depth -= 1
            if depth == 0:
                inner = text[open_at:start]
                return open_at + len(inner) - len(inner.lstrip()), start - len(inner) + len(inner.rstrip())
    return None


def top_level_words(text: str) -> list[tuple[str, int]]:
    """(keyword, offset) of WHERE/USING/CHECK/WITH outside parentheses, quotes and comments."""
    out, depth = [], 0
    for token, start, _ in _scan(text):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token in ("where", "using", "check", "with"):
            out.append((token, start))
    return out
