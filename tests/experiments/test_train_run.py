"""train_and_evaluate: a run's seed fixes its initial weights and its data order."""

import keras

from tests.data.formats import write_idx_dataset
from tf_lowprec import data, models
from tf_lowprec.experiments.train_run import train_and_evaluate


def test_same_seed_same_run_whatever_the_global_random_state(tmp_path):
    write_idx_dataset(str(tmp_path), n_train=64, n_test=16, seed=0)

    def run():
        return train_and_evaluate(
            lambda: models.mlp(hidden_units=(8,)), keras.optimizers.SGD(0.1),
            lambda: data.load("mnist", "train", 8, data_dir=str(tmp_path), seed=3),
            lambda: data.load("mnist", "test", 16, data_dir=str(tmp_path)),
            epochs=2, seed=0, verbose=0,
        )[1]

    keras.utils.set_random_seed(5)  # whatever ran before in this process
    first = run()
    keras.utils.set_random_seed(77)
    second = run()
    assert [r["train_loss"] for r in first] == [r["train_loss"] for r in second]
    assert [r["test_accuracy"] for r in first] == [r["test_accuracy"] for r in second]
