"""Trains the digits job's classifier and writes its integer weights.

The model is a multilayer perceptron, 64 pixels -> 32 hidden units (ReLU) -> 10 scores, trained
with floats on scikit-learn's bundled 8x8 digits (1,797 images, pixels 0..16) and then
quantized so that the job (digits.c) classifies with integers alone, as Cairn's runner refuses
floating point:

    acc[j]   = b1[j] + sum_i x[i] * W1[j][i]                  int32, x the raw pixels 0..16
    h[j]     = min((max(acc[j], 0) + 2^(SHIFT-1)) >> SHIFT, 127)   ReLU, then rounded to 0..127
    score[k] = b2[k] + sum_j h[j] * W2[k][j]                  int32; the class is the argmax

W1 and W2 are int8 (-127..127), each layer scaled by its largest weight; SHIFT is the smallest
that keeps the training set's largest activation within 127. `integer_scores` below is that
same arithmetic in numpy integers, and the accuracies printed for the integer model are its.

Writes, beside this file:
  weights.h             the int8 weights, int32 biases and SHIFT, for digits.c
  heldout.bin           the held-out images as one input batch (64 bytes an image, 0..16)
  heldout-labels.txt    their true digits, one a line
  heldout-expected.txt  what the job must print for heldout.bin: this model's integer scores

Usage: scripts/build-jobs --train (which runs this in the pinned environment it installs).
The split and the training are seeded and run on one thread, so the same pinned versions give
the same weights; float training may still round differently on another CPU's BLAS kernels,
which is why weights.h is committed rather than rebuilt.
"""

import pathlib
import platform
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

HERE = pathlib.Path(__file__).resolve().parent
HIDDEN = 32
# L2 penalty: a little more than scikit-learn's default keeps the weights small and even,
# which loses less when they are rounded to int8.
ALPHA = 1e-2
TEST_SIZE = 0.25
SPLIT_SEED = 0
TRAIN_SEED = 0
PIXEL_MAX = 16
INT8_MAX = 127


def split():
    """The fixed split: 75 % to train, 25 % held out, stratified by digit."""
    digits = load_digits()
    x = digits.data.astype(np.int64)
    assert x.min() >= 0 and x.max() <= PIXEL_MAX
    return train_test_split(
        x, digits.target, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=digits.target
    )


def train(x_train, y_train):
    # One BLAS thread: a thread count changes the order of float sums, and so the weights.
    with threadpool_limits(1), warnings.catch_warnings():
        # The adam solver stops at max_iter or when the loss stops improving; either is fine.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(
            hidden_layer_sizes=(HIDDEN,), activation="relu", alpha=ALPHA,
            max_iter=1000, random_state=TRAIN_SEED,
        )
        model.fit(x_train / PIXEL_MAX, y_train)
    return model


def quantize(model, x_train):
    """The integer model: (W1 [HIDDEN][64], b1, SHIFT, W2 [10][HIDDEN], b2), all numpy int64.

    The float model computes relu(W1 (x / 16) + b1). With W1 = s1 * W1q, the integer
    accumulator over the raw pixels is acc = W1q x + b1q = (16 / s1) * (W1 (x / 16) + b1), so
    b1q = round(16 b1 / s1), and a hidden unit h = acc >> SHIFT stands for h * 2^SHIFT * s1 / 16.
    Layer 2's bias takes that scale and W2's: b2q = round(b2 / (s2 * 2^SHIFT * s1 / 16)). The
    scores are then the float logits times one positive constant, so the argmax is the same.
    """
    w1, w2 = model.coefs_
    b1, b2 = model.intercepts_
    s1 = np.abs(w1).max() / INT8_MAX
    w1q = np.round(w1.T / s1).astype(np.int64)
    b1q = np.round(b1 * PIXEL_MAX / s1).astype(np.int64)
    largest = np.maximum(x_train @ w1q.T + b1q, 0).max()
    shift = max(0, int(np.ceil(np.log2(largest / INT8_MAX))))
    s2 = np.abs(w2).max() / INT8_MAX
    w2q = np.round(w2.T / s2).astype(np.int64)
    b2q = np.round(b2 / (s2 * 2.0**shift * s1 / PIXEL_MAX)).astype(np.int64)
    # The job accumulates in int32: check the worst case over any image, not just these.
    assert PIXEL_MAX * np.abs(w1q).sum(axis=1).max() + np.abs(b1q).max() < 2**31
    assert INT8_MAX * np.abs(w2q).sum(axis=1).max() + np.abs(b2q).max() < 2**31
    assert np.abs(w1q).max() <= INT8_MAX and np.abs(w2q).max() <= INT8_MAX
    return w1q, b1q, shift, w2q, b2q


