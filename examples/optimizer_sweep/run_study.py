"""The classic TF optimizer study, on Fashion-MNIST, with `tf-lowprec sweep`.

    python examples/optimizer_sweep/run_study.py          # ~20 min on 2 CPU cores

Three sweeps, each resumable (rerun the command after an interruption):

1. single-layer net (softmax regression, `mlp(hidden_units=())`) and
2. multi-layer net (`mlp(hidden_units=(256,))`), each with the ten optimizers
   {gradient descent, momentum, Adam, RMSprop, Adagrad, Adadelta, FTRL,
   proximal GD, proximal Adagrad, GRDA} x learning rates {1, 0.1, 0.01,
   0.001, 0.0001};
3. the loss-function comparison on the multi-layer net: six losses x
   {gradient descent, Adam, GRDA} x the same learning rates.

To fit in well under an hour on 2 CPU cores every run trains for 3 epochs on
the first 20,000 training images (batch 128) and is tested on all 10,000 test
images. Equivalent CLI for one sweep:

    tf-lowprec sweep --dataset fashion_mnist --model mlp --model-kwargs '{"hidden_units": []}' \\
        --epochs 3 --limit 20000 --out examples/optimizer_sweep/results/single_layer
"""

import os
import sys

from tf_lowprec.experiments.sweep import CLASSIC_OPTIMIZERS, format_summary, sweep

RESULTS = os.path.join(os.path.dirname(__file__), "results")
LEARNING_RATES = [1, 0.1, 0.01, 0.001, 0.0001]
LOSSES = ["sparse_softmax_cross_entropy", "softmax_cross_entropy", "sigmoid_cross_entropy",
          "weighted_cross_entropy", "sigmoid_focal_cross_entropy", "weighted_kappa"]
COMMON = dict(dataset="fashion_mnist", model="mlp", epochs=3, limit=20000, batch_size=128)

STUDIES = {
    "single_layer": dict(optimizers=CLASSIC_OPTIMIZERS, learning_rates=LEARNING_RATES,
                         model_kwargs={"hidden_units": []}),
    "multi_layer": dict(optimizers=CLASSIC_OPTIMIZERS, learning_rates=LEARNING_RATES,
                        model_kwargs={"hidden_units": [256]}),
    "losses": dict(optimizers=["sgd", "adam", "grda"], learning_rates=LEARNING_RATES,
                   losses=LOSSES, model_kwargs={"hidden_units": [256]}),
}


def main(names=None):
    for name in names or STUDIES:
        print(f"== {name}", flush=True)
        _, summary = sweep(**COMMON, **STUDIES[name], out=os.path.join(RESULTS, name))
        print(format_summary(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
