"""Sample-quality metrics for generated images: FID (Heusel et al. 2017) and KID
(Binkowski et al. 2018) on the FID Inception-v3 (Szegedy et al. 2016).

No Lightning or Hydra here, and no torchvision or torch-fidelity: the network is
`InceptionFeatures`, the arithmetic is torchmetrics'. The Inception weights are not
shipped; `load_inception` reads them from a path or the torch hub cache, and returns
None when there are none (callers then log `FID_SKIPPED_MESSAGE`).
"""

from ganforge.metrics.fid import (
    FID_SKIPPED_MESSAGE,
    FID_WEIGHTS_FILENAME,
    FID_WEIGHTS_URL,
    GenerativeMetrics,
    default_weights_paths,
    load_inception,
    make_fid_kid,
)
from ganforge.metrics.inception import FID_INPUT_SIZE, FID_NUM_FEATURES, InceptionFeatures

__all__ = [
    "FID_INPUT_SIZE",
    "FID_NUM_FEATURES",
    "FID_SKIPPED_MESSAGE",
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_URL",
    "GenerativeMetrics",
    "InceptionFeatures",
    "default_weights_paths",
    "load_inception",
    "make_fid_kid",
]
