"""data=digits and data=class_folder: the labelled images of the generation family."""

from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image, ImageOps
from sklearn.datasets import load_digits

from ganforge.cli import CONFIG_DIR
from ganforge.data import ClassFolderDataModule, DigitsDataModule, load_rgb
from ganforge.errors import ConfigError, DataError
from tests.conftest import write_image

DIGITS = load_digits()


def _digits(**options) -> DigitsDataModule:
    dm = DigitsDataModule(**options)
    dm.setup()
    return dm


def test_digit_batches_are_grey_images_in_0_1_with_sklearns_labels():
    dm = _digits(batch_size=64, seed=1)
    assert (dm.num_classes, dm.channels, dm.class_names) == (10, 1, [str(i) for i in range(10)])
    loader = dm.train_dataloader()
    assert len(loader) == 1797 // 64
    keys = list(loader.sampler)[:64]
    batch = next(iter(loader))
    assert batch["image"].shape == (64, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["label"].shape == (64,) and batch["label"].dtype == torch.int64
    assert batch["label"].tolist() == [int(DIGITS.target[index]) for _, index in keys]
    every = torch.stack([dm.train_set[i]["image"] for i in range(len(dm.train_set))])
    assert every.min() == 0 and every.max() == 1  # the digits' 0..16, divided by 16


def test_digits_upsample_bilinearly_like_pillow_and_replicate_grey_for_rgb():
    for size in (32, 24):
        image = _digits(image_size=size).train_set[5]["image"]
        reference = Image.fromarray((DIGITS.images[5] / 16).astype(np.float32), "F").resize(
            (size, size), Image.Resampling.BILINEAR)
        assert image.shape == (1, size, size)
        np.testing.assert_allclose(image[0].numpy(), np.asarray(reference), atol=1e-6, rtol=0)
    rgb = _digits(channels=3).train_set[5]["image"]
    assert rgb.shape == (3, 32, 32)
    torch.testing.assert_close(rgb, _digits().train_set[5]["image"].expand(3, -1, -1), rtol=0, atol=0)


def test_a_training_sample_is_a_function_of_seed_epoch_and_index_and_each_epoch_is_reshuffled():
    dm = _digits(flip=True, seed=3)
    torch.manual_seed(0)  # the global RNG plays no part
    first = dm.train_set[(2, 5)]["image"]
    torch.manual_seed(1)
    torch.testing.assert_close(first, _digits(flip=True, seed=3).train_set[(2, 5)]["image"], rtol=0, atol=0)
    unflipped = dm.train_set.images.image(5)
    flips = [not torch.equal(dm.train_set[(epoch, 5)]["image"], unflipped) for epoch in range(40)]
    assert 5 < sum(flips) < 35  # about half the epochs flip this digit
    assert all(torch.equal(dm.train_set[(epoch, 5)]["image"], unflipped) for epoch in range(40) if not flips[epoch])
    assert not any(torch.equal(_digits(seed=3).train_set[(e, 5)]["image"], unflipped.flip(-1)) for e in range(40))
    sampler = dm.train_dataloader().sampler
    orders = []
    for epoch in (0, 1, 0):
        sampler.set_epoch(epoch)
        orders.append([index for _, index in sampler])
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(1797))
    assert orders[0] != orders[1] and orders[0] == orders[2] and orders[0] != list(range(1797))


def test_a_resumed_loader_continues_the_epoch_where_it_stopped():
    def batches(loader, epoch=4):
        loader.sampler.set_epoch(epoch)
        return [batch["label"] for batch in loader]

    def loader():
        return _digits(batch_size=256, seed=2).train_dataloader()

    full = batches(loader())
    assert len(full) == 7
    resumed = loader()
    resumed.load_state_dict({"epoch": 4, "batches": 5})
    rest = batches(resumed)
    assert len(rest) == 2 and all(torch.equal(a, b) for a, b in zip(rest, full[5:]))
    assert len(batches(resumed, epoch=5)) == 7  # the skip applies to that epoch only


def test_the_reference_set_is_a_fixed_subset_whatever_the_training_seed():
    small, again, large = (_digits(reference_size=n, seed=s) for n, s in ((100, 0), (100, 9), (300, 0)))
    positions = small.val_set.positions
    assert len(small.val_set) == 100 and len(set(positions.tolist())) == 100
    assert np.array_equal(positions, again.val_set.positions)
    assert set(positions.tolist()) < set(large.val_set.positions.tolist())  # a larger set keeps the smaller's
    # Pinned: a change here makes FIDs against earlier runs' reference sets incomparable.
    assert positions[:5].tolist() == [3, 24, 37, 52, 62]
    batch = next(iter(small.val_dataloader()))
    assert batch["index"].tolist() == list(range(len(batch["index"])))
    assert batch["label"].tolist() == DIGITS.target[positions[: len(batch["index"])]].tolist()
    item = _digits(reference_size=100, flip=True).val_set[3]
    torch.testing.assert_close(item["image"], small.train_set.images.image(int(positions[3])), rtol=0, atol=0)  # no flip
    everything = _digits().val_set
    assert len(everything) == 1797 and everything.positions.tolist() == list(range(1797))


