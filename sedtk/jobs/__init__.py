"""Recipe jobs on many GPUs and on Slurm: what each job asks for, and a plan run concurrently.

* :mod:`sedtk.jobs.resources` -- partition, account, qos, time, CPUs and memory per GPU by job kind
  (``sedtk/conf/jobs.yaml``, a recipe's ``conf/jobs.yaml``, ``SEDTK_SLURM_*``);
* :mod:`sedtk.jobs.plan` -- the jobs a recipe declared, their dependencies and ``.done`` markers;
* :mod:`sedtk.jobs.script` -- the bash script of one job (request in its log, torchrun, markers);
* :mod:`sedtk.jobs.local` -- the local pool (each job on GPUs of its own);
* :mod:`sedtk.jobs.slurm` -- sbatch with ``--dependency=afterok`` chains, arrays, ``--max-jobs``;
* :mod:`sedtk.jobs.run` -- the driver: independent jobs concurrently, a failed chain stops only itself.

``python -m sedtk.jobs`` is what tools/recipe_common.sh calls.  This package imports nothing above
``sedtk.errors`` (no torch): it starts in a fraction of a second.
"""
