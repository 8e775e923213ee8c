"""Luigi's ``luigi.tools``: ``flow.tools.range`` is ``flow.range``."""

from .. import range as range
