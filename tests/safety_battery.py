"""Cases that once drove the engine out of bounds, and a sweep of valid ones.

Run as a script (``python tests/safety_battery.py [--import-from DIR]
[--sweep N] [CASE ...]``) in a process of its own: a case that crashes kills
only that process, and the last ``RUNNING`` line names it. The last line is
``RESULTS {json}``: per case "ok" or the exception's type and message.
``tests/test_memory_safety.py`` runs it on the release build,
``tests/test_sanitizer.py`` on an AddressSanitizer build.

Every case must end in "ok" or a clear exception (ValueError, TypeError,
RuntimeError, MemoryError), never in a crash, a hang or a sanitizer report.
"""

import argparse
import json
import os
import pickle
import sys
import threading
import time
import warnings


def _cases(np, fastfit):
    from fastfit import MLPClassifier, MLPRegressor
    from fastfit.optimizers import SGD, Adam

    rng = np.random.RandomState(0)
    X = rng.randn(90, 4)
    y = np.arange(90) % 3
    yr = X @ rng.randn(4)

    def clf(**kw):
        return MLPClassifier(
            **{"hidden_layer_sizes": (4,), "max_iter": 2, "random_state": 0, **kw}
        )

    def reg(**kw):
        return MLPRegressor(
            **{"hidden_layer_sizes": (4,), "max_iter": 2, "random_state": 0, **kw}
        )

    def unsorted_classes(method):
        def run():
            est = clf(shuffle=False).fit(X, y)
            est.classes_ = np.array([2, 0, 1])
            if method == "partial_fit":
                est.partial_fit(X, y)
            elif method == "warm_start":
                est.set_params(warm_start=True).fit(X, y)
            else:
                est.predict(X)

        return run

    def fewer_classes():
        est = clf().fit(X, y)
        est.classes_ = np.array([0, 1])
        est.predict(X)

    def slim_adam():
        class SlimAdam(Adam):
            def _init_state(self, n, dt):
                return np.zeros((1, n), dt)

        clf(optimizer=SlimAdam()).fit(X, y)

    def short_hyper():
        class ShortAdam(Adam):
            def _hyper(self):
                return super()._hyper()[:2]

        clf(optimizer=ShortAdam()).fit(X, y)

    def sgd_claiming_adam():
        class Impostor(SGD):
            _kind = "adam"

        clf(optimizer=Impostor()).fit(X, y)

    def unknown_rule():
        class Unknown(SGD):
            _kind = "no-such-rule"

        clf(optimizer=Unknown()).fit(X, y)

    def race(fits_only, seconds=1.5):
        est = clf(max_iter=3).fit(X, y)
        X2 = rng.randn(70, 7)
        y2 = np.arange(70) % 2
        stop = time.time() + seconds
        seen, bad = set(), []

        def fitter(data, sizes):
            i = 0
            while time.time() < stop:
                try:
                    est.set_params(hidden_layer_sizes=sizes[i % len(sizes)])
                    est.fit(*data)
                except (RuntimeError, ValueError) as exc:
                    seen.add(type(exc).__name__)
                i += 1

        def predictor():
            while time.time() < stop:
                try:
                    p = est.predict_proba(X)
                    if p.shape != (90, 3) or not np.allclose(p.sum(1), 1, atol=1e-4):
                        bad.append(p.shape)
                except (RuntimeError, ValueError) as exc:
                    seen.add(type(exc).__name__)

        second = (
            threading.Thread(target=fitter, args=((X2, y2), [(16,)]))
            if fits_only
            else threading.Thread(target=predictor)
        )
        threads = [threading.Thread(target=fitter, args=((X, y), [(8,), (3, 5)]))]
        threads.append(second)
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        if any(t.is_alive() for t in threads):
            raise SystemExit("a thread hung")
        if bad:
            raise AssertionError(f"a prediction was not probabilities: {bad[:3]}")
        # consistent afterwards: the model of whichever fit ran last
        est.predict(X if est.n_features_in_ == X.shape[1] else X2)

    def fork_then_fit():
        clf(hidden_layer_sizes=(256,), n_threads=2, max_iter=1).fit(
            rng.randn(2000, 64), np.arange(2000) % 3
        )
        pid = os.fork()
        if pid == 0:
            try:
                clf(n_threads=None).fit(X, y).predict(X)
                os._exit(0)
            except BaseException:
                os._exit(3)
        deadline = time.time() + 60
        while time.time() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    raise AssertionError(f"the child failed: {status}")
                return
            time.sleep(0.01)
        os.kill(pid, 9)
        raise AssertionError("the forked child hung")

    def overflowing_row():
        r = np.random.RandomState(0)  # the data of tests/test_interruptions.py
        Xf = r.randn(300, 5).astype(np.float32)
        Xf[280] = 3e38  # finite, but its square is not: refused at validation
        try:
            MLPRegressor().fit(Xf, np.ones(300))
        except ValueError:
            pass
        else:
            raise AssertionError("a row beyond sqrt(float32 max) was accepted")
        # a valid row whose Poisson output overflows: the batch is named
        Xf[280] = 1e5
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = MLPRegressor(
                hidden_layer_sizes=(8,), loss="poisson", shuffle=False,
                batch_size=20, max_iter=3, random_state=2,
            ).fit(Xf, np.abs(r.randn(300)))  # fmt: skip
        if est.t_ != 0 or not any(
            "at batch 15 of 15" in str(w.message) for w in caught
        ):
            raise AssertionError("the truncated epoch was not reported")

    def pickled(est, **changes):
        state = est.__getstate__()
        state.update(changes)
        return pickle.loads(pickle.dumps(state))

    def tampered(**changes):
        def run():
            est = clf().fit(X, y)
            new = MLPClassifier()
            new.__setstate__(pickled(est, **changes))
            try:
                new.predict_proba(X)
            finally:
                new.partial_fit(X, y)

        return run

    def set_attr(name, value, then="predict", est_fn=None):
        def run():
            est = (est_fn or clf)().fit(X, y if est_fn is None else yr)
            setattr(est, name, value)
            if then == "predict":
                est.predict(X)
            else:
                est.partial_fit(X, y if est_fn is None else yr)

        return run

    def quantiles(change=None):
        # several quantiles of one target: one output each
        def run():
            est = reg(loss="quantile", quantile=(0.1, 0.5, 0.9)).fit(X, yr)
            if change is not None:
                change(est)
            est = pickle.loads(pickle.dumps(est))
            if est.predict(X).shape != (90, 3):
                raise AssertionError("not one column per quantile")
            est.partial_fit(X, yr)

        return run

    def loss_quantiles(values):
        def change(est):
            est._loss_fn = fastfit.losses.regressor_loss("quantile", quantile=0.5)
            est._loss_fn.param = values

        return change

    from fastfit._layout import Layout

    return {
        "classes-unsorted-partial_fit": unsorted_classes("partial_fit"),
        "classes-unsorted-warm_start": unsorted_classes("warm_start"),
        "classes-unsorted-predict": unsorted_classes("predict"),
        "classes-fewer-than-outputs": fewer_classes,
        "classes-2d": set_attr("classes_", np.zeros((3, 1))),
        "classes-list": set_attr("classes_", [0, 1, 2], "partial_fit"),
        "optimizer-state-too-small": slim_adam,
        "optimizer-hyper-too-short": short_hyper,
        "optimizer-sgd-claiming-adam": sgd_claiming_adam,
        "optimizer-unknown-rule": unknown_rule,
        "race-two-fits": lambda: race(True),
        "race-predict-during-refits": lambda: race(False),
        "fork-after-threaded-fit": fork_then_fit,
        "overflowing-row-named": overflowing_row,
        "partial_fit-batch_size-0": lambda: (
            clf().fit(X, y).set_params(batch_size=0).partial_fit(X, y)
        ),
        "hidden-2**63": lambda: clf(hidden_layer_sizes=(2**63,)).fit(X, y),
        "warm-start-dtype-changed": lambda: (
            clf(warm_start=True).fit(X, y).set_params(dtype=np.float64).fit(X, y)
        ),
        "out_activation-garbage": set_attr("out_activation_", "garbage"),
        "n_layers-changed": set_attr("n_layers_", 7),
        "n_outputs-changed": set_attr("n_outputs_", 1),
        "n_features_in-changed": set_attr("n_features_in_", 9),
        "layout-other-sizes": set_attr("_layout", Layout([4, 40, 3])),
        "layout-garbage": set_attr("_layout", "garbage"),
        "loss-garbage": set_attr("_loss_fn", None),
        "activation-garbage": set_attr("_activation", "swish?"),
        "fit_dtype-garbage": set_attr("_fit_dtype", np.int8),
        "params-too-short": set_attr("_params", np.zeros(3)),
        "coefs-tuple-of-wrong": set_attr("coefs_", (np.zeros((4, 4)),)),
        "optimizer-state-wrong-shape": set_attr(
            "_optimizer_state", np.zeros((3, 5)), "partial_fit"
        ),
        "optimizer-state-wrong-dtype": set_attr(
            "_optimizer_state", np.zeros((3, 35)), "partial_fit"
        ),
        "optimizer-state-None": set_attr("_optimizer_state", None, "partial_fit"),
        "opt-steps-negative": set_attr("_opt_steps", -5, "partial_fit"),
        "schedule-runner-garbage": set_attr("_schedule_runner", 1.0, "partial_fit"),
        "stopping-rule-garbage": set_attr("_early_stopping_rule", 0, "partial_fit"),
        "regressor-n_outputs-changed": set_attr("n_outputs_", 3, est_fn=reg),
        "pickle-classes-unsorted": tampered(classes_=np.array([1, 2, 0])),
        "pickle-coefs-shape": tampered(coefs_=[np.zeros((4, 9)), np.zeros((9, 3))]),
        "pickle-layout-sizes": tampered(_layout=Layout([4, 4, 30])),
        "pickle-y_type": tampered(_y_type="binary"),
        "pickle-optimizer-state": tampered(_optimizer_state=np.zeros((3, 2))),
        "pickle-intact": tampered(),
        "quantiles-intact": quantiles(),
        "quantiles-fewer-than-outputs": quantiles(loss_quantiles((0.1, 0.9))),
        "quantiles-more-than-outputs": quantiles(loss_quantiles((0.1, 0.2, 0.3, 0.4))),
        "quantiles-out-of-range": quantiles(loss_quantiles((0.1, 1.5, 0.9))),
        "quantiles-garbage": quantiles(loss_quantiles("garbage")),
        "quantiles-n_outputs-changed": quantiles(lambda e: setattr(e, "n_outputs_", 1)),
        "dropout-seed-garbage": set_attr("_dropout_seed", -1, "partial_fit"),
        "weight-average-garbage": set_attr("_weight_average", 3, "partial_fit"),
        "activation-tuple-short": set_attr("_activation", ()),
        "toolbox-intact": lambda: (
            pickle.loads(
                pickle.dumps(
                    clf(
                        activation="mish", dropout=0.3, ema_decay=0.9, shuffle=False
                    ).fit(X, y)
                )
            )
            .partial_fit(X, y)
            .predict(X)
        ),
        "quantiles-several-targets": lambda: reg(
            loss="quantile", quantile=(0.1, 0.9)
        ).fit(X, np.c_[yr, yr]),
    }


