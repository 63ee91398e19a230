"""Shards, annotations and reports on an object store: an S3-compatible server (moto) on 127.0.0.1, never the internet."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus_audit.cli import main
from tests.corpus_fixtures import write_all_formats

pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e '.[test]')")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install -e '.[test]')")

BUCKET = "corpus"


@pytest.fixture(scope="module")
def s3():
    """A local S3 server with one bucket; the AWS variables point every client (this process and the
    workers it starts) at it."""
    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                     "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            mp.setenv(k, v)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(k, raising=False)
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        yield fs
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def rows(table):
    return sorted((r["id"], r["label"], r["gated"], r["score_misaligned_ai"]) for r in table.to_pylist())


def test_scan_and_report_read_and_write_an_object_store(tmp_path, small_model, s3):
    local_in = str(tmp_path / "in")
    expected = write_all_formats(local_in)
    s3.put(local_in, f"{BUCKET}/crawl", recursive=True)
    out = f"s3://{BUCKET}/audit"
    args = ["scan", f"s3://{BUCKET}/crawl/", "-o", out, "--model", small_model, "--workers", "2"]
    # a new process, as a user runs it: datatrove's worker processes come from a forkserver that an earlier
    # test may have started before the AWS variables were set
    r = subprocess.run([sys.executable, "-m", "corpus_audit", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]

    s3.invalidate_cache()
    names = s3.find(f"{BUCKET}/audit")
    assert not [n for n in names if ".tmp" in n]  # temporary keys were moved to their final names
    parts = sorted(n for n in names if n.startswith(f"{BUCKET}/audit/annotations/"))
    assert len(parts) == len(expected)
    remote = pq.ParquetDataset(parts, filesystem=s3).read()
    assert all(f.startswith(f"s3://{BUCKET}/crawl/") for f in remote.column("file").to_pylist())
    rec = json.loads(s3.cat(f"{BUCKET}/audit/scan.json"))
    assert rec["documents"]["read"] == rec["documents"]["annotated"] == sum(expected.values())

    assert run(["scan", local_in, "-o", str(tmp_path / "local"), "--model", small_model]).exit_code == 0
    local = pq.ParquetDataset(str(tmp_path / "local" / "annotations")).read()
    assert rows(remote) == rows(local)

    stamp = s3.info(parts[0])["LastModified"]
    assert run(args).exit_code == 0  # the same command resumes: completed tasks are not redone
    s3.invalidate_cache()
    assert s3.info(parts[0])["LastModified"] == stamp

    r = run(["report", out])
    assert r.exit_code == 0, r.output
    s3.invalidate_cache()
    report = json.loads(s3.cat(f"{BUCKET}/audit/report/report.json"))
    everything = [p for p in report["prevalence"] if p["source"] == "ALL"]
    assert sum(p["documents"] for p in everything) == sum(expected.values())
    assert s3.exists(f"{BUCKET}/audit/report/audit.duckdb") and s3.exists(f"{BUCKET}/audit/report/index.html")


def test_files_on_an_object_store_appear_only_under_their_final_names(s3):
    from corpus_audit.storage import atomic_write_text, list_files, open_output, publish, read_text

    base = f"s3://{BUCKET}/storage"
    with open_output(f"{base}/.00000.parquet.tmp", "wb") as fh:
        fh.write(b"partial")
    atomic_write_text(f"{base}/done.json", "{}")
    s3.invalidate_cache()
    assert list_files(base) == [f"{base}/done.json"]  # a task's unfinished file is never listed
    publish(f"{base}/.00000.parquet.tmp", f"{base}/00000.parquet")
    s3.invalidate_cache()
    assert list_files(base, "*.parquet") == [f"{base}/00000.parquet"]
    assert read_text(f"{base}/done.json") == "{}" and not s3.exists(f"{BUCKET}/storage/.00000.parquet.tmp")


def test_the_object_store_is_the_local_server(s3):
    import boto3

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    assert endpoint.startswith("http://127.0.0.1:")
    assert BUCKET in [b["Name"] for b in boto3.client("s3", endpoint_url=endpoint).list_buckets()["Buckets"]]
