"""Shared pieces of optimizers that wrap an inner Keras optimizer."""


class Untracked:
    """References that Keras's and TF's attribute trackers must not follow
    (lists of model variables would otherwise become optimizer variables)."""

    def __init__(self, **items):
        self.__dict__.update(items)


class InnerOptimizerDelegation:
    """Delegates the step counter, learning rate and loss scaling to `inner_optimizer`.

    For wrappers (`LowPrecision`, `SWA`) that keep their own variables in
    `self._variables` and run an inner optimizer's update: the wrapper's
    `variables` are its own followed by the inner optimizer's, and
    `iterations`, `learning_rate` and `scale_loss` are the inner optimizer's.
    Put it first in the bases, before `keras.optimizers.Optimizer`.
    """

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)
