"""What is run and compared: the paper's variants, reproduction, fidelity, baselines, sweeps, calibration, schedules.

What is run and compared: the paper's numbers and variants (``paper``), the notebooks' studies (``studies``), the
reproduction tables (``reproduce``), the fidelity report (``fidelity``), the in-workbench baselines (``baselines``),
sweeps over grids (``sweep``), the stand-in's calibration (``calibrate``) and every expansion schedule as a tree of
shared prefixes (``schedules``); each declares its runs and its document under one contract (``contract``; the
built-ins registered in ``catalogue``). Imports the engine, evaluation and ``reports``; never the workbench.
"""
