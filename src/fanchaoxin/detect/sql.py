"""Where a job's SQL runs (#21): one text, DuckDB on one machine or Spark on a cluster.

A job whose windows, joins and aggregations are SQL writes them **once**, in DuckDB's dialect, and
runs them through `Sql`: `DuckSql` hands them to a DuckDB connection as they are; `SparkSql` has
sqlglot transpile each statement to Spark SQL and runs it on the session. There is no second copy to
drift: the tests run every such job on both engines and compare the outputs byte for byte.

What a job may write (the portable subset both engines agree on, checked by those tests):

- ``CREATE [OR REPLACE] TEMP TABLE name AS SELECT …`` — on Spark a cached temporary view (computed
  once, recomputed from its lineage if an executor is lost); ``CREATE … TEMP VIEW`` — a view;
  ``DROP TABLE|VIEW [IF EXISTS] name``; one or more statements separated by ``;``.
- `rows` for a query's result as a list of tuples (Spark's ``collect``, DuckDB's ``fetchall``).
- Values: ``TIMESTAMP`` is the naive local time on both (Spark's ``TIMESTAMP_NTZ``, set by
  engines.spark_session); sums that reach a finding's digest are summed as ``DECIMAL`` (a parallel sum
  of doubles may differ in the last bit between runs and between engines); every ``ORDER BY`` is
  total (ties broken by a key), since the two engines order ties differently; NULLs sort last on both
  (sqlglot writes ``NULLS LAST`` where DuckDB implies it).

sqlglot is imported only when a Spark job runs (the DuckDB path needs nothing beyond DuckDB).
"""

from __future__ import annotations

from typing import Any, Protocol

import duckdb

__all__ = ["DuckSql", "SparkSql", "Sql", "to_spark"]


class Sql(Protocol):
    """A place where a job's SQL (DuckDB's dialect) runs, DuckDB's or Spark's."""

    engine: str

    def table(self, name: str, relation: Any) -> None:
        """Make `relation` (a DuckDB relation or a Spark DataFrame, by engine) readable as `name`."""

    def run(self, sql: str) -> None:
        """Run one or more statements (``CREATE … AS``, ``DROP …``) for their effect."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of one query, in the order it gives them."""

    def arrow(self, sql: str) -> Any:
        """The rows of one query as a pyarrow Table (columnar: for many rows to the driver)."""

    def small(self, name: str, table: Any) -> None:
        """A small pyarrow Table the driver computed (one row per merchant, say), readable as `name`."""


class DuckSql:
    """DuckDB: the SQL as written."""

    engine = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def table(self, name: str, relation: Any) -> None:
        relation.create_view(name, replace=True)

    def run(self, sql: str) -> None:
        self.con.execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def arrow(self, sql: str) -> Any:
        return self.con.sql(sql).to_arrow_table()

    def small(self, name: str, table: Any) -> None:
        self.con.register(name, table)


def to_spark(sql: str) -> list[Any]:
    """The statements of `sql` (DuckDB's dialect) as sqlglot expressions, transpiled on output."""
    import sqlglot  # noqa: PLC0415 - only a Spark job needs it

    return [e for e in sqlglot.parse(sql, read="duckdb") if e is not None]


class SparkSql:
    """Spark: each statement transpiled by sqlglot; temporary tables are cached temporary views."""

    engine = "spark"

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self._cached: dict[str, Any] = {}

    def table(self, name: str, relation: Any) -> None:
        relation.createOrReplaceTempView(name)

    def _drop(self, name: str) -> None:
        df = self._cached.pop(name.lower(), None)
        if df is not None:
            df.unpersist()
        self.spark.catalog.dropTempView(name)

    def run(self, sql: str) -> None:
        from sqlglot import exp  # noqa: PLC0415 - only a Spark job needs it

        for stmt in to_spark(sql):
            if isinstance(stmt, exp.Create) and str(stmt.args.get("kind", "")).upper() in ("TABLE", "VIEW"):
                name = stmt.this.name if isinstance(stmt.this, exp.Table) else stmt.this.this.name
                df = self.spark.sql(stmt.expression.sql("spark"))
                self._drop(name)
                if str(stmt.args["kind"]).upper() == "TABLE":
                    df = df.cache()
                    self._cached[name.lower()] = df
                df.createOrReplaceTempView(name)
            elif isinstance(stmt, exp.Drop) and str(stmt.args.get("kind", "")).upper() in ("TABLE", "VIEW"):
                for table in stmt.args.get("tables") or [stmt.this]:  # sqlglot ≥ 30 lists them in "tables"
                    self._drop(table.name)
            else:
                self.spark.sql(stmt.sql("spark")).collect()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        (stmt,) = to_spark(sql)
        return [tuple(r) for r in self.spark.sql(stmt.sql("spark")).collect()]

    def arrow(self, sql: str) -> Any:
        (stmt,) = to_spark(sql)
        return self.spark.sql(stmt.sql("spark")).toArrow()

    def small(self, name: str, table: Any) -> None:
        self.table(name, self.spark.createDataFrame(table))

    def close(self) -> None:
        """Unpersist what this job cached (a long-lived session runs the next job clean)."""
        for name in list(self._cached):
            self._drop(name)
