"""What is run and compared: the paper's variants, reproduction, fidelity, baselines, sweeps.

What is run and compared: the paper's numbers and variants (``paper``), the notebooks' studies (``studies``), the
reproduction tables (``reproduce``), the fidelity report (``fidelity``), the in-workbench baselines (``baselines``)
and sweeps over grids (``sweep``). Imports the engine, evaluation and ``reports``; never the workbench.
"""
