"""Shared fixtures of the detectors' tests: one Spark session per test process (#21).

A Spark start costs seconds, so every test that runs a job on both engines shares the session
(``local[2]``, small shuffles). Where Java or pyspark is missing those tests FAIL saying what to
install — `make test` never skips them silently.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest

from fanchaoxin.detect import engines

MASTER = "local[2]"


def spark_missing() -> list[str]:
    """What the Spark engine's tests need and this machine lacks."""
    out = []
    if importlib.util.find_spec("pyspark") is None:
        out.append("pyspark (pip install -e '.[test]', or 'fanchaoxin[spark]')")
    if importlib.util.find_spec("sqlglot") is None:
        out.append("sqlglot (pip install -e '.[test]', or 'fanchaoxin[spark]')")
    home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (home and Path(home, "bin", "java").is_file()):
        out.append("Java (apt-get install openjdk-17-jre-headless; .ci/run does so)")
    return out


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    missing = spark_missing()
    if missing:
        pytest.fail("the Spark engine's tests need " + " and ".join(missing), pytrace=False)
    session = engines.spark_session(
        MASTER,
        conf={
            "spark.sql.shuffle.partitions": "3",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.driver.memory": "1g",
            # tiny inputs: Spark's per-query costs (adaptive re-planning after each shuffle, whole-stage
            # code generation) are most of a test's time, and neither changes an answer. The answers
            # under Spark's defaults are compared too: tests/detect/test_spark_executor_loss.py and
            # bench/bench_spark_jobs.py run with them.
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.codegen.wholeStage": "false",
            # the catalogue's warehouse (table:NAME) out of the working tree
            "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("spark-warehouse")),
        },
    )
    yield session
    session.stop()


def without_run_times(text: str) -> str:
    """An output or report of a run without what differs from any other run of the same job: when the
    report was made and how many seconds the run took. Everything else must be byte-identical."""
    text = re.sub(r'"seconds": [0-9.e+-]+', '"seconds": 0', text)
    text = re.sub(r'"generated_at": "[^"]*"', '"generated_at": ""', text)
    text = re.sub(r"Generated [^<·]*·", "Generated ·", text)
    return re.sub(r"<th>seconds</th><td>[^<]*</td>", "<th>seconds</th><td></td>", text)
