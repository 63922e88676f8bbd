"""StratLab's algorithm library: sampling, prompting, verification, selection and metrics.

Pure functions over plain values (standard library, numpy, scipy and torch only). The web
app and the workers call into this package; it never imports them. ``strategies.registry``
maps every public algorithm name to its function and config class.
"""

from __future__ import annotations
