#!/usr/bin/env bash
# e2e_cli.sh — the trainer's command line (help, every usage error, exit 2) and its environment
# (OpenBLAS's core and threads, NNRT_GEMM), on the toy trainers built from toy_model.c.
# usage: e2e_cli.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# ----------------------------------------------------------------------------
# help and command-line errors (exit 2)

expect help-main 0 "--weight-decay X" $TOY --help
expect help-main-env 0 "NNRT_GEMM            blas (OpenBLAS), nnrt (the best kernels this CPU runs), avx512 or avx2" $TOY --help
expect help-train 0 "--lr X               learning rate (default 0.1)" $TOY train --help
expect help-train-batch 0 "(default 4, at most 8)" $TOY train --help
expect help-gradcheck 0 "max(|analytic|, |numerical|, floor)" $TOY gradcheck --help
expect help-eval 0 "--weights W" $TOY eval -h
expect no-args 2 "usage: toy <command>" $TOY
expect unknown-cmd 2 "error: unknown command 'fit'" $TOY fit
expect unknown-flag 2 "error: unknown flag '--lrr' for 'train'" $TOY train --data . --lrr 3
expect unknown-flag-hint 2 "did you mean '--lr'?" $TOY train --data . --lrr 3
expect underscore-hparam 2 "did you mean '--weight-decay'?" $TOY train --data . --weight_decay 3
expect bad-int 2 "error: --batch: expected a positive integer, got 'abc'" $TOY train --data . --batch abc
expect bad-int-eq 2 "error: --batch: expected a positive integer, got '0'" $TOY train --data . --batch=0
expect bad-epochs 2 "--epochs: expected a positive integer, got '-1'" $TOY train --data . --epochs -1
expect bad-float 2 "error: --lr: expected a number, got '1e'" $TOY train --data . --lr 1e
expect bad-seed 2 "--seed: expected a non-negative integer" $TOY train --data . --seed -3
expect bad-tol 2 "--tol: expected a positive number" $TOY gradcheck --tol 0
expect missing-value 2 "error: --epochs: missing value" $TOY train --data . --epochs
expect missing-value-flag 2 "error: --save: missing value" $TOY train --data . --save --quiet
expect bool-value 2 "--no-shuffle takes no value" $TOY train --data . --no-shuffle=1
expect positional 2 "unexpected argument 'extra'" $TOY train --data . extra
expect batch-max 2 "maximum batch of 8" $TOY train --data . --batch 9
expect flag-wrong-cmd 2 "flag '--save' does not apply to 'eval'" $TOY eval --weights w --data . --save x
expect hparam-wrong-cmd 2 "'--lr' is a hyperparameter of 'train'" $TOY eval --weights w --data . --lr 1
expect train-no-data 2 "train: needs --data DIR, --train-x F --train-y F, or --train-x F.csv --label-column C" $TOY train
expect data-and-x 2 "not both" $TOY train --data . --train-x a --train-y b
expect x-without-y 2 "--train-x and --train-y go together" $TOY train --train-x a
expect eval-no-weights 2 "eval: needs --weights W" $TOY eval --data .
expect predict-no-output 2 "predict: needs --input X and --output Y" $TOY predict --weights w --input x

# The weights eval reads below (as e2e_predict.sh trains them).
$TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --quiet --save a.st >/dev/null

# ----------------------------------------------------------------------------
# BLAS setup: the core is chosen from the CPU's features before OpenBLAS loads, unless the user chose

V="--train-x $D/x.npy --train-y $D/y.npy --epochs 1 --quiet --verbose"
if grep -q avx512bw /proc/cpuinfo; then want=SkylakeX
elif grep -q avx2 /proc/cpuinfo && grep -q AuthenticAMD /proc/cpuinfo; then want=Zen
elif grep -q avx2 /proc/cpuinfo; then want=Haswell; else want=; fi
if [ -n "$want" ]; then
    expect blas-auto 0 "core $want (OPENBLAS_CORETYPE=$want, chosen from CPU features" env -u OPENBLAS_CORETYPE -u OPENBLAS_NUM_THREADS $TOY train $V
    # Empty counts as unset (a shell's way of clearing it); OpenBLAS itself would take "" as an unknown core.
    expect blas-empty-core 0 "core $want (OPENBLAS_CORETYPE=$want, chosen from CPU features" env OPENBLAS_CORETYPE= OPENBLAS_NUM_THREADS= $TOY train $V
fi
expect blas-one-thread 0 "), 1 thread" env -u OPENBLAS_CORETYPE -u OPENBLAS_NUM_THREADS $TOY train $V
expect blas-empty-threads 0 "), 1 thread" env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS= $TOY train $V
expect blas-user-core 0 "core Haswell (OPENBLAS_CORETYPE=Haswell, set by the user)" env OPENBLAS_CORETYPE=Haswell $TOY train $V
expect blas-user-threads 0 "2 threads" env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS=2 $TOY train $V
expect blas-eval-verbose 0 "blas: OpenBLAS" $TOY eval --weights a.st --test-x $D/x.npy --test-y $D/y.npy --verbose
# The GEMM: nnrt's AVX-512 kernels where the CPU has them, else its AVX2 ones, else OpenBLAS; NNRT_GEMM chooses,
# and a value the CPU cannot run, or a bad one, stops the trainer with exit 2.
has() { grep -qw "$1" /proc/cpuinfo; }
if has avx512f && has avx512vl && has avx512dq; then
    expect gemm-own 0 "gemm: nnrt's AVX-512 kernels" $TOY train $V
    expect gemm-nnrt 0 "gemm: nnrt's AVX-512 kernels" env NNRT_GEMM=nnrt $TOY train $V
    expect gemm-avx512 0 "gemm: nnrt's AVX-512 kernels" env NNRT_GEMM=avx512 $TOY train $V
else
    expect gemm-no-avx512 2 "NNRT_GEMM=avx512: this CPU lacks AVX-512" env NNRT_GEMM=avx512 $TOY train $V
    if has avx2 && has fma; then
        expect gemm-own 0 "gemm: nnrt's AVX2 kernels" $TOY train $V
        expect gemm-nnrt 0 "gemm: nnrt's AVX2 kernels" env NNRT_GEMM=nnrt $TOY train $V
    fi
fi
if has avx2 && has fma; then
    expect gemm-avx2 0 "gemm: nnrt's AVX2 kernels" env NNRT_GEMM=avx2 $TOY train $V
else
    expect gemm-nnrt-none 2 "NNRT_GEMM=nnrt: this CPU has neither" env NNRT_GEMM=nnrt $TOY train $V
fi
expect gemm-blas 0 "gemm: OpenBLAS cblas_sgemm" env NNRT_GEMM=blas $TOY train $V
expect gemm-bad-env 2 "NNRT_GEMM=openblas: expected blas (OpenBLAS), nnrt (the best kernels this CPU runs), avx512 or avx2" env NNRT_GEMM=openblas $TOY train $V

finish e2e-cli
