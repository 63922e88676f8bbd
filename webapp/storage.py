"""The static files storage for DEBUG off: WhiteNoise's compressed manifest storage.

Hashed names (``app.3f2a....css``, cached for a year) and gzip copies, written by
``collectstatic``. JavaScript is copied as it is rather than rewritten: the vendored
Chart.js ends with ``//# sourceMappingURL=chart.umd.min.js.map``, a map we do not ship,
which the manifest storage would otherwise refuse; our own scripts import nothing.
CSS references (``url(...)``, ``@import``) are still rewritten to hashed names.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = tuple(
        (glob, rules) for glob, rules in CompressedManifestStaticFilesStorage.patterns
        if glob != "*.js"
    )
