"""Command line: ``python -m fastfit demo``."""

import argparse
import sys
import time
import warnings


def demo(args):
    """Train on scikit-learn's digits beside scikit-learn's MLPClassifier."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.preprocessing import StandardScaler

    from fastfit import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    settings = dict(
        hidden_layer_sizes=(100,),
        alpha=1e-4,
        batch_size=200,
        learning_rate_init=1e-3,
        max_iter=args.epochs,
        tol=1e-4,
        n_iter_no_change=10,
        random_state=args.seed,
    )
    print(
        f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test rows, "
        f"{X.shape[1]} features, 10 classes; MLP 64-100-10 relu, Adam, "
        f"batch 200, up to {args.epochs} epochs\n"
    )

    def timed_fit(est):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            est.fit(X_train, y_train)
            return time.perf_counter() - start, est.score(X_test, y_test)

    print("fastfit.MLPClassifier (float32)")
    ff = MLPClassifier(**settings, optimizer="adam", dtype=np.float32, verbose=True)
    ff_time, ff_acc = timed_fit(ff)

    print("\nsklearn.neural_network.MLPClassifier (float64)")
    sk = SkMLP(**settings, solver="adam")
    sk_time, sk_acc = timed_fit(sk)

    print()
    print(f"{'':<14}{'test accuracy':>15}{'epochs':>8}{'fit time':>11}")
    print(f"{'fastfit':<14}{ff_acc:>15.4f}{ff.n_iter_:>8}{ff_time:>10.3f}s")
    print(f"{'scikit-learn':<14}{sk_acc:>15.4f}{sk.n_iter_:>8}{sk_time:>10.3f}s")
    print(
        "\nfastfit time per epoch is "
        f"{sk_time / sk.n_iter_ / (ff_time / ff.n_iter_):.1f}x "
        "smaller than scikit-learn's."
    )
    return 0 if ff_acc >= 0.95 else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastfit")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train on digits beside scikit-learn")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
