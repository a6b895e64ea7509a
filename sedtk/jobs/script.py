"""The bash script of one job, run as it is by ``sbatch`` or by the local pool.

It writes the job's request and placement at the top of the log, runs the command (under torchrun
for a multi-GPU ``ddp`` job: ``--standalone`` on one node, a c10d rendezvous on the first node of the
allocation through ``srun`` on several), then, on success, the job's ``.done`` marker, and in every
case its exit status (``STATUS_DIR/NAME.TASK``), which the driver reads when the job has left the
queue.  In an array job the word ``JOB`` in the arguments is the task number (``SLURM_ARRAY_TASK_ID``
on Slurm, ``SEDTK_JOB_TASK`` in the local pool).
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from sedtk.jobs.plan import MARKER, Job
from sedtk.jobs.resources import Request

#: Bash's expansion of the task number inside the script.
TASK = '"$task"'


def _quote(arg: str, array: bool) -> str:
    if not array or "JOB" not in arg:
        return shlex.quote(arg)
    return TASK.join(shlex.quote(part) if part else "" for part in arg.split("JOB")) or TASK


def _torchrun() -> list[str]:
    exe = shutil.which("torchrun")
    return [exe] if exe else [sys.executable, "-m", "torch.distributed.run"]


def command_line(job: Job) -> str:
    """The job's command as a bash line (torchrun-wrapped for a multi-process ``ddp`` job)."""
    array = job.tasks > 1
    words = [_quote(a, array) for a in job.command]
    if not job.ddp or job.gpus * job.nodes <= 1:
        return " ".join(words)
    # torchrun --no-python runs the command itself (the `sedtk` console script, or any program)
    words[0] = shlex.quote(shutil.which(job.command[0]) or job.command[0])
    tr = " ".join(shlex.quote(w) for w in _torchrun()) + " --no-python"
    nproc = max(job.gpus, 1)
    if job.nodes == 1:
        return f"{tr} --standalone --nproc-per-node {nproc} " + " ".join(words)
    # PyTorch's Slurm recipe: one torchrun agent per node (srun), the c10d rendezvous on the address
    # of the allocation's first node (its name may not resolve), a port of this job
    return (
        'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
        "head_ip=$(srun --nodes=1 --ntasks=1 -w \"$head\" hostname --ip-address | awk '{print $1}')\n"
        "port=$((20000 + SLURM_JOB_ID % 20000))\n"
        f'echo "# torchrun: $SLURM_JOB_NUM_NODES nodes x {nproc} processes, rendezvous $head_ip:$port"\n'
        f'srun --ntasks-per-node=1 --kill-on-bad-exit=1 {tr} --nnodes "$SLURM_JOB_NUM_NODES" '
        f'--nproc-per-node {nproc} --rdzv-id "$SLURM_JOB_ID" --rdzv-backend c10d '
        '--rdzv-endpoint "$head_ip:$port" ' + " ".join(words)
    )


def write_script(job: Job, request: Request, path: Path, status_dir: Path, asked: str) -> Path:
    """Write the job's script to ``path``; ``asked``: how the request was made (sbatch options, or
    "local pool", completed at run time by ``$SEDTK_JOB_GRANT``)."""
    q = shlex.quote
    array = job.tasks > 1
    marker = f"{MARKER}.$task" if array else MARKER
    lines = [
        "#!/usr/bin/env bash",
        f"# sedtk job {job.name} ({job.kind}): written by sedtk.jobs; run by sbatch or the local pool",
        "task=${SLURM_ARRAY_TASK_ID:-${SEDTK_JOB_TASK:-1}}",
        f'echo "# job {job.name} ({job.kind}), task $task of {job.tasks}, on $(hostname)'
        ', Slurm job ${SLURM_JOB_ID:-none}${SLURM_ARRAY_JOB_ID:+ (array ${SLURM_ARRAY_JOB_ID})}"',
        f"echo {q('# request: ' + request.describe())}",
        f"echo {q('# asked: ' + asked)}" + '"${SEDTK_JOB_GRANT:+ ($SEDTK_JOB_GRANT)}"',
        'echo "# CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"',
        # the command as this task runs it (JOB = the task), quoted by bash
        "printf '# command:'; printf ' %q' " + " ".join(_quote(a, array) for a in job.command) + "; echo",
        "echo \"# started $(date '+%Y-%m-%d %H:%M:%S')\"",
        "rc=0",
        "{",
        command_line(job),
        "} || rc=$?",
        "echo \"# ended $(date '+%Y-%m-%d %H:%M:%S') with status $rc\"",
    ]
    if job.out:
        out = q(job.out)
        tmp = f"{out}/{MARKER}.tmp.$task"
        lines.append(
            f'if [ "$rc" -eq 0 ]; then mkdir -p {out} && printf "%s\\n" {q(job.key)} > {tmp} '
            f"&& mv -f {tmp} {out}/{marker}; fi"
        )
    status = q(str(status_dir / job.name))
    lines += [
        f'printf "%s\\n" "$rc" > {status}.$task.tmp && mv -f {status}.$task.tmp {status}.$task',
        'exit "$rc"',
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o755)
    return path
