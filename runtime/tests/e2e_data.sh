#!/usr/bin/env bash
# e2e_data.sh — the data loaders end to end: every format trains (equal data, bit-identical weights), and every
# bad data file is one line naming it (exit 1).
# usage: e2e_data.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# ----------------------------------------------------------------------------
# loaders: every format trains, and equal data gives bit-identical weights

T="--epochs 2 --batch 4 --quiet"
for pair in "x.npy y.npy" "x64.npy y32.npy" "x3d.npy y2d.npy" "x.csv y.csv" "x_nohdr.csv yu8.npy" \
            "xu8.npy y.npy" "x.idx y.idx" "x.idx.gz y.idx.gz"; do
    set -- $pair
    expect "load-$1-$2" 0 "epoch 2/2  train_loss" $TOY train --train-x $D/$1 --train-y $D/$2 $T --save "w_$1_$2.st"
done
check same-f32-f64 'cmp -s w_x.npy_y.npy.st w_x64.npy_y32.npy.st'
check same-f32-csv 'cmp -s w_x.npy_y.npy.st w_x.csv_y.csv.st'
check same-csv-nohdr 'cmp -s w_x.csv_y.csv.st w_x_nohdr.csv_yu8.npy.st'
check same-3d 'cmp -s w_x.npy_y.npy.st w_x3d.npy_y2d.npy.st'
check same-u8-idx 'cmp -s w_xu8.npy_y.npy.st w_x.idx_y.idx.st'
check same-idx-gz 'cmp -s w_x.idx_y.idx.st w_x.idx.gz_y.idx.gz.st'
check u8-differs '! cmp -s w_x.npy_y.npy.st w_xu8.npy_y.npy.st'
expect mnist-dir 0 "test_acc" $MNIST train --data $D/mnist --epochs 1 --quiet --report-test --save mn.st
expect dense-train 0 "test_loss" $DENSE train --train-x $D/x.npy --train-y $D/t.npy --test-x $D/x.npy --test-y $D/t.npy --quiet
check dense-no-acc '! $DENSE train --train-x $D/x.npy --train-y $D/t.npy --test-x $D/x.npy --test-y $D/t.npy --quiet | grep -q test_acc'

# ----------------------------------------------------------------------------
# bad data files (exit 1, the file named)

tx() { $TOY train --train-x "$1" --train-y "$2" --quiet; }
expect missing-file 1 "nope.npy: No such file or directory" tx $D/nope.npy $D/y.npy
expect npy-shape 1 "x_shape.npy: expected 5 features per sample, got shape (10, 4)" tx $D/x_shape.npy $D/y.npy
expect npy-fortran 1 "x_fortran.npy: fortran_order arrays are not supported" tx $D/x_fortran.npy $D/y.npy
expect npy-big-endian 1 "x_be.npy: big-endian dtype '>f4' is not supported" tx $D/x_be.npy $D/y.npy
expect npy-int-features 1 "x_i32.npy: expected float32, float64 or uint8 features, got int32" tx $D/x_i32.npy $D/y.npy
expect npy-dtype 1 "x_c8.npy: unsupported dtype '<c8'" tx $D/x_c8.npy $D/y.npy
expect npy-truncated 1 "x_trunc.npy: truncated file" tx $D/x_trunc.npy $D/y.npy
expect idx-truncated 1 "x_trunc.idx: truncated file" tx $D/x_trunc.idx $D/y.npy
expect float-labels 1 "y_float.npy: expected integer class labels" tx $D/x.npy $D/y_float.npy
expect count-mismatch 1 "has 10 samples but" tx $D/x.npy $D/y_short.npy
expect label-range 1 "y_range.npy: label 12 at index 5 is outside [0, 3)" tx $D/x.npy $D/y_range.npy
expect empty-file 1 "empty.npy: empty file" tx $D/empty.npy $D/y.npy
expect unknown-format 1 "garbage.bin: unrecognised format" tx $D/garbage.bin $D/y.npy
expect csv-ragged 1 "y_ragged.csv:7: expected 1 column, got 3" tx $D/x.npy $D/y_ragged.csv
expect csv-fraction 1 "y_frac.csv:3: expected an integer label, got '1.5'" tx $D/x.npy $D/y_frac.csv
expect csv-text 1 "x_text.csv:2: column 3: expected a number, got 'abc'" tx $D/x_text.csv $D/y.csv
expect idx-magic 1 "train-images-idx3-ubyte: not an IDX image file (magic 2049, expected 2051)" $MNIST train --data $D/mnist_bad
mkdir -p empty_dir
expect mnist-missing 1 "no train-images-idx3-ubyte or train-images-idx3-ubyte.gz" $MNIST train --data empty_dir
expect mnist-no-dir 1 "--data $D/nowhere: the directory does not exist" $MNIST train --data $D/nowhere
expect mnist-no-dir-eval 1 "--data $D/nowhere: the directory does not exist" $MNIST eval --weights mn.st --data $D/nowhere
# The two splits load at once (the test set on the worker thread); a bad test set is still one line, exit 1.
expect idx-magic-test 1 "t10k-images-idx3-ubyte: not an IDX image file (magic 2049, expected 2051)" $MNIST train --data $D/mnist_badtest --report-test
expect idx-magic-test-1thread 1 "t10k-images-idx3-ubyte: not an IDX image file (magic 2049, expected 2051)" $MNIST train --data $D/mnist_badtest --report-test --threads 1
# without --report-test, train does not read the test split of --data at all (the epoch line reports validation)
expect test-split-unread 0 "val_acc" $MNIST train --data $D/mnist_badtest --epochs 1 --quiet
expect mnist-dims-1thread 1 "expected 5 features per sample, got shape (20, 28, 28)" $TOY train --data $D/mnist --threads 1
expect mnist-dims 1 "expected 5 features per sample, got shape (20, 28, 28)" $TOY train --data $D/mnist
expect test-file-bad 1 "x_shape.npy: expected 5 features" $TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x_shape.npy --test-y $D/y.npy

finish e2e-data