def _sweep(np, n_configs, seed=0):
    """Random valid configurations: fit, predict, partial_fit, pickle."""
    import scipy.sparse as sp

    from fastfit import MLPClassifier, MLPRegressor
    from fastfit._engine import ACTIVATIONS
    from fastfit.optimizers import OPTIMIZER_NAMES
    from fastfit.schedules import SCHEDULE_NAMES

    rng = np.random.RandomState(seed)
    cases = {}
    for k in range(n_configs):
        params = dict(
            hidden_layer_sizes=tuple(
                int(w) for w in rng.choice([1, 3, 16, 33, 64], rng.randint(0, 4))
            ),
            activation=str(rng.choice(sorted(ACTIVATIONS))),
            dropout=float(rng.choice([0.0, 0.0, 0.2, 0.5])),
            optimizer=str(rng.choice(list(OPTIMIZER_NAMES))),
            schedule=str(rng.choice(list(SCHEDULE_NAMES))),
            batch_size=int(rng.choice([1, 7, 32, 64, 200])),
            alpha=float(rng.choice([0.0, 1e-4, 1e-2])),
            penalty=str(rng.choice(["l2", "l1", "elasticnet"])),
            clip_norm=rng.choice([None, 1.0]),
            shuffle=bool(rng.randint(2)),
            early_stopping=bool(rng.randint(2)),
            dtype=rng.choice([np.float32, np.float64]),
            n_threads=int(rng.choice([1, 2])),
            max_iter=3,
            random_state=k,
        )
        averaging = int(rng.randint(4))
        if averaging == 1:
            params["ema_decay"] = 0.9
        elif averaging == 2:
            params["swa_start"] = 2
        n, d = int(rng.randint(20, 300)), int(rng.randint(1, 40))
        classify = bool(rng.randint(2))
        sparse = bool(rng.randint(4) == 0)
        weights = bool(rng.randint(3) == 0)

        def run(params=params, n=n, d=d, classify=classify, sparse=sparse,
                weights=weights, k=k):  # fmt: skip
            r = np.random.RandomState(k)
            X = r.randn(n, d)
            if sparse:
                X = sp.random(n, d, density=0.3, format="csr", random_state=r)
            Est = MLPClassifier if classify else MLPRegressor
            y = r.randint(0, 3, n) if classify else r.randn(n)
            sw = r.uniform(0.1, 2.0, n) if weights else None
            est = Est(**params).fit(X, y, sample_weight=sw)
            est.predict(X)
            est = pickle.loads(pickle.dumps(est))
            if not est.early_stopping:
                est.partial_fit(X, y)
            est.predict(X[:5])

        cases[f"sweep-{k}"] = run
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--import-from", default=None)
    parser.add_argument("--sweep", type=int, default=0)
    parser.add_argument("only", nargs="*")
    args = parser.parse_args(argv)
    if args.import_from:
        sys.path.insert(0, args.import_from)
    import numpy as np

    import fastfit

    if args.import_from and not fastfit.__file__.startswith(args.import_from):
        raise SystemExit(f"imported {fastfit.__file__}, not {args.import_from}")
    warnings.simplefilter("ignore")
    cases = {**_cases(np, fastfit), **_sweep(np, args.sweep)}
    results = {}
    for name, case in cases.items():
        if args.only and name not in args.only:
            continue
        print("RUNNING " + name, flush=True)
        try:
            case()
            results[name] = "ok"
        except BaseException as exc:  # noqa: BLE001 - report everything
            results[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    print("RESULTS " + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
