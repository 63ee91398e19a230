"""`scan --executor local|ray|slurm`: the same annotations on every executor, failed tasks named, Slurm scripts shown."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from corpus_audit.cli import main
from corpus_audit.config import EXECUTION_KEYS, ScanConfig
from corpus_audit.errors import AuditError
from corpus_audit.executors import ExecutionOptions, parse_sbatch_args, run_pipeline
from tests.corpus_fixtures import DOCS, read_annotations, write_jsonl

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (pip install -e '.[ray]')")


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


annotations = read_annotations


def two_shards(root):
    write_jsonl(f"{root}/web/a.jsonl", DOCS[:4])
    write_jsonl(f"{root}/books/b.jsonl", DOCS[4:])
    return str(root)


def fake_slurm(tmp_path, monkeypatch):
    """sbatch, scontrol and squeue stand-ins on PATH: sbatch keeps each script it is given and prints a job id;
    squeue lists the jobs written to ``queue``."""
    bin_dir = tmp_path / "fake-slurm"
    bin_dir.mkdir()
    calls = tmp_path / "sbatch-calls"
    calls.mkdir()
    (bin_dir / "sbatch").write_text(f"""#!/bin/sh
n=$(ls {calls} | wc -l)
cp "$(eval echo \\${{$#}})" {calls}/$n.sh
echo "$@" > {calls}/$n.args
echo "Submitted batch job 424$n"
""")
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho node-1\n")
    (bin_dir / "squeue").write_text(f"#!/bin/sh\ncat {tmp_path}/queue 2>/dev/null\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


# --- options -----------------------------------------------------------------------------------


def test_execution_options_have_the_names_and_defaults_of_the_scan_config():
    scan_defaults = {f.name: f.default for f in dataclasses.fields(ScanConfig)}
    for f in dataclasses.fields(ExecutionOptions):
        if f.name in scan_defaults:
            assert f.default == scan_defaults[f.name], f.name
    assert set(EXECUTION_KEYS) <= {f.name for f in dataclasses.fields(ExecutionOptions)}
    assert ExecutionOptions.from_config(ScanConfig(executor="ray", workers=3)).executor == "ray"


def test_sbatch_args_are_key_value_pairs_or_flags():
    assert parse_sbatch_args("account=proj --qos=high exclusive") == {"account": "proj", "qos": "high",
                                                                      "exclusive": ""}


def test_yaml_config_chooses_the_executor_and_takes_sbatch_args_as_a_mapping(tmp_path):
    cfg = tmp_path / "scan.yml"
    cfg.write_text("executor: slurm\nslurm_partition: cpu\nslurm_sbatch_args: {account: proj, exclusive: true}\n")
    c = ScanConfig.build(config_file=str(cfg))
    assert c.executor == "slurm" and parse_sbatch_args(c.slurm_sbatch_args) == {"account": "proj", "exclusive": ""}
    cfg.write_text("executor: spark\n")
    with pytest.raises(AuditError, match="CA205"):
        ScanConfig.build(config_file=str(cfg))


def test_a_different_executor_resumes_the_same_scan(tmp_path, small_model):
    src = two_shards(tmp_path / "in")
    out = str(tmp_path / "out")
    assert run(["scan", src, "-o", out, "--model", small_model, "--workers", "1"]).exit_code == 0
    r = run(["scan", src, "-o", out, "--model", small_model, "--workers", "2", "--cpus-per-task", "2"])
    assert r.exit_code == 0, r.output  # execution options are not part of what a scan computes: no CA203


def test_dry_run_prints_the_effective_configuration_and_writes_nothing(tmp_path, small_model):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["scan", two_shards(tmp_path / "in"), "-o", str(out), "--model", small_model,
                                  "--executor", "ray", "--cpus-per-task", "2", "--dry-run"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["config"]["executor"] == "ray" and plan["config"]["cpus_per_task"] == 2
    assert plan["config"]["tasks"] == 2 and plan["files"]["inputs"] == 2
    assert not out.exists()


# --- Slurm -------------------------------------------------------------------------------------


def test_slurm_dry_run_prints_the_sbatch_script_and_submits_and_writes_nothing(tmp_path, small_model, monkeypatch):
    calls = fake_slurm(tmp_path, monkeypatch)
    out = tmp_path / "out"
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    r = CliRunner().invoke(main, [
        "scan", two_shards(tmp_path / "in"), "-o", str(out), "--model", small_model, "--executor", "slurm",
        "--slurm-partition", "cpu-long", "--slurm-time", "02:30:00", "--cpus-per-task", "4", "--mem-per-cpu-gb", "3",
        "--workers", "8", "--tasks", "5", "--slurm-array-size", "2", "--slurm-venv", str(venv),
        "--slurm-sbatch-args", "account=proj qos=high", "--dry-run"])
    assert r.exit_code == 0, r.output
    script = r.stdout
    assert script.startswith("#!/bin/bash\n")
    for line in ("#SBATCH --partition=cpu-long", "#SBATCH --time=02:30:00", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --mem-per-cpu=3G", "#SBATCH --array=0-1%8", "#SBATCH --account=proj", "#SBATCH --qos=high",
                 f"source {venv}/bin/activate", f"launch_pickled_pipeline {out}/logs/executor.pik"):
        assert line in script.splitlines() or line in script, line
    assert not out.exists() and not list(calls.iterdir())  # nothing written, nothing submitted


def test_slurm_submits_a_job_array_and_the_same_command_after_the_job_writes_scan_json(tmp_path, small_model,
                                                                                       monkeypatch):
    launcher = os.path.join(os.path.dirname(sys.executable), "launch_pickled_pipeline")
    if not os.path.exists(launcher):
        pytest.skip("datatrove's launch_pickled_pipeline script is not beside the interpreter")
    calls = fake_slurm(tmp_path, monkeypatch)
    src = two_shards(tmp_path / "in")
    out = str(tmp_path / "out")
    args = ["scan", src, "-o", out, "--model", small_model, "--executor", "slurm", "--slurm-partition", "cpu"]
    r = run(args)
    assert r.exit_code == 0 and "submitted Slurm job 4240" in r.output, r.output
    assert "#SBATCH --array=0-1" in (calls / "0.sh").read_text()
    assert not os.path.exists(os.path.join(out, "scan.json"))

    (tmp_path / "queue").write_text("4240\n")  # still queued: a second submission is refused
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and "CA501" in r.output and "4240" in r.output

    env = dict(os.environ, SLURM_NODELIST="node-1")
    for task in ("0", "1"):  # the array tasks, run here as Slurm would run them on the nodes
        subprocess.run([launcher, f"{out}/logs/executor.pik"], env=env | {"SLURM_ARRAY_TASK_ID": task},
                       check=True, capture_output=True)
    (tmp_path / "queue").write_text("")
    r = run(args)
    assert r.exit_code == 0, r.output
    rec = json.load(open(os.path.join(out, "scan.json")))
    assert rec["documents"]["read"] == len(DOCS) and rec["config"]["executor"] == "slurm"
    assert run(["scan", src, "-o", str(tmp_path / "local"), "--model", small_model]).exit_code == 0
    assert annotations(out).equals(annotations(str(tmp_path / "local")))


# --- Ray ---------------------------------------------------------------------------------------


@needs_ray
def test_ray_gives_the_same_annotations_as_the_local_executor(tmp_path, small_model):
    import ray

    assert not ray.is_initialized()
    src = two_shards(tmp_path / "in")
    r = run(["scan", src, "-o", str(tmp_path / "local"), "--model", small_model])
    assert r.exit_code == 0, r.output
    r = run(["scan", src, "-o", str(tmp_path / "ray"), "--model", small_model, "--executor", "ray", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert annotations(str(tmp_path / "ray")).equals(annotations(str(tmp_path / "local")))
    assert not ray.is_initialized()  # the local cluster the scan started is shut down


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _raise_on_task_1(data, rank, world_size):
    if rank == 1:
        raise RuntimeError("task 1 cannot read its shard")
    return data or []


@needs_ray
def test_a_ray_task_that_raises_is_named_although_ray_returns_normally(tmp_path, ray_session):
    with pytest.raises(AuditError) as e:
        run_pipeline([_raise_on_task_1], tasks=3, logging_dir=str(tmp_path / "logs"),
                     options=ExecutionOptions(executor="ray", workers=2))
    assert e.value.code == "CA501"
    assert e.value.fields["n"] == 1 and e.value.fields["detail"].startswith("1 (task 1:")
    assert "task 1 cannot read its shard" in str(e.value)


@needs_ray
def test_scan_on_ray_exits_non_zero_when_a_task_fails(tmp_path, ray_session):
    bad_model = tmp_path / "broken.ftz"
    bad_model.write_bytes(b"not a fastText model" * 50)
    r = CliRunner().invoke(main, ["scan", two_shards(tmp_path / "in"), "-o", str(tmp_path / "out"),
                                  "--model", str(bad_model), "--executor", "ray"])
    assert r.exit_code == 2 and "CA501" in r.output and "CA402" in r.output
    assert not os.path.exists(tmp_path / "out" / "scan.json")


@needs_ray
def test_emit_on_ray_writes_the_same_shards_as_locally(tmp_path, small_model):
    import hashlib

    src = two_shards(tmp_path / "in")
    assert run(["scan", src, "-o", str(tmp_path / "scan"), "--model", small_model, "--workers", "1", "-q"]).exit_code == 0
    policy = tmp_path / "policy.yml"
    policy.write_text("rules:\n  - when: {label: other}\n    action: tag\n    tag: '<|o|>'\nmode: sample\nseed: 3\n")
    outs = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor
        r = run(["emit", src, "--annotations", str(tmp_path / "scan"), "-o", str(out), "--policy", str(policy),
                 "--executor", executor, "--workers", "2"])
        assert r.exit_code == 0, r.output
        outs[executor] = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                          for p in sorted(out.rglob("*.jsonl"))}
    assert outs["local"] and outs["local"] == outs["ray"]
