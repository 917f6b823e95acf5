"""An ensemble of small ReLU MLP regressors in plain numpy, BANANAS' performance predictor.

The networks are naszilla's ``MetaNeuralnet`` (White, Neiswanger & Savani, BANANAS, AAAI
2021; ``naszilla/meta_neural_net.py`` with the ``standard`` parameters of
``naszilla/params.py``): ``num_layers`` dense ReLU layers of ``width`` units and a linear
output, Glorot-uniform weights and zero biases (Keras' defaults), mean absolute error,
Adam with beta1 0.9 and beta2 0.99 (epsilon 1e-7, Keras' update rule), mini-batches that
are reshuffled every epoch (Keras' ``fit``), the last batch of an epoch the remainder.

Why numpy and not TensorFlow or torch: every number is float64 and every random draw
(initial weights, each epoch's shuffle) comes from the generator the caller passes, so a
run is bit-identical on every re-run and does not depend on thread counts. The members
are trained together as one stacked computation (member = leading axis of every array),
which makes an ensemble of five cost little more than one network.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Adam as naszilla configures Keras' (``Adam(lr, beta_1=.9, beta_2=.99)``, epsilon 1e-7)
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.99
ADAM_EPS = 1e-7


class MLPEnsemble:
    """``members`` independently initialised MLPs, each trained on its own shuffles.

    All parameters live in one flat vector (so one Adam step is a handful of numpy
    calls); :attr:`weights` and :attr:`biases` are views into it, shaped
    ``[members, fan_in, fan_out]`` and ``[members, 1, fan_out]``.
    """

    def __init__(
        self, members: int, inputs: int, num_layers: int, width: int, rng: np.random.Generator
    ) -> None:
        self.members = members
        sizes = [inputs] + [width] * num_layers + [1]
        shapes = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            shapes += [(members, fan_in, fan_out), (members, 1, fan_out)]
        self.theta = np.zeros(sum(int(np.prod(s)) for s in shapes))
        self._grad = np.zeros_like(self.theta)
        params, grads, offset = [], [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            params.append(self.theta[offset : offset + size].reshape(shape))
            grads.append(self._grad[offset : offset + size].reshape(shape))
            offset += size
        self.weights, self.biases = params[0::2], params[1::2]
        self._weight_grads, self._bias_grads = grads[0::2], grads[1::2]
        for weight in self.weights:  # Glorot uniform, drawn layer by layer
            limit = np.sqrt(6.0 / (weight.shape[1] + weight.shape[2]))
            weight[...] = rng.uniform(-limit, limit, size=weight.shape)

    def fit(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        rng: np.random.Generator,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
    ) -> float:
        """Train every member on ``(x, y)`` with mean absolute error; returns the
        ensemble's mean training MAE afterwards."""
        n = len(y)
        m = np.zeros_like(self.theta)
        v = np.zeros_like(self.theta)
        scratch = np.empty_like(self.theta)
        order = np.tile(np.arange(n), (self.members, 1))
        step = 0
        for _ in range(epochs):
            shuffled = rng.permuted(order, axis=1)  # one shuffle per member
            for start in range(0, n, batch_size):
                rows = shuffled[:, start : start + batch_size]
                self._gradient(x[rows], y[rows][..., None])
                step += 1
                rate = learning_rate * np.sqrt(1 - ADAM_BETA2**step) / (1 - ADAM_BETA1**step)
                self._adam_step(m, v, scratch, rate)
        return float(np.abs(self.predict(x) - y).mean())

    def _adam_step(
        self,
        m: NDArray[np.float64],
        v: NDArray[np.float64],
        scratch: NDArray[np.float64],
        rate: float,
    ) -> None:
        """Keras' Adam update of the flat parameters, in place: it runs once per mini-batch,
        and temporaries would double its cost."""
        grad = self._grad
        m *= ADAM_BETA1
        np.multiply(grad, 1 - ADAM_BETA1, out=scratch)
        m += scratch
        v *= ADAM_BETA2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - ADAM_BETA2
        v += scratch
        np.sqrt(v, out=scratch)
        scratch += ADAM_EPS
        np.divide(m, scratch, out=scratch)
        scratch *= rate
        self.theta -= scratch

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each member's predictions for the rows of ``x``: ``[members, len(x)]``."""
        hidden = x
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            hidden = np.maximum(np.matmul(hidden, weight) + bias, 0.0)
        return (np.matmul(hidden, self.weights[-1]) + self.biases[-1])[..., 0]

    def _gradient(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> None:
        """Fill the flat gradient with d(MAE)/d(theta) for one batch per member:
        ``x`` is ``[members, batch, inputs]``, ``y`` is ``[members, batch, 1]``."""
        activations = [x]
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            activations.append(np.maximum(np.matmul(activations[-1], weight) + bias, 0.0))
        output = np.matmul(activations[-1], self.weights[-1]) + self.biases[-1]
        upstream = np.sign(output - y) / y.shape[1]  # d mean|out - y| / d out (0 at a tie)
        for layer in range(len(self.weights) - 1, -1, -1):
            below = activations[layer]
            np.matmul(below.transpose(0, 2, 1), upstream, out=self._weight_grads[layer])
            self._bias_grads[layer][...] = upstream.sum(axis=1, keepdims=True)
            if layer:
                upstream = np.matmul(upstream, self.weights[layer].transpose(0, 2, 1))
                upstream *= below > 0  # ReLU's derivative (0 at 0, as Keras takes it)