def integer_scores(params, x):
    """digits.c's arithmetic, in integers only: the 10 scores of each image in x."""
    w1q, b1q, shift, w2q, b2q = params
    acc = np.maximum(x @ w1q.T + b1q, 0)
    rounding = (1 << shift) >> 1
    hidden = np.minimum((acc + rounding) >> shift, INT8_MAX)
    return hidden @ w2q.T + b2q


def c_array(values):
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def write_weights(params, versions, report):
    w1q, b1q, shift, w2q, b2q = params
    lines = [
        "/* Generated by examples/jobs/digits/train.py (scripts/build-jobs --train): do not edit.",
        f" * {versions}.",
        f" * {report}",
        " * The layers and their arithmetic are described in train.py. */",
        f"#define DIGITS_HIDDEN {HIDDEN}",
        f"#define DIGITS_SHIFT {shift}",
        f"static const signed char DIGITS_W1[{HIDDEN}][64] = {{",
        *(f"    {c_array(row)}," for row in w1q),
        "};",
        f"static const int DIGITS_B1[{HIDDEN}] = {c_array(b1q)};",
        f"static const signed char DIGITS_W2[10][{HIDDEN}] = {{",
        *(f"    {c_array(row)}," for row in w2q),
        "};",
        f"static const int DIGITS_B2[10] = {c_array(b2q)};",
    ]
    (HERE / "weights.h").write_text("\n".join(lines) + "\n")


def main():
    versions = (
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}"
    )
    print(versions)
    x_train, x_test, y_train, y_test = split()
    model = train(x_train, y_train)
    params = quantize(model, x_train)
    test_scores = integer_scores(params, x_test)
    accuracy = {
        "float": (model.score(x_train / PIXEL_MAX, y_train), model.score(x_test / PIXEL_MAX, y_test)),
        "integer": (
            (integer_scores(params, x_train).argmax(axis=1) == y_train).mean(),
            (test_scores.argmax(axis=1) == y_test).mean(),
        ),
    }
    for name, (train_accuracy, test_accuracy) in accuracy.items():
        print(
            f"{name:7} model: train {train_accuracy:.2%} of {len(y_train)}, "
            f"held out {test_accuracy:.2%} of {len(y_test)}"
        )
    print(f"hidden {HIDDEN}, shift {params[2]}, {model.n_iter_} training iterations")
    report = (
        f"Split: {len(y_train)} train, {len(y_test)} held out (test_size {TEST_SIZE}, "
        f"random_state {SPLIT_SEED}, stratified).\n * Held-out accuracy: float model "
        f"{accuracy['float'][1]:.2%}, this integer model {accuracy['integer'][1]:.2%}."
    )
    write_weights(params, versions, report)
    (HERE / "heldout.bin").write_bytes(x_test.astype(np.uint8).tobytes())
    (HERE / "heldout-labels.txt").write_text("".join(f"{label}\n" for label in y_test))
    # argmax returns the first of equal scores, as digits.c does.
    (HERE / "heldout-expected.txt").write_text(
        "".join(
            f"{row.argmax()} {' '.join(str(s) for s in row)}\n" for row in test_scores
        )
    )
    if accuracy["integer"][1] < 0.95:
        raise SystemExit("the integer model's held-out accuracy is under 95 %")


if __name__ == "__main__":
    main()
