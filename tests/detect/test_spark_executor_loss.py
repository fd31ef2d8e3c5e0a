"""A Spark job that loses an executor mid-way is retried by Spark and gives the same answer (#21).

Spark runs here in ``local-cluster[2,1,1024]`` mode: a standalone master, a worker and two executor
JVMs of their own, as on a small cluster. While the order-brushing job runs its kernel on the first
shop partition, the task kills **its own executor JVM** with SIGKILL (once: a marker file says it did).
Spark loses that executor's tasks and the shuffle files it held, the worker starts a new executor, the
lost work is recomputed, and the answer must be byte-identical to DuckDB's. The job runs in a child
process because a second SparkContext cannot share this test process with the session fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fanchaoxin.detect.cli_orders import app
from fanchaoxin.simulate.marketplace import generate
from tests.detect.conftest import spark_missing

_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    from typer.testing import CliRunner

    from fanchaoxin.detect import brushing, engines
    from fanchaoxin.detect.cli_orders import app

    source, output, marker, master = sys.argv[1:5]
    original = brushing.spark_partition

    def _executor_pid():
        pid = os.getpid()
        while pid > 1:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"CoarseGrainedExecutorBackend" in cmd:
                return pid
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        raise RuntimeError("no executor JVM above this Python worker")

    def losing_an_executor(batches, **kw):
        # defined in __main__, so cloudpickle ships it by value to the executors' Python workers
        from pyspark import TaskContext

        if TaskContext.get().partitionId() == 0 and not os.path.exists(marker):
            Path(marker).write_text(str(_executor_pid()))
            os.kill(_executor_pid(), signal.SIGKILL)
        yield from original(batches, **kw)

    brushing.spark_partition = losing_an_executor
    engines.spark_session(master, conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})
    args = ["order-brushing", "-i", source, "-o", output, "--format", "detail", "--engine", "spark"]
    res = CliRunner().invoke(app, [*args, "--spark-master", master])
    sys.stdout.write(res.output)
    sys.exit(res.exit_code)
    """
)


def test_a_lost_executor_is_retried_and_the_answer_is_the_same(tmp_path: Path) -> None:
    missing = spark_missing()
    if missing:
        pytest.fail("the Spark engine's tests need " + " and ".join(missing), pytrace=False)
    generate(tmp_path / "sim", seed=5, scale=0.05)
    source = tmp_path / "sim" / "orders.csv"
    expected = tmp_path / "duckdb.csv"
    res = CliRunner().invoke(
        app, ["order-brushing", "-i", str(source), "-o", str(expected), "--format", "detail"]
    )
    assert res.exit_code == 0, res.output

    got, marker = tmp_path / "spark.csv", tmp_path / "killed-executor"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(source), str(got), str(marker), "local-cluster[2,1,1024]"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
    )
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    assert marker.is_file(), "no executor was killed: the test did not test a loss"
    assert got.read_bytes() == expected.read_bytes()
