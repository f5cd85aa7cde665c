"""The Trainer tab's Qt-free half: spec validation, command lines, copy text, metrics tail."""

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

from app.model import training_job as job


@pytest.fixture
def spec(tmp_path):
    photos = tmp_path / "my photos"
    photos.mkdir()
    data = tmp_path / "data.npz"
    data.write_bytes(b"x")
    return job.TrainingSpec(
        photos=str(photos), output=str(tmp_path / "out"), dataset=str(data), degree=8, epochs=2,
        batch_size=32, num_procs=2, extra_args=("--widths", "32,16"),
    )  # fmt: skip


def test_a_good_spec_has_no_problems(spec):
    assert job.embed_problems(spec) == []
    assert job.train_problems(spec) == []


def test_problems_name_what_is_wrong_and_the_fix(spec, tmp_path):
    bad = job.TrainingSpec(photos=str(tmp_path / "nope"), output="", epochs=0, batch_size=33,
                           num_procs=2, num_nodes=2, endpoint="host-without-port")  # fmt: skip
    embed = "\n".join(job.embed_problems(bad))
    assert f"photo folder {tmp_path / 'nope'} does not exist" in embed
    assert "no output folder" in embed
    train = "\n".join(job.train_problems(bad))
    assert "epochs 0: train at least 1 epoch" in train
    assert "batch size 33 does not split over 4 processes: use a multiple of 4" in train
    assert "rendezvous endpoint 'host-without-port': write HOST:PORT" in train
    csv = job.TrainingSpec(csv=str(tmp_path / "missing.csv"), output=spec.output)
    csv_problems = "\n".join(job.embed_problems(csv))
    assert "does not exist: choose the location CSV" in csv_problems
    assert "a CSV needs its image folder" in csv_problems
    none = job.TrainingSpec(output=spec.output, model="m.json")
    assert any("no photos chosen" in p for p in job.embed_problems(none))
    assert any("encoder config m.json does not exist" in p for p in job.embed_problems(none))


def test_more_gpu_processes_than_gpus(spec):
    cuda = job.TrainingSpec(**{**spec.__dict__, "device": "cuda", "num_procs": 4})
    assert job.train_problems(cuda) == []  # not counted yet
    assert any("has 2 GPU(s): use at most 2" in p for p in job.train_problems(cuda, gpus=2))
    assert job.train_problems(cuda, gpus=4) == []


def test_train_needs_a_dataset_and_resume_a_run(spec, tmp_path):
    missing = job.TrainingSpec(output=str(tmp_path / "out"))
    assert any("build it first" in p for p in job.train_problems(missing))
    assert any("nothing to resume" in p for p in job.train_problems(spec, resume=True))
    (spec.run_dir).mkdir(parents=True)
    (spec.run_dir / job.STATE_FILE).write_bytes(b"x")
    assert job.train_problems(spec, resume=True) == []


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [("10.0.0.5:29500", True), ("node-0.lan:1", True), ("[::1]:29500", True),
     ("host", False), ("host:0", False), ("host:70000", False), ("a b:1", False)],
)  # fmt: skip
def test_endpoints(endpoint, ok):
    if ok:
        assert job.parse_endpoint(endpoint)[1] > 0
    else:
        with pytest.raises(ValueError, match="HOST:PORT"):
            job.parse_endpoint(endpoint)


