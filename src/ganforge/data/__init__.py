"""Datasets, DataModules and colour conversion."""

from ganforge.data.color import lab_to_network, lab_to_rgb, network_to_lab, rgb_to_lab
from ganforge.data.datamodules import CropDataModule, FolderDataModule, PairedDataModule, SampleDataModule
from ganforge.data.images import SAMPLE_PHOTOS, find_images, load_rgb, sample_photo
from ganforge.data.labelled import ClassFolderDataModule, DigitsDataModule, LabelledDataModule

__all__ = [
    "lab_to_network",
    "lab_to_rgb",
    "network_to_lab",
    "rgb_to_lab",
    "CropDataModule",
    "FolderDataModule",
    "PairedDataModule",
    "SampleDataModule",
    "ClassFolderDataModule",
    "DigitsDataModule",
    "LabelledDataModule",
    "SAMPLE_PHOTOS",
    "find_images",
    "load_rgb",
    "sample_photo",
]
