"""``sedtk report``: one self-contained static HTML page from the files decode, score and explain write.

This is the top floor beside :mod:`sedtk.explain`: it only *reads* output directories (a decode dir,
optionally the reference data dir, a score dir, an explain dir and a long-recording timeline) and
never runs a model.  See :func:`sedtk.report.build.build_report` and ``docs/report.md``.
"""
