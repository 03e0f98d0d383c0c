"""The cost of the training toolbox per epoch (printed, never asserted).

An epoch with SELU and dropout 0.15 should cost at most 15% more than the
same epoch with ReLU and no dropout on ``mnist_shape``.
"""

import pytest

from benchmarks import worker

TOOLBOX_TARGET = 1.15  # selu + dropout 0.15 over relu, mnist_shape


@pytest.mark.parametrize("case", ["mnist_shape"])
def test_toolbox_epoch_costs(case, threads):
    result = worker.run_job("toolbox_epochs", case, threads)
    for name, ratio in result["ratio"].items():
        print(f"{case} {name}: {result['median'][name]:.4f} s/epoch, {ratio:.3f}x relu")
    selu = result["ratio"]["selu_dropout"]
    print(
        f"selu + dropout 0.15: {selu:.3f}x relu "
        f"({'within' if selu <= TOOLBOX_TARGET else 'above'} the "
        f"{TOOLBOX_TARGET}x target)"
    )
