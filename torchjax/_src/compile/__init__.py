"""Compile-and-cache for captured torch code: ``Compiled`` runs a torch callable as one
XLA executable per call signature (``signature``), traced (``trace``) into a program
(``program``) whose large outputs reuse their buffers (``reuse``), as ``settings`` say."""

from .compiled import Compiled as Compiled
from .settings import SETTINGS as SETTINGS
from .settings import Settings as Settings
from .settings import disable_jit as disable_jit
from .settings import jit_disabled as jit_disabled
from .signature import Prepared as Prepared
from .trace import TraceAgain as TraceAgain
