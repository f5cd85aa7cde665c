"""What the window knows about the model without loading it: the engine choices, their labels
and wording, why an engine cannot run, and which image-encoder weights a download can fetch.

Qt-free and torch-free (the model layer): the engine names come from
:mod:`locdiff_core.engines`, the download folder and endpoint from
:mod:`locdiff_core.encoder_weights` and :mod:`locdiff_core.download`, none of which imports
torch. The worker (:mod:`app.workers.prediction`) fills a :class:`ModelInfo` after each load.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from locdiff_core.download import DEFAULT_HF_ENDPOINT, hf_endpoint
from locdiff_core.encoder_weights import default_cache_dir
from locdiff_core.engines import GEOCLIP_BACKBONE, Engine

AUTO = "auto"


class ModelState(StrEnum):
    """Where the window's model stands, as the prediction worker reports it."""

    MISSING = "missing"  # no model yet (nothing set, or the checkpoint is not there)
    LOADING = "loading"
    READY = "ready"
    WEIGHTS = "weights"  # a checkpoint whose image-encoder weights are absent
    INVALID = "invalid"  # a file that cannot be a model; the message says why

    @property
    def unusable(self) -> bool:
        """Whether predicting must wait for the user to bring a model."""
        return self in (ModelState.MISSING, ModelState.INVALID, ModelState.WEIGHTS)


ENGINE_CHOICES = (AUTO, *(e.value for e in Engine))  # Settings.engine values

#: what "Get the pretrained model" downloads, as the user reads it
BACKBONE_TEXT = "OpenAI CLIP ViT-L/14 image encoder weights"
BACKBONE_SIZE = "about 1.7 GB"
BACKBONE_REPO = "timm/vit_large_patch14_clip_224.openai"  # where the Hub keeps them


@dataclass(frozen=True)
class EncoderWanted:
    """Image-encoder weights that are missing and that a download can fetch (an open_clip
    architecture and pretrained tag)."""

    model: str
    pretrained: str

    @property
    def is_backbone(self) -> bool:
        """Whether these are GeoCLIP's backbone (what "Get the pretrained model" fetches)."""
        return (self.model, self.pretrained) == (
            GEOCLIP_BACKBONE["name"],
            GEOCLIP_BACKBONE["pretrained"],
        )

    @property
    def title(self) -> str:
        return "Get the pretrained model" if self.is_backbone else "Download encoder weights"

    @property
    def what(self) -> str:
        if self.is_backbone:
            return f"the {BACKBONE_TEXT} ({BACKBONE_SIZE})"
        return f"the weights of the image encoder {self.model} ({self.pretrained})"


BACKBONE = EncoderWanted(GEOCLIP_BACKBONE["name"], GEOCLIP_BACKBONE["pretrained"])


@dataclass(frozen=True)
class ModelInfo:
    """The loaded model's engines (``Engine`` values, in ``Pipeline.engines`` order) and the
    one Auto picks; or, with no model, the encoder weights a download could fetch."""

    engines: tuple[str, ...] = ()
    default: str = ""
    wanted: EncoderWanted | None = None


NO_MODEL = ModelInfo()


def engine_label(value: str) -> str:
    """The label of an engine value (``"hybrid"`` → ``"LocDiff-H (hybrid)"``), or of Auto."""
    if value == AUTO:
        return "Auto"
    return Engine(value).label


def choice_label(choice: str, info: ModelInfo) -> str:
    """How the engine box names a choice: Auto says what it picks when a model is loaded."""
    if choice == AUTO and info.default:
        return f"Auto: {engine_label(info.default)}"
    return engine_label(choice)


def counts_probability(engine: str) -> bool:
    """Whether the shares and radii of a prediction by ``engine`` count probability (GeoCLIP
    and the hybrid: gallery probabilities) rather than LocDiffusion's samples."""
    return engine != Engine.LOCDIFF.value


_NEEDS = {
    Engine.GEOCLIP: "GeoCLIP reads features of the CLIP ViT-L/14 (openai) image encoder, and "
    "this checkpoint was trained on another encoder (clear the checkpoint in Settings to "
    "predict with GeoCLIP alone)",
    Engine.LOCDIFF: "LocDiffusion needs a trained checkpoint: import one (File > Import "
    "checkpoint…) or train one in the Trainer tab",
    Engine.HYBRID: "LocDiff-H needs a LocDiffusion checkpoint trained on CLIP ViT-L/14 (openai) "
    "embeddings (`locdiff embed --model ViT-L-14 --pretrained openai`), next to GeoCLIP",
}


def unavailable_reason(choice: str, info: ModelInfo) -> str | None:
    """Why ``choice`` cannot predict with the loaded model, with the fix; None when it can
    (Auto always can once a model is loaded)."""
    if choice == AUTO or choice in info.engines:
        return None
    offered = ", ".join(engine_label(e) for e in info.engines) or "no engine yet"
    return (
        f"{engine_label(choice)} cannot predict with this model: {_NEEDS[Engine(choice)]}. "
        f"This model offers {offered}: choose one of them, or Auto, in the toolbar's Engine box."
    )


def download_source() -> str:
    """Where encoder weights come from: the Hugging Face hub, or the mirror in HF_ENDPOINT."""
    endpoint = hf_endpoint()
    if endpoint == DEFAULT_HF_ENDPOINT:
        return f"the Hugging Face hub ({endpoint})"
    return f"the mirror in HF_ENDPOINT ({endpoint})"


def download_question(wanted: EncoderWanted) -> str:
    """The confirmation asked before any encoder download (never a silent one)."""
    heads = (
        " GeoCLIP's heads are already installed, so photos can be predicted as soon as it is done."
        if wanted.is_backbone
        else ""
    )
    return (
        f"Download {wanted.what} from {download_source()} into {default_cache_dir()}?{heads}\n\n"
        "The download can be cancelled: what arrived is kept, and clicking "
        f"{wanted.title} again continues from there. The file's size and sha256 are checked "
        "before it is used."
    )


def by_hand(wanted: EncoderWanted) -> str:
    """How to bring the weights without this download (offline, or behind a firewall)."""
    if wanted.is_backbone:
        file = (
            f"open_clip's ViT-L-14 'openai' weights (open_clip_pytorch_model.bin or "
            f"open_clip_model.safetensors from the Hugging Face repository {BACKBONE_REPO})"
        )
    else:
        file = f"open_clip's {wanted.model} '{wanted.pretrained}' weights file"
    return (
        f"To bring the file by hand, download {file} on a computer with internet access, then "
        "choose it in Settings > Encoder weights file (on the command line: "
        "`locdiff predict --encoder-weights FILE`)."
    )


def megabytes(n: int) -> str:
    """``1,234 MB`` (decimal megabytes, as download sizes are quoted); ``?`` for unknown."""
    return f"{n / 1e6:,.0f} MB" if n else "? MB"
