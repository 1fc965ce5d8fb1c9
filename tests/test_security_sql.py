"""SQL only through bound parameters: a scan of the source for SQL text built from values.

Every call that hands SQL text to a database (``execute``, ``executemany``,
``executescript``, ``exec_driver_sql``, SQLAlchemy's ``text`` and ``literal_column``,
psycopg's ``cursor.copy``) is found with :mod:`ast` in ``carbon/``, ``dashboard/`` and
``migrations/``. Its SQL may be a literal, or a name bound to a literal in the same function
or module; SQL built with an f-string, ``%``, ``+`` or ``.format`` from anything else is
refused unless :data:`ALLOWED` names the function and says why the value cannot be a bound
parameter (an identifier or a statement that takes no parameters) and why it cannot carry
text from a request.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("carbon", "dashboard", "migrations")

SQL_METHODS = frozenset({"execute", "executemany", "executescript", "exec_driver_sql"})
"""Methods whose first argument is SQL (DB-API cursors, SQLAlchemy, Alembic's ``op``)."""

SQL_FUNCTIONS = frozenset({"text", "literal_column"})
"""SQLAlchemy functions whose first argument is SQL, when imported from SQLAlchemy."""

SPOOL_CLAUSES = (
    "the agent's own spool (SQLite): clauses written in carbon/remote/spool.py with '?' "
    "placeholders only (_OWNER_IS, 'run_id = ?', a '?' per id of an IN list); every value "
    "is bound"
)
PARTITION_COPY = (
    "a migration copying rows between tables (no parameters in DDL or INSERT ... SELECT) "
    "over constant column lists and SQL expressions chosen by dialect"
)

ALLOWED: dict[tuple[str, str], str] = {
    ("carbon/remote/_spool_file.py", "__init__"): (
        "PRAGMA user_version takes no parameters; SCHEMA_VERSION is an int constant"
    ),
    ("carbon/remote/_spool_file.py", "_connection"): (
        "PRAGMA busy_timeout takes no parameters; the value is int() of a float setting"
    ),
    ("carbon/remote/spool.py", "delete"): SPOOL_CLAUSES,
    ("carbon/remote/spool.py", "adopt_orphans"): SPOOL_CLAUSES,
    ("carbon/remote/spool.py", "pending"): SPOOL_CLAUSES,
    ("carbon/remote/spool.py", "count"): SPOOL_CLAUSES,
    ("carbon/remote/spool.py", "open_runs"): SPOOL_CLAUSES,
    ("carbon/remote/spool.py", "_forget_ended"): SPOOL_CLAUSES,
    ("carbon/store/bulk.py", "insert_samples"): (
        "COPY ... FROM STDIN takes no parameters; its column list is a constant tuple"
    ),
    ("carbon/store/maintenance.py", "_try_lock"): (
        "SET LOCAL takes no parameters; LOCK_TIMEOUT_MS is an int constant"
    ),
    ("carbon/store/partitions.py", "_attach_day"): (
        "a table name (identifiers cannot be bound) made of a date's digits, and partition "
        "bounds (ATTACH PARTITION takes no parameters) from datetime.isoformat(); the rows' "
        "bounds of the INSERT are bound"
    ),
    ("carbon/store/retention.py", "apply_retention"): (
        "a table name (identifiers cannot be bound) read from pg_inherits, kept only when it "
        "is a partition of sample named sample_p and a date (partitions.day_partitions)"
    ),
    ("migrations/versions/0003_team_server.py", "_unlink_samples"): PARTITION_COPY,
    ("migrations/versions/0003_team_server.py", "_partition_samples"): PARTITION_COPY,
    ("migrations/versions/0003_team_server.py", "downgrade"): PARTITION_COPY,
    ("migrations/versions/0004_minute_series.py", "upgrade"): PARTITION_COPY,
    ("migrations/versions/0004_minute_series.py", "downgrade"): PARTITION_COPY,
}
"""SQL built from values on purpose, by (file, function), with why it is safe."""


@dataclass(frozen=True)
class Site:
    """SQL text built from values, where it is handed to the database."""

    path: str
    function: str
    line: int
    code: str


def _sqlalchemy_names(tree: ast.Module) -> set[str]:
    """The local names of SQLAlchemy's SQL functions and of the modules that hold them."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names |= {a.asname or a.name for a in node.names if a.name in SQL_FUNCTIONS}
        elif isinstance(node, ast.Import):
            names |= {
                a.asname or a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"
            }
    return names


def _is_sql_call(call: ast.Call, sqlalchemy: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        if func.attr in SQL_METHODS:
            return True
        if func.attr == "copy" and "cursor" in ast.unparse(func.value):
            return True
        if func.attr in SQL_FUNCTIONS:
            return isinstance(func.value, ast.Name) and func.value.id in sqlalchemy
        return False
    return isinstance(func, ast.Name) and func.id in SQL_FUNCTIONS and func.id in sqlalchemy


def _built(node: ast.expr) -> bool:
    """Whether an expression builds text from values (not a literal, nor literals joined)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return not all(isinstance(side, ast.Constant) for side in (node.left, node.right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "format" and isinstance(node.func.value, ast.Constant)
    return False


def _assigned(scope: ast.AST, name: str) -> Iterator[ast.expr]:
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                yield node.value
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and node.value is not None
        ):
            yield node.value


def built_sql(path: Path, root: Path = ROOT) -> Iterator[Site]:
    """Every SQL call of a file whose SQL is built from values, directly or by a name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    sqlalchemy = _sqlalchemy_names(tree)
    relative = path.relative_to(root).as_posix()
    scopes: list[tuple[str, ast.AST]] = [
        (node.name, node)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    for name, scope in [*scopes, ("<module>", tree)]:
        for node in ast.walk(scope):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            if not _is_sql_call(node, sqlalchemy):
                continue
            if name == "<module>" and any(node in set(ast.walk(s)) for _, s in scopes):
                continue  # found in its function already
            sql = node.args[0]
            candidates = [sql]
            if isinstance(sql, ast.Name):  # a name: what it was given, here or in the module
                candidates += [*_assigned(scope, sql.id), *_assigned(tree, sql.id)]
            if any(_built(candidate) for candidate in candidates):
                yield Site(relative, name, node.lineno, ast.unparse(node)[:120])


def scan() -> list[Site]:
    """Every site in the scanned folders, innermost function first."""
    found: dict[tuple[str, int], Site] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for site in built_sql(path):
                found.setdefault((site.path, site.line), site)
    return sorted(found.values(), key=lambda s: (s.path, s.line))


def test_sql_is_built_from_values_only_where_it_must_be() -> None:
    sites = scan()
    refused = [s for s in sites if (s.path, s.function) not in ALLOWED]
    assert refused == [], "SQL built from values; bind them, or allow it with the reason"
    stale = set(ALLOWED) - {(s.path, s.function) for s in sites}
    assert stale == set(), "ALLOWED names functions that build no SQL any more"


def test_the_scan_finds_sql_built_in_each_way(tmp_path: Path) -> None:
    """The scan itself: each way of building SQL is found, literals and bound values are not."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from sqlalchemy import text\n"
        "QUERY = 'SELECT 1 FROM run WHERE id = ' + RUN\n"
        "def f(conn, name, cursor):\n"
        "    conn.execute(f'SELECT * FROM run WHERE name = {name}')\n"
        "    conn.execute('SELECT * FROM run WHERE name = %s' % name)\n"
        "    conn.execute(text('SELECT * FROM run WHERE name = ' + name))\n"
        "    conn.execute(text('SELECT * FROM {}'.format(name)))\n"
        "    conn.exec_driver_sql(QUERY)\n"
        "    cursor.copy(f'COPY {name} FROM STDIN')\n"
        "    conn.execute(text('SELECT * FROM run WHERE name = :name'), {'name': name})\n"
        "    conn.execute('SELECT 1 ' 'FROM run')\n"
        "    conn.execute(text('SELECT 1') if name else text('SELECT 2'))\n"
    )
    found = list(built_sql(probe, root=tmp_path))
    assert sorted(site.line for site in found) == [4, 5, 6, 7, 8, 9]
    assert {(site.path, site.function) for site in found} == {("probe.py", "f")}
