"""The entry point of the PyInstaller bundle (``locdiff.spec``): ``app.main.main``.

In a bundle ``sys.executable`` is the app itself, not a Python, yet the app starts its training
jobs as ``sys.executable -m trainer ...`` and ``sys.executable -m torch.distributed.run ... -m
trainer ...`` (and torchrun starts its workers as ``sys.executable -u -m trainer ...``). So this
entry runs those modules the way ``python -m`` would, and everything else opens the window.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys

RUNNABLE_MODULES = ("trainer", "torch.distributed.run")
# Python's own options, accepted (and ignored) before -m: torchrun starts workers with -u
PYTHON_FLAGS = ("-u", "-B", "-E", "-s", "-I")


def module_command(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(module, its arguments)`` when ``argv`` (without the program) is a ``python -m`` call of
    one of :data:`RUNNABLE_MODULES`; None for the app's own command line."""
    args = list(argv)
    while args and args[0] in PYTHON_FLAGS:
        args.pop(0)
    if len(args) >= 2 and args[0] == "-m" and args[1] in RUNNABLE_MODULES:
        return args[1], args[2:]
    return None


def main() -> int:
    multiprocessing.freeze_support()  # spawned workers (data loaders) re-enter here
    command = module_command(sys.argv[1:])
    if command is not None:
        module, args = command
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from app.main import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
