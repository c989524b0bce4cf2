"""The engine's contract with its callers, standard library only.

The one part of the engine the QGIS side may import (QGIS's Python has no torch): errors and
exit codes, the parameter table, the JSON-lines protocol and the partial-file rule.
"""
