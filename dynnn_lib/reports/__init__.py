"""Showing results: tables, figures and the README's generated blocks.

How results are shown: text, markdown and HTML tables (``tables``), plotly figures (``figures``) and the README's
generated blocks (``readme``). Imports ``core``, ``data`` and ``evaluation`` only: a report is a function of results,
never of how they were run. Adding a report: a module here, and its runs in the planner (workbench/plan.py).
"""
