"""GeoCLIP (Vivanco et al., NeurIPS 2023) on our image backbone: its trained files
(:mod:`.weights`), its two small networks (:mod:`.model`), the encoded gallery
(:mod:`.gallery`) and the retrieval head (:mod:`.head`)."""

from locdiff_core.geoclip.head import GeoCLIPHead, RetrievalConfig
from locdiff_core.geoclip.weights import GeoCLIPFiles, GeoCLIPFilesError

__all__ = ["GeoCLIPFiles", "GeoCLIPFilesError", "GeoCLIPHead", "RetrievalConfig"]
