"""The built-in data sources, one module each; every module of this folder is imported (and so registered) when a
source is first looked up, so a new built-in source is one new file here (data/source.py says what it holds)."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
