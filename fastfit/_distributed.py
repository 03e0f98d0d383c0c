"""Data-parallel training over MPI: the collectives of one fit.

The estimators take an mpi4py communicator (``communicator=MPI.COMM_WORLD``).
The same script runs on every process (SPMD, as Horovod or PyTorch's
DistributedDataParallel), each fitting on its own shard of the rows. Per step
every process computes the gradient of its share of the global batch (its
``batch_size`` rows); the engine's gradient hook (``Trainer.set_reducer``)
calls :class:`GradientReducer`, which sums the gradients (weighted by the
shares' weight sums), the weight sums, the losses and a flag for a loss that is
not finite in one allreduce, so every process applies the same update: the
replicas stay bit-identical. With ``sync_every=K`` (local SGD, PyTorch's
``PeriodicModelAverager``) the processes step on their own and the parameters
are averaged every K steps instead.

mpi4py is imported only when a communicator is given: fastfit runs without it.

The rule every function here keeps: every process makes the same collective
calls in the same order, whatever its data. Decisions (skip a batch, stop an
epoch, roll back a diverged one, stop early) are taken from reduced values
only. An error that one process meets before training (bad input) is raised
on every process (:meth:`Collective.agree`); an error inside a collective
(an MPI failure, Ctrl-C on one process) aborts the job, as MPI's default
error handler does: the other processes could not leave the collective.
"""

import sys
import traceback

import numpy as np

COMMUNICATOR_METHODS = ["Allreduce", "Bcast", "Get_rank", "Get_size", "allgather"]


def _mpi():
    from mpi4py import MPI

    return MPI


def _abort(comm, what):
    """Print the exception being handled and abort every process of ``comm``."""
    traceback.print_exc()
    print(
        f"fastfit: {what} failed on rank {comm.Get_rank()}; aborting the job "
        "(the other processes cannot leave the collective)",
        file=sys.stderr,
        flush=True,
    )
    comm.Abort(1)


class Collective:
    """The communicator of one fit and the collective calls the fit makes.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
    """

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def agree(self, fn):
        """``fn()`` on every process; if it raised on any, raise on all.

        The process that failed raises its own exception; the others a
        ValueError naming the first failing rank and its message. One
        allgather, so it must be reached by every process (it is never
        called inside a collective).
        """
        try:
            result, error = fn(), None
        except Exception as exc:  # re-raised below, on every process
            result, error = None, exc
        messages = self.comm.allgather(
            None if error is None else f"{type(error).__name__}: {error}"
        )
        if error is not None:
            raise error
        for rank, message in enumerate(messages):
            if message is not None:
                raise ValueError(f"data-parallel fit failed on rank {rank}: {message}")
        return result

    def allgather(self, value):
        return self.comm.allgather(value)

    def bcast(self, value):
        """Rank 0's ``value`` (a picklable object) on every process."""
        return self.comm.bcast(value, root=0)

    def bcast_array(self, array):
        """Rank 0's values into ``array`` (in place) on every process."""
        self.comm.Bcast(array, root=0)

    def sum(self, values):
        """The sum over processes of a float64 vector, on every process."""
        out = np.array(values, dtype=np.float64)
        self.comm.Allreduce(_mpi().IN_PLACE, out, op=_mpi().SUM)
        return out

    def all(self, flag):
        """Whether ``flag`` holds on every process."""
        return bool(self.sum([0.0 if flag else 1.0])[0] == 0)

    def average(self, array):
        """Replace ``array`` (in place) by its mean over the processes."""
        self.comm.Allreduce(_mpi().IN_PLACE, array, op=_mpi().SUM)
        array *= array.dtype.type(1.0 / self.size)


