"""LocDiff Studio's desktop app (PySide6)."""

import sys

# The app never compiles GPU kernels. torchvision (through open_clip) imports torch._dynamo, which
# loads triton if installed, and triton's bundled LLVM crashes the process when an OpenGL driver
# linking the system LLVM (Mesa, as Qt and QtWebEngine use) is already loaded. Without triton,
# torch runs the same eager kernels.
sys.modules.setdefault("triton", None)