class _Processes:
    """What a datamodule reads from a data parallel trainer."""

    def __init__(self, world_size: int, global_rank: int) -> None:
        self.world_size, self.global_rank = world_size, global_rank


def test_data_parallel_processes_share_out_the_epoch_and_the_reference_set():
    shares = []
    for rank in range(2):
        dm = DigitsDataModule(reference_size=101, batch_size=16, seed=4)
        dm.trainer = _Processes(2, rank)
        train, val = dm.train_dataloader(), dm.val_dataloader()
        train.sampler.set_epoch(1)
        shares.append((list(train.sampler), [int(i) for batch in val for i in batch["index"]]))
    train_keys = shares[0][0] + shares[1][0]
    assert len(train_keys) == len(set(train_keys)) == 1796  # 898 each, none twice
    assert sorted(shares[0][1] + shares[1][1]) == list(range(101))  # each reference image once


def _class_tree(root: Path, classes=("dog", "cat", "emu"), size=(40, 30)) -> Path:
    """3 classes x 4 images: RGB, grey, RGBA and one in a nested subfolder, written out of sorted order."""
    for c, name in enumerate(classes):
        write_image(root / name / "rgb.png", size, seed=10 * c)
        write_image(root / name / "grey.png", size, mode="L", seed=10 * c + 1)
        write_image(root / name / "alpha.png", size, mode="RGBA", seed=10 * c + 2)
        write_image(root / name / "deep" / "er" / "nested.png", (32, 32), seed=10 * c + 3)
    return root


def test_class_folders_are_sorted_into_labels_and_their_images_fitted(tmp_path: Path):
    root = _class_tree(tmp_path / "train")
    dm = ClassFolderDataModule(root=str(root), image_size=16, batch_size=4, num_workers=0)
    assert (dm.class_names, dm.num_classes, dm.channels) == (["cat", "dog", "emu"], 3, 3)
    files = dm.train_set.images.files
    assert len(dm.train_set) == 12
    for index in range(12):
        item = dm.train_set[(0, index)]
        assert item["image"].shape == (3, 16, 16) and item["label"].dtype == torch.int64
        assert dm.class_names[int(item["label"])] == files[index].relative_to(root).parts[0]
        assert item["image"].min() >= 0 and item["image"].max() <= 1
        # The shorter side to 16, the centre: Pillow's own fit, from the RGB that load_rgb makes.
        fitted = ImageOps.fit(Image.fromarray(load_rgb(files[index])), (16, 16), Image.Resampling.BICUBIC)
        torch.testing.assert_close(item["image"], torch.from_numpy(np.array(fitted)).permute(2, 0, 1) / 255,
                                   rtol=0, atol=0)
    nested = [i for i, f in enumerate(files) if f.name == "nested.png"]
    assert [files[i].parent.name for i in nested] == ["er"] * 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["label"].shape == (4,)


def test_images_of_the_size_already_are_kept_exactly_and_grey_is_the_luma(tmp_path: Path):
    root = _class_tree(tmp_path / "train", size=(32, 32))
    rgb = ClassFolderDataModule(root=str(root), image_size=32, batch_size=2)
    rgb.setup()
    grey = ClassFolderDataModule(root=str(root), image_size=32, channels=1, batch_size=2)
    grey.setup()
    for index, path in enumerate(rgb.train_set.images.files):
        pixels = load_rgb(path)
        assert torch.equal(rgb.train_set[index]["image"], torch.from_numpy(pixels).permute(2, 0, 1) / 255)
        luma = np.array(Image.fromarray(pixels).convert("L"))
        assert torch.equal(grey.train_set[index]["image"], torch.from_numpy(luma)[None] / 255)
    assert grey.channels == 1


def test_decoded_images_are_cached_up_to_cache_mb(tmp_path: Path):
    root = _class_tree(tmp_path / "train")
    cached = ClassFolderDataModule(root=str(root), image_size=16, batch_size=2)
    uncached = ClassFolderDataModule(root=str(root), image_size=16, batch_size=2, cache_mb=0)
    cached.setup()
    uncached.setup()
    first = cached.train_set[0]["image"]
    uncached.train_set[0]
    path = cached.train_set.images.files[0]
    path.unlink()
    torch.testing.assert_close(cached.train_set[0]["image"], first, rtol=0, atol=0)  # from memory
    with pytest.raises(DataError, match=f"image not found: {path}"):
        uncached.train_set[0]