class GradientReducer:
    """The engine's gradient hook for one Trainer (``Trainer.set_reducer``):
    sums ``trainer.reduce_buffer`` over the processes.

    Blocking: one in-place ``Allreduce`` of the whole buffer (gradient and
    tail) when the engine says it is complete. Overlapped (``overlap=True``):
    a non-blocking ``Iallreduce`` of each layer's weight and bias gradients
    as soon as the engine says they are final, then of the tail, waited
    before the update; between layers the requests are tested, which lets an
    MPI library that progresses only inside MPI calls move them on.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
    trainer : fastfit._engine.Trainer
    overlap : bool
    """

    def __init__(self, comm, trainer, overlap=False):
        MPI = _mpi()
        self.comm, self.overlap = comm, overlap
        self.in_place, self.op = MPI.IN_PLACE, MPI.SUM
        self.buffer = trainer.reduce_buffer
        net = trainer.network
        n_params = net.n_params
        self.tail = self.buffer[n_params:]
        self.layers = []
        for l in range(net.n_layers):
            w0, b0 = int(net.w_off[l]), int(net.b_off[l])
            fan_in, fan_out = int(net.sizes[l]), int(net.sizes[l + 1])
            self.layers.append(
                (
                    self.buffer[w0 : w0 + fan_in * fan_out],
                    self.buffer[b0 : b0 + fan_out],
                )
            )
        self.requests = []
        self.waitall, self.testall = MPI.Request.Waitall, MPI.Request.Testall

    def __call__(self, layer):
        try:
            if layer >= 0:
                weights, biases = self.layers[layer]
                self.requests.append(
                    self.comm.Iallreduce(self.in_place, weights, op=self.op)
                )
                self.requests.append(
                    self.comm.Iallreduce(self.in_place, biases, op=self.op)
                )
                self.testall(self.requests)
            elif self.overlap:
                self.requests.append(
                    self.comm.Iallreduce(self.in_place, self.tail, op=self.op)
                )
                self.waitall(self.requests)
                self.requests.clear()
            else:
                self.comm.Allreduce(self.in_place, self.buffer, op=self.op)
        except BaseException:
            _abort(self.comm, "the gradient allreduce")
            raise


def rank_random_state(random_state, rank):
    """The RandomState of one process's shuffles and validation split: drawn
    from the fit's ``random_state`` and the rank, so reproducible and
    different on every process."""
    seed = int(random_state.randint(0, 2**31 - 1))
    return np.random.RandomState([seed, rank])


class DataParallelPlan:
    """What the processes of one data-parallel fit agreed on, and the mode of
    its steps.

    Parameters
    ----------
    collective : Collective
    epoch_batches : int
        Batches per epoch on every process (the most any process has).
    row_offset : int
        This process's first row within the whole batch (the rows of the lower
        ranks' shares come first): the dropout masks of its rows.
    sync_every : int or None
        None: synchronous steps (one gradient allreduce per step). K: local
        SGD, the parameters averaged every K steps and at the end of every
        epoch.
    sync_warmup : int
        Synchronous steps before local SGD starts (post-local SGD), counted
        over the whole fit.
    overlap : bool
        Reduce each layer's gradient as soon as it is final
        (:class:`GradientReducer`).
    """

    def __init__(self, collective, epoch_batches, row_offset, sync_every,
                 sync_warmup, overlap):  # fmt: skip
        self.collective = collective
        self.epoch_batches = epoch_batches
        self.row_offset = row_offset
        self.sync_every = sync_every
        self.sync_warmup = sync_warmup
        self.overlap = overlap
        self.trainer = self.reducer = None
        self.synchronous = None

    def attach(self, trainer, alpha):
        """Use ``trainer`` for the fit's steps, synchronous ones first."""
        self.trainer = trainer
        self.reducer = GradientReducer(self.collective.comm, trainer, self.overlap)
        self.use(True)

    def use(self, synchronous):
        """Switch the Trainer's steps to synchronous (a gradient allreduce per
        step) or local ones (local SGD: each process steps on its own share,
        its penalty that of a whole batch, ``size`` shares)."""
        if synchronous == self.synchronous:
            return
        self.synchronous = synchronous
        trainer = self.trainer
        if synchronous:
            trainer.set_reducer(
                self.reducer, self.row_offset, self.epoch_batches, self.overlap
            )
            trainer.scale_penalty(1.0)
        else:
            trainer.set_reducer(None, 0, self.epoch_batches)
            trainer.scale_penalty(1.0 / self.collective.size)

    def local_range(self, step):
        """For the fit's batch number ``step`` (over all epochs): None if it
        is a synchronous step, else the number of steps to its next
        averaging (``sync_every`` periods start after the warm-up)."""
        if self.sync_every is None or step < self.sync_warmup:
            return None
        return self.sync_every - (step - self.sync_warmup) % self.sync_every
