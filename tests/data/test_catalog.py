"""Static dataset facts: names, aliases, class names, constants."""

import pytest

from tf_lowprec import data


@pytest.mark.parametrize("name", data.NAMES)
def test_info_is_consistent(name):
    meta = data.info(name)
    assert meta.name == name
    assert len(meta.class_names) == meta.num_classes
    assert len(set(meta.class_names)) == meta.num_classes
    assert len(meta.mean) == len(meta.std) == meta.input_shape[-1]
    assert all(0 < s < 1 for s in meta.std) and all(0 < m < 1 for m in meta.mean)
    assert meta.num_examples("test") == meta.num_test


def test_known_facts():
    assert data.info("fashion-mnist") is data.info("fashion_mnist")
    assert data.info("MNIST").input_shape == (28, 28, 1)
    c10 = data.info("cifar10")
    assert (c10.input_shape, c10.num_train, c10.num_test) == ((32, 32, 3), 50000, 10000)
    assert c10.class_names[0] == "airplane" and c10.class_names[9] == "truck"
    c100 = data.info("cifar100")
    # Fine label names are alphabetical in the upstream meta file.
    assert list(c100.class_names) == sorted(c100.class_names)
    assert c100.class_names[:2] == ("apple", "aquarium_fish")
    assert c100.class_names[-1] == "worm"
    assert data.info("fashion_mnist").class_names[9] == "Ankle boot"


@pytest.mark.parametrize("bad", ["imagenet", "", None, 3])
def test_unknown_name_lists_valid(bad):
    with pytest.raises(ValueError, match=r"name=.*mnist, fashion_mnist, cifar10, cifar100"):
        data.info(bad)
