"""Labelled IRSTD datasets in their native layouts, read lazily as `Sample`s (numpy/OpenCV only).

Used by training (spire.data) and by the runtime for labelled sources, so both see the same
frames and the same mask -> point labels. `open_dataset(root, format='auto', split='train')`
reads NUAA-SIRST, BasicIRSTD, SPIRE COCO-keypoint JSON and LESPS folders; `write_spire_json` (and
`python -m edge.datasets convert`) turns any of them into SPIRE JSON.
"""
from .convert import write_spire_json
from .core import ConcatDataset, Dataset, DatasetWarning, Entry, Sample, mask_components, points_from_mask, read_mask
from .layouts import FORMATS, detect_format, open_dataset, open_datasets, read_name_list

__all__ = ["Sample", "Entry", "Dataset", "ConcatDataset", "DatasetWarning", "FORMATS", "detect_format",
           "open_dataset", "open_datasets", "read_name_list", "points_from_mask", "mask_components",
           "read_mask", "write_spire_json"]
