"""The Slurm scripts of configs/slurm/: valid bash, the lines that keep a long training job on its
CPUs, its port and its log across a requeue at the time limit, and quoted as they are in the docs."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "configs" / "slurm").glob("*.sbatch"))
DOCS = ROOT / "docs" / "guides" / "gpus-clusters.md"


def sbatch_options(text: str) -> list[str]:
    return [line.split(None, 1)[1].strip() for line in text.splitlines() if line.startswith("#SBATCH ")]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_script_is_bash_and_quoted_in_the_docs(script):
    bash = shutil.which("bash")
    assert bash is not None
    out = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash\n")
    assert f"```bash\n{text}```" in DOCS.read_text(encoding="utf-8"), f"{DOCS} does not quote {script.name} as it is"


def test_the_training_script_requeues_itself_before_the_time_limit_and_keeps_its_cpus_port_and_log():
    text = (ROOT / "configs" / "slurm" / "train_visual.sbatch").read_text(encoding="utf-8")
    options = sbatch_options(text)
    assert "--requeue" in options and "--open-mode=append" in options
    signal = [o for o in options if o.startswith("--signal=")]
    assert signal and re.fullmatch(r"--signal=B:USR1@\d+", signal[0])
    assert re.search(r"^trap (\w+) USR1$", text, re.M)
    handler = re.search(r"^trap (\w+) USR1$", text, re.M).group(1)
    body = re.search(rf"^{handler}\(\) \{{\n(.*?)^\}}", text, re.M | re.S).group(1)
    assert 'scontrol requeue "$SLURM_JOB_ID"' in body
    assert re.search(r"^srun --cpus-per-task=\"\$SLURM_CPUS_PER_TASK\" .*&$", text, re.M | re.S)
    assert text.rstrip().endswith("\nwait")  # the trap runs while the script waits, not after srun ends
    assert "MAIN_PORT=$((20000 + SLURM_JOB_ID % 20000))" in text and "29500" not in text
    assert "--main_process_port $MAIN_PORT" in text


def test_usr1_requeues_the_job_while_training_runs(tmp_path):
    """The script under stand-in srun and scontrol: USR1 (what --signal=B:USR1 sends) while srun
    runs makes the script call `scontrol requeue JOBID`; srun got the job's CPUs and port."""
    import os
    import signal
    import time

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    (bin_dir / "srun").write_text(f'#!/bin/bash\necho "srun $1 $MAIN_PORT" >> {calls}\nsleep 20\n')
    (bin_dir / "scontrol").write_text(
        f'#!/bin/bash\nif [ "$1" = show ]; then echo node-a; echo node-b; else echo "scontrol $*" >> {calls}; fi\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "123457",
           "SLURM_CPUS_PER_TASK": "64", "SLURM_JOB_NODELIST": "node-[a-b]"}
    job = subprocess.Popen(["bash", str(ROOT / "configs" / "slurm" / "train_visual.sbatch")], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (calls.exists() and "srun" in calls.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        job.send_signal(signal.SIGUSR1)
        job.wait(timeout=20)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the stand-in srun, still sleeping
    lines = calls.read_text().splitlines()
    assert lines == ["srun --cpus-per-task=64 23457", "scontrol requeue 123457"], (lines, job.stdout.read())
