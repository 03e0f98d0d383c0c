"""Data-parallel training over MPI: one script, run on every process.

Each process (rank) takes its own shard of the training rows and fits the same
``MLPClassifier`` with ``communicator=MPI.COMM_WORLD``: every step averages the
gradients of the ranks' batches (one allreduce), so the ranks apply the same
updates and end with the same model, as one process training on batches of
``batch_size * n_ranks`` rows. Rank 0 reports the test accuracy and saves the
model (an ordinary pickle: it predicts in any process, without MPI).

Run it on 2 local processes (install with ``pip install -e ".[mpi]"``; shared
memory only, no network)::

    UCX_TLS=self,sm UCX_NET_DEVICES=lo mpiexec.gforker -n 2 python examples/mpi_train.py

Options: ``--max-iter N`` (epochs, default 30), ``--sync-every K`` (local SGD:
average the parameters every K steps instead of the gradients every step),
``--save PATH`` (rank 0 pickles the model there).
"""

import argparse
import pickle

import numpy as np
from mpi4py import MPI
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fastfit import MLPClassifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--sync-every", type=int, default=None)
    parser.add_argument("--save", default=None)
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    # every rank loads the same data here and keeps its shard; in a real job
    # each rank would read only its own files
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    scaler = StandardScaler().fit(X_train)  # the same statistics on every rank
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    mine = np.arange(rank, X_train.shape[0], size)

    model = MLPClassifier(
        hidden_layer_sizes=(128, 64),
        batch_size=32,  # per rank: each step trains on 32 * size rows
        learning_rate_init=2e-3,
        max_iter=args.max_iter,
        early_stopping=True,  # scored on every rank's validation rows
        random_state=0,  # rank 0's initial weights; each rank's own shuffles
        n_threads=1,  # the ranks share this machine's cores
        communicator=comm,
        sync_every=args.sync_every,
    )
    model.fit(X_train[mine], y_train[mine])

    if rank == 0:
        print(
            f"{size} ranks, {model.n_iter_} epochs, loss {model.loss_:.4f}, "
            f"test accuracy {model.score(X_test, y_test):.4f}"
        )
        if args.save:
            with open(args.save, "wb") as f:
                pickle.dump(model, f)


if __name__ == "__main__":
    main()
