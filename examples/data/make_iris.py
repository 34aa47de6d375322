"""Writes the Iris-like CSV data set of examples/iris.swiftnn (committed; rerun to regenerate): 4 measurements in cm
and a species name per row, with a header, as people have CSV files. Synthetic: each species is drawn from a normal
distribution per feature with the means and standard deviations of Fisher's Iris data (rounded to 0.1 cm, clipped
at 0.1), 50 rows per species for training and 15 for testing, rows shuffled."""
import numpy as np, os
here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(7)
species = {  # mean and std of sepal length, sepal width, petal length, petal width
    "setosa": ([5.01, 3.43, 1.46, 0.25], [0.35, 0.38, 0.17, 0.11]),
    "versicolor": ([5.94, 2.77, 4.26, 1.33], [0.52, 0.31, 0.47, 0.20]),
    "virginica": ([6.59, 2.97, 5.55, 2.03], [0.64, 0.32, 0.55, 0.27]),
}
header = "sepal_length,sepal_width,petal_length,petal_width,species"
for name, per in [("iris", 50), ("iris_test", 15)]:
    rows = []
    for s, (mean, std) in species.items():
        x = np.clip(np.round(rng.normal(mean, std, size=(per, 4)), 1), 0.1, None)
        rows += [",".join(f"{v:.1f}" for v in r) + "," + s for r in x]
    rng.shuffle(rows)
    with open(os.path.join(here, name + ".csv"), "w") as f:
        f.write(header + "\n" + "\n".join(rows) + "\n")
