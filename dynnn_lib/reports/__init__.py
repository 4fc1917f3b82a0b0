"""Showing results: tables, figures and the README's generated blocks.

How results are shown: text, markdown and HTML tables (``tables``), plotly figures (``figures``) and the README's
generated blocks (``readme``, from the documents through ``blocks``). Imports ``core``, ``data`` and ``evaluation``
only: a report is a function of results, never of how they were run. The renderers of the experiments' documents
(experiments/contract.py) are in ``blocks`` (the README's blocks) and ``pages`` (the experiments' Markdown and HTML
pages). Stored runs go where researchers look at runs, an MLflow store and TensorBoard event files, through
``trackers`` (``dynnn export --to mlflow | tensorboard``).
"""
