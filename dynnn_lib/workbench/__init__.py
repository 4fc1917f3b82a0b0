"""The notebooks' side: papermill, batch, nbval references, the study helper, explorer, planner.

The notebooks' side: papermill runs and their records (``notebook``), every notebook headless (``batch``), the nbval
references (``nbval_refs``), the notebooks' study helper (``study``), the interactive explorer (``explorer``) and the
planner of ``make all`` (``plan``: every run the reports and notebooks need, trained once). The top floor below
the CLI: it may import anything in the package; nothing in the package imports it.
"""
