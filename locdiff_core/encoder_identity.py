"""Image-encoder identities: which encoder made a set of embeddings.

An identity is a JSON object carried by datasets and checkpoints. It always has ``name`` (the
open_clip architecture, or a custom config's name), ``pretrained`` (the open_clip tag, or
``None``) and ``dim`` (the embedding width). Without a tag it also has ``weights_sha256`` (the
weights file's hash); a custom architecture adds ``config`` (the open_clip model config) and
``preprocess`` (the image preprocessing), so any process can rebuild it. Two identities name
the same encoder when all of these agree.
"""

from __future__ import annotations

from collections.abc import Callable

IDENTITY_KEYS = ("name", "pretrained", "dim", "config", "preprocess", "weights_sha256", "seed")
_DIFFERENCE = {
    "name": "another architecture",
    "config": "another architecture config",
    "dim": "another embedding width",
    "preprocess": "other preprocessing",
    "pretrained": "other pretrained weights",
    "weights_sha256": "another weights file",
    "seed": "other random weights",
}


def describe_encoder(identity: dict) -> str:
    """A short human name, e.g. ``ViT-L-14 / openai (dim 768)``."""
    name = identity.get("name", "?")
    if identity.get("config") is not None:
        name = f"custom model {name}"
    if identity.get("pretrained"):
        what = f"{name} / {identity['pretrained']}"
    elif identity.get("weights_sha256"):
        what = f"{name} with weights sha256 {str(identity['weights_sha256'])[:12]}"
    elif identity.get("seed") is not None:
        what = f"{name} with random weights (seed {identity['seed']})"
    else:
        what = f"{name} with unrecorded weights"
    return f"{what} (dim {identity.get('dim', '?')})"


def encoder_mismatch(expected: dict, actual: dict) -> str | None:
    """Why embeddings by ``actual`` cannot stand in for ``expected``'s, or ``None`` if they can:
    another architecture, preprocessing, width, pretrained tag or weights file."""
    for key in IDENTITY_KEYS:
        if expected.get(key) != actual.get(key):
            return _DIFFERENCE[key]
    return None


def require_same_encoder(
    expected: dict, actual: dict, message: Callable[[str, str, str], str]
) -> None:
    """Raise ``ValueError(message(expected, actual, problem))`` when the encoders differ, the
    three arguments being their descriptions and the difference. A function rather than a
    format string, so that a path holding ``{`` or ``}`` is printed as it is."""
    problem = encoder_mismatch(expected, actual)
    if problem is not None:
        raise ValueError(message(describe_encoder(expected), describe_encoder(actual), problem))
