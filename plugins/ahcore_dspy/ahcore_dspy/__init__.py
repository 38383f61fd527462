"""ahcore-dspy: ``.dspy`` files are Python scripts run as async function bodies.

The plugin module registered in the ``ahcore`` entry-point group is
:mod:`ahcore_dspy.plugin`; the processor is :class:`DspyProcessor` and the
source-to-code step is :func:`compile_script`.
"""

from __future__ import annotations

from ahcore_dspy.compiler import compile_script
from ahcore_dspy.processor import DEFAULT_TIME_LIMIT, DspyProcessor, time_limit

__all__ = ["DEFAULT_TIME_LIMIT", "DspyProcessor", "compile_script", "time_limit"]
