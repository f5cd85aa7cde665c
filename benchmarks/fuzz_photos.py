"""A long fuzz run over mutated photos: reading, writing and removing GPS on thousands of
damaged JPEG, TIFF, PNG, WebP and HEIC files, each checked by our reader and exiftool.

Prints one row per format and action (files tried, verified or read, refused cleanly,
unchanged, silent failures, crashes, hangs) and the cases that went wrong, whose bytes are kept
under ``--keep`` for a regression test. A silent failure is a success that no independent reader
confirms; the count must be 0.

    .venv/bin/python benchmarks/fuzz_photos.py --cases 3000 --seed 1
"""

from __future__ import annotations

import argparse
import collections
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The mutation engine and checks are the fuzz tests' own (one definition for both).
sys.path.insert(0, str(ROOT / "tests" / "locdiff_core" / "photo"))

from photo_fuzz import ACTIONS, mutate, run_case, seeds  # noqa: E402
from photo_samples import SAMPLES  # noqa: E402
from tables import print_table  # noqa: E402  (a sibling script)

from locdiff_core.photo import exiftool as et  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000, help="mutated files to try")
    parser.add_argument("--seed", type=int, default=1, help="random seed (runs are repeatable)")
    parser.add_argument(
        "--keep",
        type=Path,
        default=Path("fuzz-failures"),
        help="folder for the bytes of failing cases",
    )
    args = parser.parse_args(argv)
    if not SAMPLES.is_dir():
        print(f"the shared samples are not at {SAMPLES}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    pool = seeds(SAMPLES)
    counts: dict[tuple[str, str], collections.Counter] = collections.defaultdict(
        collections.Counter
    )
    bad = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.cases):
            seed = rng.choice(pool)
            action = rng.choice(ACTIONS)
            data = mutate(seed, rng)
            outcome = run_case(seed, data, action, Path(tmp) / "case")
            counts[(Path(seed.name).suffix[1:], action)][outcome.kind] += 1
            if outcome.bad:
                args.keep.mkdir(parents=True, exist_ok=True)
                kept = args.keep / f"{number:05d}-{action}-{seed.name}"
                kept.write_bytes(data)
                bad.append((kept, outcome))
    seconds = time.perf_counter() - started
    et.close_shared()

    version = et.shared().execute("-ver").strip() if et.exiftool_path() else "not installed"
    et.close_shared()
    print(
        f"# fuzz_photos: {args.cases} cases, seed {args.seed}, {seconds:.0f} s "
        f"({1000 * seconds / max(args.cases, 1):.0f} ms a case)"
    )
    print(
        f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"exiftool {version}"
    )
    kinds = ("ok", "refused", "unchanged", "silent", "crash", "hang")
    total: collections.Counter = collections.Counter()
    for c in counts.values():
        total.update(c)
    rows = [(*group, c) for group, c in sorted(counts.items())] + [("all", "all", total)]
    print_table(
        None,
        ("format", "action", "tried", *kinds),
        ((fmt, action, c.total(), *(c[k] for k in kinds)) for fmt, action, c in rows),
        right_from=2,
    )
    for kept, outcome in bad:
        print(f"{outcome.kind}: {kept}: {outcome.detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
