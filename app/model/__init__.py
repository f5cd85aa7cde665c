"""The app's model layer: the session (photos, predictions, corrections), coordinates, pins,
settings, what the engines and models are, and what a training job is. Imports neither Qt nor
torch (``tests/app/test_layers.py`` checks), so it can be tested and reasoned about on its own;
the layers above receive it and listen to it."""
