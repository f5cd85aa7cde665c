"""The files of a training run folder, named once: the trainer writes them and the app's
Trainer tab reads them (without importing the trainer, which loads torch). Torch-free."""

CHECKPOINT_FILE = "checkpoint.safetensors"  # weights and the JSON config that rebuilds the model
STATE_FILE = "training_state.pt"  # what `locdiff train --resume` continues from
METRICS_FILE = "metrics.jsonl"  # one JSON object per logged step and per validation
LOG_FILE = "train.log"
STOP_FILE = "STOP"  # created to ask a run to save and stop cleanly