def test_the_reference_set_can_come_from_another_class_folder(tmp_path: Path):
    train = _class_tree(tmp_path / "train")
    test = _class_tree(tmp_path / "test", size=(20, 20))
    dm = ClassFolderDataModule(root=str(train), reference_root=str(test), reference_size=5, image_size=8, batch_size=2)
    dm.setup()
    assert len(dm.val_set) == 5 and all(f.is_relative_to(test) for f in dm.val_set.images.files)
    item = dm.val_set[4]
    assert item["index"] == 4 and item["image"].shape == (3, 8, 8)
    assert int(item["label"]) == dm.val_set.images.labels[dm.val_set.positions[4]]
    _class_tree(tmp_path / "other", classes=("cat", "dog", "owl"))
    with pytest.raises(DataError, match=r"has the classes \['cat', 'dog', 'owl'\], data.root has \['cat', 'dog', 'emu'\]"):
        ClassFolderDataModule(root=str(train), reference_root=str(tmp_path / "other"), batch_size=2).setup()


def _setup_error(dm_class, **options) -> str:
    with pytest.raises((ConfigError, DataError)) as caught:
        dm_class(**options).setup()
    assert "\n" not in str(caught.value)
    return f"{type(caught.value).__name__}: {caught.value}"


def test_class_folder_mistakes_are_named_in_one_line(tmp_path: Path):
    assert "ConfigError: data.root is not set" in _setup_error(ClassFolderDataModule)
    assert "is not a folder" in _setup_error(ClassFolderDataModule, root=str(tmp_path / "nope"))
    write_image(tmp_path / "one" / "cats" / "a.png")
    assert (f"DataError: data.root={tmp_path / 'one'} has 1 class folder (cats): a class folder needs at least 2 "
            "classes; for unlabelled images use data=folder") == _setup_error(ClassFolderDataModule, root=str(tmp_path / "one"))
    (tmp_path / "one" / "dogs" / "sub").mkdir(parents=True)
    assert "class folder dogs holds no images: add images or remove the folder" in _setup_error(
        ClassFolderDataModule, root=str(tmp_path / "one"))
    write_image(tmp_path / "one" / "dogs" / "sub" / "b.png")
    write_image(tmp_path / "one" / "stray.png")
    assert "holds 1 image(s) beside its class folders (e.g. stray.png): move each into the folder of its class" in (
        _setup_error(ClassFolderDataModule, root=str(tmp_path / "one")))
    (tmp_path / "one" / "stray.png").unlink()
    assert "data.reference_size=5 is larger than the 2 images of data.root=" in _setup_error(
        ClassFolderDataModule, root=str(tmp_path / "one"), reference_size=5, batch_size=1)
    assert "reference_root" in _setup_error(ClassFolderDataModule, root=str(tmp_path / "one"), batch_size=1,
                                            reference_root=str(tmp_path / "nope"))
    for split in ("train", "test"):
        write_image(tmp_path / "cifar" / split / "cat" / "a.png")
    assert (f"has the class folders test, train, which name splits, not classes: point data.root at one split, e.g. "
            f"data.root={tmp_path / 'cifar' / 'train'}") in _setup_error(ClassFolderDataModule, root=str(tmp_path / "cifar"))
    assert "data.cache_mb must be a number >= 0" in _setup_error(ClassFolderDataModule, cache_mb=-1)


@pytest.mark.parametrize("options, words", [
    ({"image_size": 30}, "data.image_size must be a positive multiple of 8"),
    ({"image_size": 0}, "data.image_size must be a positive multiple of 8"),
    ({"image_size": "32"}, "data.image_size must be a positive multiple of 8"),
    ({"channels": 2}, "data.channels must be 1 (grey) or 3 (RGB), got 2"),
    ({"channels": True}, "data.channels must be 1 (grey) or 3 (RGB)"),
    ({"reference_size": 2000}, "data.reference_size=2000 is larger than the 1797 images of the training set"),
    ({"reference_size": 0}, "data.reference_size must be an integer >= 1"),
    ({"flip": "yes"}, "data.flip must be true or false"),
    ({"batch_size": 2000}, "data.batch_size=2000 is larger than the 1797 training samples"),
])
def test_digits_mistakes_are_named_in_one_line(options, words):
    assert words in _setup_error(DigitsDataModule, **options)


def test_the_shipped_configs_build_these_datamodules(tmp_path: Path):
    root = _class_tree(tmp_path / "train")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        digits = compose(config_name="train", overrides=["paths.output_dir=/tmp/unused", "data=digits", "seed=7"])
        folder = compose(config_name="train", overrides=["paths.output_dir=/tmp/unused", "data=class_folder",
                                                          f"data.root={root}", "data.batch_size=4"])
    dm = hydra.utils.instantiate(digits.data, _convert_="all")
    assert isinstance(dm, DigitsDataModule) and (dm.seed, dm.batch_size, dm.num_workers, dm.image_size) == (7, 64, 0, 32)
    dm = hydra.utils.instantiate(folder.data, _convert_="all")
    assert isinstance(dm, ClassFolderDataModule) and (dm.num_workers, dm.channels, dm.num_classes) == (4, 3, 3)
