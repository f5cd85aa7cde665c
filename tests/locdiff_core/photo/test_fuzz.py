"""Property-based fuzzing of reading, writing and removing GPS on mutated photos (JPEG, TIFF,
PNG, WebP and HEIC): reading raises only ``PhotoError`` and never hangs; a write verifies with
every reader or leaves the bytes identical; ``remove`` leaves no position for any reader.

Hypothesis draws the mutations (``photo_fuzz.mutate``) derandomised, without an example
database, so CI runs the same cases every time (about 60 s in all with exiftool installed);
``benchmarks/fuzz_photos.py`` runs thousands more and prints the counts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from photo_fuzz import ACTIONS, mutate, run_case, seeds
from photo_samples import SAMPLES

SEEDS = {seed.name: seed for seed in seeds(SAMPLES)} if SAMPLES.is_dir() else {}
EXAMPLES = {"read": 100, "write": 100, "remove": 80}


def fuzz_settings(examples: int) -> settings:
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=examples,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.mark.skipif(not SEEDS, reason="the shared EXIF samples are not here")
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("name", sorted(SEEDS) or ["none"])
def test_mutated_photos(name, action, tmp_path):
    seed = SEEDS[name]

    @fuzz_settings(EXAMPLES[action])
    @given(rng=st.randoms(use_true_random=False))
    def check(rng):
        data = mutate(seed, rng)
        outcome = run_case(seed, data, action, tmp_path / "case")
        assert not outcome.bad, f"{name} {action}: {outcome.kind}: {outcome.detail}"

    check()
