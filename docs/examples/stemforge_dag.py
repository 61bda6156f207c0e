"""A daily stemforge run on Dataflow from Airflow, with the Apache Beam provider (docs/cluster.md, "Operating
a schedule"). The operator runs ``python -m stemforge run --runner=DataflowRunner --config=... ...``: ``py_options``
and ``py_file`` make the command's start, ``pipeline_options`` its ``--key=value`` flags (a list repeats one)."""

import pendulum
from airflow import DAG
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator

with DAG(
    dag_id="stemforge_daily",
    schedule="15 2 * * *",
    start_date=pendulum.datetime(2026, 12, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # Airflow's own guard; the lease on the output root is the real one
) as dag:
    BeamRunPythonPipelineOperator(
        task_id="separate_new_partition",
        runner="DataflowRunner",
        py_interpreter="/opt/stemforge/.venv/bin/python",
        py_options=["-m", "stemforge"],
        py_file="run",
        pipeline_options={
            "config": "/opt/stemforge/configs/separate.yaml",
            "input": "gs://corpus/incoming/new-{{ ds }}.txt",
            "output": "gs://corpus/stems/",
            "checkpoint": "gs://models/baseline.pth",
            "set": ["run.run_id=daily-{{ ds_nodash }}", "run.on_lease=fail"],
            "quiet": True,
            "project": "my-project",
            "region": "europe-west4",
            "temp_location": "gs://corpus/beam-tmp/",
            "sdk_container_image": "europe-west4-docker.pkg.dev/my-project/stemforge/worker:latest",
            "setup_file": "/opt/stemforge/setup.py",
        },
        retries=0,  # a failed slot (exit 1) is rerun by hand or by the next slot, which skips what committed
        execution_timeout=pendulum.duration(hours=12),
    )
