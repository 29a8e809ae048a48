"""What each supported dataset is: shapes, sizes, class names, normalization constants.

Normalization maps a pixel ``p`` in ``[0, 255]`` to ``(p / 255 - mean) / std`` per
channel. The constants are fixed published statistics of each *training* split
(mean and standard deviation over every pixel of every image, per channel), never
computed at load time, so train and test share them and a ``limit``-ed subset is
normalized exactly like the full set:

| dataset       | mean                       | std                        |
|---------------|----------------------------|----------------------------|
| mnist         | 0.1307                     | 0.3081                     |
| fashion_mnist | 0.2860                     | 0.3530                     |
| cifar10       | (0.4914, 0.4822, 0.4465)   | (0.2470, 0.2435, 0.2616)   |
| cifar100      | (0.5071, 0.4865, 0.4409)   | (0.2673, 0.2564, 0.2762)   |

MNIST's pair is the one of the PyTorch MNIST example; Fashion-MNIST's was
re-measured here on the upstream training files (0.28604, 0.35302). For CIFAR-10 many
codebases (kuangliu/pytorch-cifar, SWA, SWALP) use std ``(0.2023, 0.1994, 0.2010)``,
which is the mean of *per-image* standard deviations; we use the dataset-wide std
above, which is what "standardization" means. The difference is a constant ~1.2x
input scale, irrelevant for networks with batch normalization.

References:
  LeCun et al., "Gradient-based learning applied to document recognition", 1998
    (MNIST, http://yann.lecun.com/exdb/mnist/).
  Xiao, Rasul, Vollgraf, "Fashion-MNIST", arXiv:1708.07747, 2017
    (https://github.com/zalandoresearch/fashion-mnist).
  Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009
    (CIFAR-10/100, https://www.cs.toronto.edu/~kriz/cifar.html).
"""

from __future__ import annotations

import dataclasses

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one dataset (no files are read to produce it).

    Attributes:
        name: canonical name (`"mnist"`, `"fashion_mnist"`, `"cifar10"`, `"cifar100"`).
        input_shape: shape of one image, HWC.
        num_classes: number of label values; labels are `0 .. num_classes - 1`.
        num_train: examples in the upstream training split.
        num_test: examples in the upstream test split.
        class_names: human-readable name of each label, indexed by label.
        mean: per-channel normalization mean (pixels scaled to [0, 1]).
        std: per-channel normalization standard deviation.
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    num_train: int
    num_test: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def num_examples(self, split: str) -> int:
        """Upstream size of `split` (`"train"` or `"test"`)."""
        return {"train": self.num_train, "test": self.num_test}[check_split(split)]


_DIGITS = tuple(str(i) for i in range(10))
_FASHION = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_CIFAR10 = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
# The 100 fine labels, in label order (alphabetical, as in the archive's `meta`).
_CIFAR100 = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle",
    "bicycle", "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel",
    "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
    "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse",
    "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
    "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea",
    "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table",
    "tank", "telephone", "television", "tiger", "tractor", "train", "trout",
    "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman",
    "worm",
)

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", (28, 28, 1), 10, 60000, 10000, _DIGITS, (0.1307,), (0.3081,)
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", (28, 28, 1), 10, 60000, 10000, _FASHION,
        (0.2860,), (0.3530,),
    ),
    "cifar10": DatasetInfo(
        "cifar10", (32, 32, 3), 10, 50000, 10000, _CIFAR10,
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": DatasetInfo(
        "cifar100", (32, 32, 3), 100, 50000, 10000, _CIFAR100,
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    ),
}
NAMES = tuple(DATASETS)

# Other spellings people use; "fashion-mnist" is the upstream/Debian/keras-cache one.
_ALIASES = {"fashion-mnist": "fashion_mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}


def canonical_name(name) -> str:
    """Returns the canonical dataset name for `name` or raises ValueError."""
    if isinstance(name, str):
        key = name.strip().lower()
        key = _ALIASES.get(key, key)
        if key in DATASETS:
            return key
    raise ValueError(
        f"Unknown dataset. Received: name={name!r}. Valid names: "
        f"{', '.join(NAMES)} (also accepted: {', '.join(_ALIASES)})."
    )


def check_split(split) -> str:
    """Returns `split` if it is `"train"` or `"test"`, else raises ValueError."""
    if split not in SPLITS:
        raise ValueError(
            f"Unknown split. Received: split={split!r}. Valid splits: {', '.join(SPLITS)}."
        )
    return split


def info(name: str) -> DatasetInfo:
    """Static facts about dataset `name`: shapes, sizes, class names, constants.

    Example:
        >>> info("fashion-mnist").input_shape
        (28, 28, 1)
    """
    return DATASETS[canonical_name(name)]