def test_commands(spec):
    embed = job.embed_command(spec, python="PY")
    assert embed[:4] == ["PY", "-m", "trainer", "embed"]
    assert embed[4:6] == ["--photos", spec.photos]
    assert embed[embed.index("--out") + 1] == spec.dataset
    train = job.train_command(spec, python="PY")
    assert train[:6] == [
        "PY",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    rest = train[train.index("trainer") + 1 :]
    assert rest[:5] == ["train", "--data", spec.dataset, "--out", str(spec.run_dir)]
    assert rest[-2:] == ["--widths", "32,16"] and "--val-fraction" in rest
    resume = job.train_command(spec, resume=True, python="PY")
    assert resume[resume.index("train") :][:3] == ["train", "--resume", str(spec.run_dir)]
    assert "--data" not in resume


def test_copy_text_is_shell_quoted_for_one_and_several_nodes(spec):
    one = job.copy_commands(spec)
    assert one.startswith("torchrun --standalone --nproc-per-node 2 -m trainer train")
    assert shlex.split(one)[shlex.split(one).index("--data") + 1] == spec.dataset
    assert "'" in one or " " not in spec.dataset  # paths with spaces come back intact
    many = job.TrainingSpec(**{**spec.__dict__, "num_nodes": 3, "endpoint": "10.0.0.5:29400"})
    text = job.copy_commands(many)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(lines) == 4  # the c10d line for every machine, then one fixed-rank line per node
    c10d = shlex.split(lines[0])
    assert c10d[c10d.index("--rdzv-endpoint") + 1] == "10.0.0.5:29400"
    assert c10d[c10d.index("--nnodes") + 1] == "3"
    for rank, line in enumerate(lines[1:]):
        argv = shlex.split(line)
        assert argv[argv.index("--node-rank") + 1] == str(rank)
        assert argv[argv.index("--master-addr") + 1] == "10.0.0.5"
        assert argv[argv.index("--master-port") + 1] == "29400"
    assert "# node 2 of 3" in text
    quoted = job.TrainingSpec(**{**spec.__dict__, "output": "/tmp/a b/it's"})
    argv = shlex.split(job.copy_text(quoted))
    assert argv[argv.index("--out") + 1] == "/tmp/a b/it's/run"
    assert shlex.split(job.copy_embed_text(spec))[:2] == ["locdiff", "embed"]


def test_more_options_are_checked_with_the_rest():
    spec = job.TrainingSpec(output="/tmp", extra_args=("--lr-wamup", "1", "--epochs", "3"))
    problems = job.train_problems(spec)
    assert any(p.startswith("More options: unknown option --lr-wamup") for p in problems)
    assert job.train_problems(spec, resume=True)[-1] == problems[-1]


def test_metrics_tail_reads_only_appended_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = job.MetricsTail(path)
    assert tail.read() == []  # no file yet
    with open(path, "wb") as fh:
        fh.write(b'{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert tail.read() == [{"step": 1, "loss": 2.0}]
    assert tail.read() == []
    with open(path, "ab") as fh:
        fh.write(b'ss": 1.5}\nnot json\n[1]\n\n')
    assert tail.read() == [{"step": 2, "loss": 1.5}]
    assert tail.skipped == 2
    path.write_bytes(b'{"step": 9}\n')  # shorter: a new file
    assert tail.read() == [{"step": 9}]
    replaced = tmp_path / "new.jsonl"
    replaced.write_text("\n".join(json.dumps({"step": s}) for s in range(5)) + "\n")
    os.replace(replaced, path)  # same size class, another file: read from the start
    assert [r["step"] for r in tail.read()] == [0, 1, 2, 3, 4]


def test_gpu_probe_answer():
    assert job.parse_gpu_count("2\n") == 2
    assert job.parse_gpu_count("warning: x\n0\n") == 0
    assert job.parse_gpu_count("Traceback ...\nModuleNotFoundError: torch") == 0
    assert job.parse_gpu_count("") == 0


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="process tree needs /proc")
def test_kill_tree_ends_a_process_and_its_children():
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
    code += "'import time; time.sleep(60)']); print('ok', flush=True); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert parent.stdout.readline().strip() == b"ok"
    tree = job.process_tree(parent.pid)
    assert tree[0] == parent.pid and len(tree) == 2
    job.kill_tree(tree)
    assert parent.wait(10) != 0
    for pid in tree[1:]:
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            # a killed orphan is reaped by init; give it a moment
            time.sleep(0.05)
        else:
            pytest.fail(f"child {pid} still alive")
