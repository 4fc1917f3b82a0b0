"""DynamicNN (the paper's method) and its two ablations, in a package of their own.

``frozen_trunk.py`` holds DynamicNN's parameters (:class:`Params`, stored in ``RunConfig.method_params``, each
default with its source) and the frozen-trunk step every variant shares; ``expand.py``, ``kd.py`` and
``combined.py`` are the three variants, each one ``choose`` rule. Nothing outside this package names DynamicNN's
parameters: the CLI's shortcuts come from ``FrozenTrunkMethod.cli_options``, the stream-length check from
``check_stream``, and configurations written when these parameters were top-level RunConfig fields are migrated
on load through ``registry.retire`` (config.from_dict). Imports: the package's methods layer (``..base``,
``..training``), evaluation, configuration and errors.
"""
import importlib
import pkgutil
from dataclasses import asdict

from dynnn_lib.core import registry
from dynnn_lib.methods.dynamicnn.frozen_trunk import FrozenTrunkMethod, Params, pick_head

for _module in pkgutil.iter_modules(__path__):  # every variant is one file here: importing it registers it
    importlib.import_module(f"{__name__}.{_module.name}")

# these were top-level RunConfig fields until they became DynamicNN's own: older configs are migrated on load
registry.retire(asdict(Params()))


__all__ = ["FrozenTrunkMethod", "Params", "pick_head"]
