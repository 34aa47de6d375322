#!/usr/bin/env bash
# e2e.sh — drives the toy trainers (built from toy_model.c) through the trainer's command line.
# usage: e2e.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR)
# Prints "ok   <name>" or "FAIL <name>: <why>" per test and finally "e2e: P passed, F failed".
set -u
BIN=$1 D=$2 W=$3
TOY=$BIN/toy WRONG=$BIN/toy_wrong DENSE=$BIN/toy_dense MNIST=$BIN/toy_mnist DROP=$BIN/toy_dropout
pass=0 fail=0
mkdir -p "$W"
cd "$W" || exit 1

. "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"

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
expect mnist-dir 0 "test_acc" $MNIST train --data $D/mnist --epochs 1 --quiet --save mn.st
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
expect idx-magic-test 1 "t10k-images-idx3-ubyte: not an IDX image file (magic 2049, expected 2051)" $MNIST train --data $D/mnist_badtest
expect idx-magic-test-1thread 1 "t10k-images-idx3-ubyte: not an IDX image file (magic 2049, expected 2051)" $MNIST train --data $D/mnist_badtest --threads 1
expect mnist-dims-1thread 1 "expected 5 features per sample, got shape (20, 28, 28)" $TOY train --data $D/mnist --threads 1
expect mnist-dims 1 "expected 5 features per sample, got shape (20, 28, 28)" $TOY train --data $D/mnist
expect test-file-bad 1 "x_shape.npy: expected 5 features" $TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x_shape.npy --test-y $D/y.npy

# ----------------------------------------------------------------------------
# the training loop: order, partial last batch, shuffling, logging

rm -f trace1 trace2 trace3 trace4
TOY_TRACE=trace1 $TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 2 --batch 4 --no-shuffle --quiet \
    --log m1.jsonl --log-every 1 --save seen.st >/dev/null
check noshuffle-steps '[ "$(wc -l <trace1)" -eq 6 ]'
check noshuffle-order '[ "$(cut -d" " -f1-13 trace1 | head -3 | tr "\n" "|")" = "step 1 epoch 0 spe 3 n 4 x0 0 1 2 3|step 2 epoch 0 spe 3 n 4 x0 4 5 6 7|step 3 epoch 0 spe 3 n 2 x0 8 9|" ]'
check epoch-two '[ "$(sed -n 4p trace1)" = "step 4 epoch 1 spe 3 n 4 x0 0 1 2 3" ]'
check partial-batch-trained '[ "$(tail -c 4 seen.st | od -An -tf4 | tr -d " ")" = "20" ]'
check jsonl-lines '[ "$(wc -l <m1.jsonl)" -eq 8 ]'
check jsonl-step '[ "$(head -1 m1.jsonl | sed "s/\"loss\":[^,]*/L/")" = "{\"step\":1,\"epoch\":1,L,\"lr\":0.1}" ]'
check jsonl-epoch 'grep -q "^{\"epoch\":2,\"train_loss\":[0-9.e+-]*,\"seconds\":[0-9.e+-]*}$" m1.jsonl'
# train_loss is the sample-weighted mean of the epoch's batch losses (4, 4 and 2 samples)
check train-loss-weighted 'awk -F"[:,}]" "/\"step\"/ && \$4 == 1 { s += (NR == 3 ? 2 : 4) * \$6 } /\"train_loss\"/ && \$2 == 1 { t = \$4 } END { d = s / 10 - t; exit !(d < 1e-6 && d > -1e-6) }" m1.jsonl'
TOY_TRACE=trace2 $TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 2 --batch 4 --seed 7 --quiet >/dev/null
TOY_TRACE=trace3 $TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 2 --batch 4 --seed 7 --quiet >/dev/null
TOY_TRACE=trace4 $TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 2 --batch 4 --seed 8 --quiet >/dev/null
check shuffle-deterministic 'cmp -s trace2 trace3'
check shuffle-seed-matters '! cmp -s trace2 trace4'
check shuffle-epochs-differ '[ "$(head -1 trace2 | cut -d" " -f10-)" != "$(sed -n 4p trace2 | cut -d" " -f10-)" ]'
check shuffle-permutation '[ "$(head -3 trace2 | cut -d" " -f10- | tr " " "\n" | sort -n | tr "\n" " ")" = "0 1 2 3 4 5 6 7 8 9 " ]'
$TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --epochs 3 --quiet --log m2.jsonl --log-every 2 --lr 0.25 >out2
check jsonl-every-k '[ "$(grep -c "\"step\"" m2.jsonl)" -eq 4 ] && grep -q "^{\"step\":8,\"epoch\":3," m2.jsonl'
check jsonl-lr-override 'grep -q "\"lr\":0.25}" m2.jsonl'
check jsonl-test 'grep -q "^{\"epoch\":3,\"train_loss\":[0-9.e+-]*,\"test_loss\":[0-9.e+-]*,\"test_acc\":[0-9.e+-]*,\"seconds\":" m2.jsonl'
check summary-line 'grep -qE "^epoch 3/3  train_loss [0-9.]+  test_loss [0-9.]+  test_acc [0-9.]+  [0-9.]+s$" out2'
$TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 1 >out3 2>err3
check no-bar-without-tty '[ ! -s err3 ]'
check hparams-change-result '$TOY train --train-x $D/x.npy --train-y $D/y.npy --quiet --momentum 0.9 --weight-decay=0.01 --save hp.st >/dev/null && ! cmp -s hp.st w_x.npy_y.npy.st'

# ----------------------------------------------------------------------------
# weights: atomic save, strict loading, eval, predict

$TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --quiet --save a.st >outa
check eval-matches-train '[ "$($TOY eval --weights a.st --test-x $D/x.npy --test-y $D/y.npy)" = "$(grep "^epoch 2/2" outa | sed "s/.*  test_loss/test_loss/; s/  [0-9.]*s$//")" ]'
$TOY train --train-x $D/x.npy --train-y $D/y.npy --quiet --init a.st --epochs 1 --lr 0 --save b.st >/dev/null
# (--epochs 0 is refused: one epoch at --lr 0 keeps the weights; only the I64 counter "seen", the last 8 bytes, moves on)
same_but_counter() { cmp -s -n $(($(stat -c %s "$1") - 8)) "$1" "$2" && [ "$(stat -c %s "$1")" = "$(stat -c %s "$2")" ] && ! cmp -s "$1" "$2"; }
check init-roundtrip 'same_but_counter a.st b.st'
check safetensors-header 'head -c 400 a.st | tail -c +9 | grep -q "^{\"__metadata__\":{\"format\":\"pt\",\"input.scale\":\"auto\",\"input.normalize\":\"none\",\"input.max\":\"[0-9.e+-]*\"},\"weight\":{\"dtype\":\"F32\",\"shape\":\[3,5\],\"data_offsets\":\[0,60\]},\"bias\""'
check safetensors-aligned '[ $(( $(od -An -tu8 -N8 a.st) % 8 )) -eq 0 ]'
expect save-bad-dir 1 "nodir/w.st: cannot create a file in that directory" $TOY train --train-x $D/x.npy --train-y $D/y.npy --save nodir/w.st
echo old >keep.st
expect save-fails-late 1 "x_shape.npy" $TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x_shape.npy --test-y $D/y.npy --save keep.st
check save-keeps-old '[ "$(cat keep.st)" = old ] && [ -z "$(ls -a | grep tmp)" ]'
expect weights-wrong-shape 1 "tensor 'weight' has shape (10, 784), expected (3, 5)" $TOY eval --weights mn.st --test-x $D/x.npy --test-y $D/y.npy
expect weights-corrupt 1 "garbage.bin: corrupt safetensors file" $TOY eval --weights $D/garbage.bin --test-x $D/x.npy --test-y $D/y.npy
expect weights-missing 1 "nope.st: No such file" $TOY eval --weights nope.st --test-x $D/x.npy --test-y $D/y.npy
expect init-wrong 1 "x.npy: corrupt safetensors" $TOY train --train-x $D/x.npy --train-y $D/y.npy --init $D/x.npy
expect predict 0 "wrote p.npy (10, 3) probabilities" $TOY predict --weights a.st --input $D/x.npy --output p.npy
check predict-npy-header 'head -c 128 p.npy | grep -q "{.descr.: .<f4., .fortran_order.: False, .shape.: (10, 3), }"'
check predict-size '[ "$(wc -c <p.npy)" -eq 248 ]'
check predict-rows-sum-1 'od -An -tf4 -j128 -w12 -v p.npy | awk "{ s = \$1 + \$2 + \$3; if (s < 0.99999 || s > 1.00001) bad = 1 } END { exit bad }"'
expect predict-csv 0 "wrote p.csv (10, 3) probabilities" $TOY predict --weights a.st --input $D/x.npy --output p.csv
check predict-csv-header '[ "$(head -1 p.csv)" = "prob_0,prob_1,prob_2" ] && [ "$(wc -l <p.csv)" -eq 11 ]'
check predict-csv-equals-npy 'od -An -tf4 -j128 -w12 -v p.npy | awk "{ printf \"%.6f,%.6f,%.6f\\n\", \$1, \$2, \$3 }" >p_npy.txt &&
    tail -n +2 p.csv | awk -F, "{ printf \"%.6f,%.6f,%.6f\\n\", \$1, \$2, \$3 }" | cmp -s - p_npy.txt'
expect predict-bad-extension 2 "error: --output p.txt: expected a .npy or .csv file name" $TOY predict --weights a.st --input $D/x.npy --output p.txt
check predict-bad-extension-writes-nothing '[ ! -e p.txt ]'
expect predict-bad-input 1 "x_shape.npy: expected 5 features" $TOY predict --weights a.st --input $D/x_shape.npy --output q.npy
check predict-no-partial '[ ! -e q.npy ] && [ -z "$(ls -a | grep tmp)" ]'
expect predict-dense 0 "(10, 3) outputs" $DENSE predict --weights a.st --input $D/x.npy --output pd.npy

# ----------------------------------------------------------------------------
# gradcheck

expect gradcheck-pass 0 "gradcheck: passed (worst" $TOY gradcheck
expect gradcheck-lines 0 "weight                   (3, 5)         15 of 15 elements" $TOY gradcheck
expect gradcheck-data 0 "samples (from $D/x.npy)" $TOY gradcheck --train-x $D/x.npy --train-y $D/y.npy --samples 6
expect gradcheck-weights 0 "gradcheck: passed" $TOY gradcheck --weights a.st --seed 3
expect gradcheck-dense 0 "gradcheck: passed" $DENSE gradcheck
expect gradcheck-sampled 0 "64 of 7840 elements" $MNIST gradcheck --data $D/mnist --samples 3
expect gradcheck-fail 1 "gradcheck: failed (worst" $WRONG gradcheck
expect gradcheck-tol 1 "gradcheck: failed" $TOY gradcheck --tol 1e-15 --floor 1e-9
expect gradcheck-fail-names 1 "bias" $WRONG gradcheck
expect gradcheck-too-many 2 "--samples: 9 is more than" $TOY gradcheck --samples 9

# ----------------------------------------------------------------------------
# --profile: the kernels' kinds and the runtime's own parts, per epoch and in total

P="--train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --epochs 2 --batch 4 --quiet"
expect help-train-profile 0 "--profile            time every kernel" $TOY train --help
expect help-train-profile-totals 0 "totals since the start of training (never reset)" $TOY train --help
expect profile-not-eval 2 "flag '--profile' does not apply to 'eval'" $TOY eval --weights a.st --data . --profile
$TOY train $P --save plain.st >outp0
$TOY train $P --profile --log mp.jsonl --save prof.st >outp
check profile-same-weights 'cmp -s plain.st prof.st'
check profile-off-silent '! grep -q profile outp0'
check profile-epoch-lines '[ "$(grep -c "^  profile: step [0-9.]* ms = gemm [0-9.]* + elementwise [0-9.]* + row-wise [0-9.]* + optimizer [0-9.]* + other [0-9.]*; gather [0-9.]* ms/step; eval [0-9.]* s$" outp)" -eq 2 ]'
check profile-after-epoch '[ "$(grep -A1 "^epoch 1/2" outp | tail -1 | cut -c1-16)" = "  profile: step " ]'
check profile-header 'grep -q "^profile: 2 epochs, 6 steps, 3.3 samples per step; totals since the start of training,$" outp'
for row in "gemm (+ fused epilogues)" "elementwise" "row-wise (softmax, CE)" "optimizer update" "other inside the step" \
           "train_step total" "batch gather + uint8->float" "step log + progress bar" "loop overhead" "epoch total"; do
    check "profile-row-$row" 'grep -qE "^    $(sed "s/[()+.]/\\\\&/g" <<<"$row") +[0-9]+\.[0-9]{3} +[0-9]+\.[0-9] +[0-9]+\.[0-9]{3}$" outp'
done
# The five parts of the step add up to the step (100 % up to rounding of each printed share).
share_sum() { awk '/^  inside train_step/ { on = 1; next } /train_step total/ { on = 0 } on { s += $(NF - 1) } END { print s }' "$1"; }
check profile-shares-sum 'awk -v s="$(share_sum outp)" "BEGIN { exit !(s > 99.7 && s < 100.3) }"'
check profile-total-100 'grep -qE "^    train_step total +[0-9.]+ +100\.0 " outp && grep -qE "^    epoch total +[0-9.]+ +100\.0 " outp'
check profile-jsonl-last 'tail -1 mp.jsonl | grep -qE "^\{\"profile\":\{\"epochs\":2,\"steps\":6,\"samples\":20,\"gemm_s\":[0-9.e-]+,.*\"timer_ns\":[0-9.e+-]+\}\}$"'
check profile-jsonl-epochs-unchanged '[ "$(grep -c "^{\"epoch\":" mp.jsonl)" -eq 2 ]'
# Every kind the toy model wraps took some time, the kernels fit inside the step, the step inside the epoch.
pj() { tail -1 mp.jsonl | sed -E "s/.*\"$1\":([^,}]*).*/\1/"; }
holds() { awk "BEGIN { exit !($1) }"; }
check profile-kinds-timed 'holds "$(pj gemm_s) > 0 && $(pj elementwise_s) > 0 && $(pj rowwise_s) > 0 && $(pj optimizer_s) > 0"'
check profile-kernels-in-step 'holds "$(pj gemm_s) + $(pj elementwise_s) + $(pj rowwise_s) + $(pj optimizer_s) <= $(pj step_s)"'
check profile-step-in-epoch 'holds "$(pj step_s) + $(pj gather_s) + $(pj log_s) <= $(pj train_s) && $(pj eval_s) > 0"'
# train_s is the sum of the epochs' logged seconds
logged=$(sed -nE 's/^\{"epoch".*"seconds":([^}]*)\}$/\1/p' mp.jsonl | paste -sd+)
check profile-train-is-logged 'holds "$logged - $(pj train_s) < 1e-6 && $(pj train_s) - ($logged) < 1e-6"'
# no epoch left to run: a checkpoint of all the epochs, resumed
$TOY train $P --checkpoint pe0.ck >/dev/null
expect profile-epochs-0 0 "profile: 0 epochs, 0 steps" $TOY train $P --resume pe0.ck --profile
expect profile-mnist 0 "gemm (+ fused epilogues)" $MNIST train --data $D/mnist --epochs 1 --quiet --profile

# ----------------------------------------------------------------------------
# checkpoints: k epochs, a checkpoint, then resuming for the rest is bit-identical to training straight through

K="--train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --batch 4 --log-every 1"
nosecs() { sed 's/,"seconds":[^}]*}/}/' "$1"; }
for exe in TOY DROP; do
    bin=${!exe}
    rm -f s_$exe.jsonl r_$exe.jsonl
    $bin train $K --epochs 4 --momentum 0.9 --log s_$exe.jsonl --save s_$exe.st >/dev/null
    $bin train $K --epochs 2 --momentum 0.9 --log r_$exe.jsonl --checkpoint c_$exe.st >/dev/null
    expect "resume-$exe" 0 "resumed c_$exe.st: 2 of 4 epochs done, step 6" $bin train $K --epochs 4 --resume c_$exe.st --log r_$exe.jsonl --save r_$exe.st
    check "resume-weights-$exe" 'cmp -s s_$exe.st r_$exe.st'
    check "resume-jsonl-$exe" '[ "$(nosecs s_$exe.jsonl)" = "$(nosecs r_$exe.jsonl)" ] && [ "$(grep -c "\"step\"" r_$exe.jsonl)" -eq 12 ]'
done
check resume-dropout-matters '! cmp -s s_TOY.st s_DROP.st'
# The resumed run took the checkpoint's momentum: without it (default 0) the weights differ.
$TOY train $K --epochs 4 --resume c_TOY.st --momentum 0 --save r_mom0.st >/dev/null
check resume-hparam-override '! cmp -s s_TOY.st r_mom0.st'
# --epochs defaults to the checkpointed run's; a straight run's checkpoint resumes to the same place
$TOY train $K --epochs 3 --momentum 0.9 --checkpoint c3.st --checkpoint-every 2 --save s3.st >/dev/null
check checkpoint-last-epoch 'head -c 2000 c3.st | grep -q "\"epochs_done\":\"3\""'
check checkpoint-metadata 'head -c 2000 c3.st | grep -q "\"nncc.checkpoint\":\"2\",\"model\":\"toy\",\"params_numel\":\"19\",\"state_numel\":\"19\",\"step\":\"9\""'
# format 1 (the whole state arena, as the toy, which names no state slots, still writes it) is read too
sed 's/"nncc.checkpoint":"2"/"nncc.checkpoint":"1"/' c3.st >c3v1.st
expect checkpoint-format-1 0 "resumed c3v1.st: 3 of 4 epochs done" $TOY train $K --resume c3v1.st --epochs 4
sed 's/"nncc.checkpoint":"2"/"nncc.checkpoint":"9"/' c3.st >c3v9.st
expect checkpoint-format-unknown 1 "c3v9.st: checkpoint format version '9' is not supported (expected 1 or 2)" $TOY train $K --resume c3v9.st
check checkpoint-tensors 'head -c 2000 c3.st | grep -q "\"optimizer.state\":{\"dtype\":\"F32\",\"shape\":\[19\]" && head -c 2000 c3.st | grep -q "\"train.order\":{\"dtype\":\"I64\",\"shape\":\[10\]"'
check checkpoint-hparams 'head -c 2000 c3.st | grep -q "\"hp.lr\":\"0.10000000000000001\",\"hp.momentum\":\"0.90000000000000002\""'
expect resume-nothing-left 0 "resumed c3.st: 3 of 3 epochs done" $TOY train $K --resume c3.st --save r3.st
check resume-nothing-left-weights 'cmp -s s3.st r3.st'
# A checkpoint's weights are weights: eval, predict and --init read them
expect checkpoint-as-weights 0 "test_loss" $TOY eval --weights c3.st --test-x $D/x.npy --test-y $D/y.npy
$TOY train $K --init c3.st --epochs 1 --lr 0 --save i3.st >/dev/null
check checkpoint-init 'same_but_counter i3.st s3.st'
# bad checkpoints: one line, exit 1 (or 2 for a command line that contradicts it), nothing written
expect resume-missing 1 "nope.st: No such file" $TOY train $K --resume nope.st
expect resume-corrupt 1 "garbage.bin: corrupt safetensors" $TOY train $K --resume $D/garbage.bin
head -c 300 c3.st >trunc.st
expect resume-truncated 1 "trunc.st: corrupt safetensors" $TOY train $K --resume trunc.st
expect resume-weights-only 1 "s3.st: not a checkpoint (weights only, no training state; '--init s3.st'" $TOY train $K --resume s3.st
$MNIST train --data $D/mnist --epochs 1 --quiet --checkpoint cm.st >/dev/null
expect resume-other-model 1 "cm.st: checkpoint of model 'toy' (7851 parameters, 7851 optimizer state floats), but this trainer is 'toy' (19, 19)" $TOY train $K --resume cm.st
sed 's/"model":"toy"/"model":"yot"/' c3.st >renamed.st
expect resume-other-name 1 "checkpoint of model 'yot'" $TOY train $K --resume renamed.st
sed 's/"hp.momentum"/"hp.nesterov"/' c3.st >otherhp.st
expect resume-other-hparams 1 "no hyperparameter 'momentum'" $TOY train $K --resume otherhp.st
sed 's/"step":"9"/"step":"x"/' c3.st >badmeta.st
expect resume-bad-metadata 1 "badmeta.st: corrupt checkpoint (metadata 'step' is 'x'" $TOY train $K --resume badmeta.st
expect resume-batch-conflict 2 "--batch 2: the checkpoint c3.st was trained with --batch 4" $TOY train ${K/--batch 4/--batch 2} --resume c3.st
expect resume-epochs-behind 2 "--epochs 1: the checkpoint c3.st has already trained 3 epochs" $TOY train $K --resume c3.st --epochs 1

# ----------------------------------------------------------------------------
# divergence: the first step whose loss is not finite stops training with exit 1; --save is not written (an
# existing file keeps its bytes), an earlier checkpoint stays, and the log ends with that step (loss null)

echo "old weights" >dv.st
rm -f dv.jsonl
expect diverge-stops 1 "training diverged: the loss of step " $TOY train $K --epochs 3 --lr 1e38 --save dv.st --log dv.jsonl
expect diverge-hint 1 "A smaller learning rate (--lr, now 1e+38) usually helps" $TOY train $K --epochs 3 --lr 1e38
expect diverge-save-named 1 "; dv.st was not written" $TOY train $K --epochs 3 --lr 1e38 --save dv.st
check diverge-save-untouched '[ "$(cat dv.st)" = "old weights" ]'
check diverge-log-last 'tail -1 dv.jsonl | grep -qE "^\{\"step\":[0-9]+,\"epoch\":1,\"loss\":null,\"lr\":1e\+38\}$"'
check diverge-no-epoch-line '! grep -q "\"epoch\":1,\"train_loss\"" dv.jsonl'
# it stops at the first such step: the step in the message is the last one logged (every step is, --log-every 1)
dvstep=$(tail -1 dv.jsonl | sed -E 's/^\{"step":([0-9]+),.*/\1/')
expect diverge-first-step 1 "the loss of step $dvstep (epoch 1, batch $dvstep of 3)" $TOY train $K --epochs 3 --lr 1e38
cp c3.st dvc.st && cp c3.st dvc_before.st
expect diverge-checkpoint-kept 1 "the checkpoint dvc.st keeps epoch 3 (--resume it with other hyperparameters)" \
    $TOY train $K --resume dvc.st --checkpoint dvc.st --epochs 5 --lr 1e38
check diverge-checkpoint-bytes 'cmp -s dvc.st dvc_before.st'
expect diverge-no-checkpoint 1 "no checkpoint was written in this run" $TOY train $K --epochs 3 --lr 1e38 --checkpoint dvn.st
check diverge-no-checkpoint-file '[ ! -e dvn.st ]'
expect diverge-not-below 0 "epoch 3/3  train_loss" $TOY train $K --epochs 3 --lr 0.1
expect resume-shuffle-conflict 2 "--no-shuffle: the checkpoint c3.st was trained with shuffling" $TOY train $K --resume c3.st --no-shuffle
expect resume-val-conflict 2 "--val-split 0.2: the checkpoint c3.st was trained with --val-split 0" $TOY train $K --resume c3.st --val-split 0.2
expect resume-and-init 2 "give one" $TOY train $K --resume c3.st --init s3.st
expect resume-other-data 1 "c3.st: the checkpoint was trained on 10 samples with 0 for validation, but this run has 10 with 10" \
    $TOY train $K --resume c3.st --val-x $D/x.npy --val-y $D/y.npy
cp c3.st keep3.st
expect checkpoint-fails-late 1 "x_shape.npy" $TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x_shape.npy --test-y $D/y.npy --checkpoint keep3.st
check checkpoint-keeps-old 'cmp -s c3.st keep3.st && [ -z "$(ls -a | grep tmp)" ]'
expect help-train-resume 0 "--resume C" $TOY train --help

# ----------------------------------------------------------------------------
# validation: --val-split holds out a seeded random part of the training set, --val-x/--val-y name files

V2="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --epochs 2 --quiet"
rm -f tracev
TOY_TRACE=tracev $TOY train $V2 --val-split 0.2 --log v.jsonl --verbose >outv
check val-console 'grep -qE "^epoch 2/2  train_loss [0-9.]+  val_loss [0-9.]+  val_acc [0-9.]+  [0-9.]+s$" outv'
check val-jsonl 'grep -q "^{\"epoch\":2,\"train_loss\":[0-9.e+-]*,\"val_loss\":[0-9.e+-]*,\"val_acc\":[0-9.e+-]*,\"seconds\":" v.jsonl'
check val-data-line 'grep -q "^data: validation 2 samples from .*x.npy (validation part)" outv && grep -q "^data: train 8 samples" outv'
check val-held-out '[ "$(wc -l <tracev)" -eq 4 ] && [ "$(cut -d" " -f10- tracev | tr " " "\n" | sort -un | wc -l)" -eq 8 ]'
$TOY train $V2 --val-x $D/x.npy --val-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --log vf.jsonl >/dev/null
check val-files-equal-test 'tail -1 vf.jsonl | sed -E "s/.*\"val_loss\":([^,]*),\"val_acc\":([^,]*),\"test_loss\":([^,]*),\"test_acc\":([^,]*),.*/\1 \2 \3 \4/" | awk "{ exit !(\$1 == \$3 && \$2 == \$4) }"'
$TOY train $V2 --val-split 0.3 --seed 1 --log vs1.jsonl >/dev/null
$TOY train $V2 --val-split 0.3 --seed 2 --log vs2.jsonl >/dev/null
check val-split-seeded '[ "$(nosecs vs1.jsonl)" != "$(nosecs vs2.jsonl)" ]'
expect val-dense 0 "val_loss" $DENSE train --train-x $D/x.npy --train-y $D/t.npy --val-split 0.5 --quiet
check val-dense-no-acc '! $DENSE train --train-x $D/x.npy --train-y $D/t.npy --val-split 0.5 --quiet | grep -q val_acc'
expect val-split-one 2 "--val-split: expected a fraction between 0 and 1, got 1" $TOY train $V2 --val-split 1
expect val-split-zero 2 "--val-split: expected a positive number, got '0'" $TOY train $V2 --val-split 0
expect val-split-tiny 1 "--val-split 0.01 of 10 samples leaves 0 for validation" $TOY train $V2 --val-split 0.01
expect val-x-without-y 2 "--val-x and --val-y go together" $TOY train $V2 --val-x $D/x.npy
expect val-both 2 "either --val-split or --val-x/--val-y" $TOY train $V2 --val-x $D/x.npy --val-y $D/y.npy --val-split 0.2
expect val-file-bad 1 "x_shape.npy: expected 5 features" $TOY train $V2 --val-x $D/x_shape.npy --val-y $D/y.npy
# resuming with a validation split: the same split, bit-identical
$DROP train ${V2/--epochs 2/--epochs 3} --val-split 0.2 --log-every 1 --log vr_s.jsonl --save vr_s.st >/dev/null
$DROP train ${V2/--epochs 2/--epochs 1} --val-split 0.2 --log-every 1 --log vr_r.jsonl --checkpoint vr_c.st >/dev/null
$DROP train ${V2/--epochs 2/--epochs 3} --resume vr_c.st --log-every 1 --log vr_r.jsonl --save vr_r.st >/dev/null
check resume-val-weights 'cmp -s vr_s.st vr_r.st'
check resume-val-jsonl '[ "$(nosecs vr_s.jsonl)" = "$(nosecs vr_r.jsonl)" ] && grep -q "\"val_acc\"" vr_r.jsonl'

# ----------------------------------------------------------------------------
# early stopping: --early-stop K stops when the validation metric has not improved (by more than
# --early-stop-delta) for K epochs, and --save then gets the best epoch's weights

# The reference: the rule applied by awk to the epoch lines of a run without early stopping. Prints
# "<stop epoch> <best epoch>", or "none <best epoch>" when the run would not stop.
es_ref() {  # es_ref LOG FIELD K DELTA
    awk -v f="\"$2\":" -v k="$3" -v d="$4" -v acc="$([ "$2" = val_acc ] && echo 1 || echo 0)" '
        /"train_loss"/ { e++; i = index($0, f); x = substr($0, i + length(f)) + 0
            if (e == 1 || (acc ? x > best + d : x < best - d)) { best = x; be = e; since = 0 } else since++
            if (since >= k) { print e, be; found = 1; exit } }
        END { if (!found) print "none", be }' "$1"
}
E="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --val-split 0.2 --lr 0.02"
$TOY train $E --epochs 30 --quiet --log es_full.jsonl >/dev/null
read -r es_stop es_best <<<"$(es_ref es_full.jsonl val_loss 3 0)"
check es-ref-stops '[ "$es_stop" != none ] && [ "$es_best" -gt 1 ] && [ "$es_stop" -lt 30 ]'
$TOY train $E --epochs 30 --early-stop 3 --log es.jsonl --save es.st >es.out
check es-message 'grep -qE "^early stopping: val_loss has not improved on epoch $es_best.s [0-9.]+ for 3 epochs \(--early-stop 3\); stopped after epoch $es_stop of 30$" es.out'
check es-epochs-run '[ "$(grep -c "^epoch " es.out)" -eq "$es_stop" ]'
check es-saved-line 'grep -q "^saved es.st (the weights of epoch $es_best, the best val_loss: " es.out'
check es-log-record 'tail -1 es.jsonl | grep -qE "^\{\"early_stop\":\{\"epoch\":$es_stop,\"on\":\"val_loss\",\"best_epoch\":$es_best,\"best\":[0-9.e+-]+\}\}$"'
check es-log-same-epochs '[ "$(grep "train_loss" es.jsonl | nosecs /dev/stdin)" = "$(grep "train_loss" es_full.jsonl | head -$es_stop | nosecs /dev/stdin)" ]'
$TOY train $E --epochs $es_best --quiet --save es_best.st >/dev/null
check es-saves-best-epoch 'cmp -s es.st es_best.st'
# val_acc, and a delta: against the same reference
for args in "val_acc 2 0" "val_loss 2 0.05" "val_loss 1 0"; do
    read -r on k d <<<"$args"
    read -r rs rb <<<"$(es_ref es_full.jsonl $on $k $d)"
    $TOY train $E --epochs 30 --early-stop $k --early-stop-on $on --early-stop-delta $d --save es_v.st >es_v.out
    if [ "$rs" = none ]; then check "es-ref-$on-$k-$d" '! grep -q "^early stopping" es_v.out && grep -q "the weights of epoch $rb," es_v.out'
    else check "es-ref-$on-$k-$d" 'grep -q "^early stopping: $on has not improved on epoch $rb.s .* stopped after epoch $rs of 30$" es_v.out'; fi
done
# never improving after epoch 1: the weights of a 1-epoch run; the stopping epoch is checkpointed
$TOY train $E --epochs 10 --early-stop 2 --early-stop-delta 1000 --quiet --save es1.st --checkpoint es1c.st --checkpoint-every 5 >/dev/null
$TOY train $E --epochs 1 --quiet --save es1_ref.st >/dev/null
check es-huge-delta 'cmp -s es1.st es1_ref.st'
expect es-checkpoint-at-stop 0 "resumed es1c.st: 3 of 3 epochs done" $TOY train $E --resume es1c.st --epochs 3
# resumed with the same patience, a stopped run stays stopped (no epoch runs) and saves the same best epoch
$TOY train $E --resume es1c.st --early-stop 2 --early-stop-delta 1000 --save es1r.st >es1r.out
check es-stopped-stays 'grep -q "the checkpoint stopped after epoch 3$" es1r.out && ! grep -q "^epoch " es1r.out && cmp -s es1r.st es1_ref.st'
# resuming keeps the state: 3 epochs, a checkpoint, 5 more equal one run of 8 (which stops after epoch 4)
$TOY train $E --epochs 8 --early-stop 3 --early-stop-delta 1000 --quiet --log esA.jsonl --save esA.st >/dev/null
$TOY train $E --epochs 3 --early-stop 3 --early-stop-delta 1000 --quiet --log esB.jsonl --checkpoint esB.ck >/dev/null
expect es-resume-stops 0 "stopped after epoch 4 of 8" $TOY train $E --resume esB.ck --epochs 8 --early-stop 3 --early-stop-delta 1000 --log esB.jsonl --save esB.st
check es-resume-weights 'cmp -s esA.st esB.st'
check es-resume-log '[ "$(nosecs esA.jsonl)" = "$(nosecs esB.jsonl)" ]'
expect es-resume-afresh 0 "early stopping on val_acc starts afresh: the checkpoint watched another metric" \
    $TOY train $E --resume esB.ck --epochs 4 --early-stop 3 --early-stop-on val_acc
$TOY train $E --epochs 2 --quiet --checkpoint esN.ck >/dev/null
expect es-resume-without 0 "starts afresh: the checkpoint was trained without --early-stop" $TOY train $E --resume esN.ck --epochs 3 --early-stop 2
sed 's/"early_stop.on":"val_loss"/"early_stop.on":"val_lxss"/' esB.ck >es_bad.ck
expect es-resume-corrupt 1 "es_bad.ck: corrupt checkpoint (metadata 'early_stop.on' is 'val_lxss'" $TOY train $E --resume es_bad.ck --epochs 8
expect es-weights-of-checkpoint 0 "test_loss" $TOY eval --weights esB.ck --test-x $D/x.npy --test-y $D/y.npy
# mistakes
expect es-needs-validation 2 "--early-stop: needs a validation set (--val-split F, or --val-x and --val-y)" \
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --early-stop 2
expect es-zero 2 "--early-stop: expected a positive integer, got '0'" $TOY train $E --early-stop 0
expect es-on-alone 2 "--early-stop-on: needs --early-stop K" $TOY train $E --early-stop-on val_acc
expect es-delta-alone 2 "--early-stop-delta: needs --early-stop K" $TOY train $E --early-stop-delta 0.1
expect es-on-bad 2 "--early-stop-on: expected val_loss or val_acc, got 'test_acc'" $TOY train $E --early-stop 2 --early-stop-on test_acc
expect es-delta-negative 2 "--early-stop-delta: expected a non-negative number, got '-1'" $TOY train $E --early-stop 2 --early-stop-delta -1
expect es-delta-zero-ok 0 "epoch 1/1" $TOY train $E --epochs 1 --early-stop 2 --early-stop-delta 0
expect es-acc-regression 2 "--early-stop-on val_acc: model 'toy' has no accuracy" \
    $DENSE train --train-x $D/x.npy --train-y $D/t.npy --val-split 0.5 --early-stop 2 --early-stop-on val_acc
expect es-help 0 "--early-stop K" $TOY train --help

# ----------------------------------------------------------------------------
# --reduce-lr-on-plateau P: PyTorch's ReduceLROnPlateau, stepped on an epoch's metric; the next epoch's steps use
# the reduced rate

# The reference: the rule applied by awk to a run's own epoch lines (the rate of epoch e + 1 depends only on the
# metrics up to epoch e), printed as "<epoch> <lr>" for epochs 2.., against the lr of each epoch's first logged step.
pl_ref() {  # pl_ref LOG FIELD PATIENCE FACTOR THRESHOLD COOLDOWN MIN_LR LR0
    awk -v f="\"$2\":" -v p="$3" -v fac="$4" -v th="$5" -v cd="$6" -v minlr="$7" -v lr="$8" \
        -v acc="$([ "$2" = val_acc ] && echo 1 || echo 0)" '
        /"train_loss"/ { e++; i = index($0, f); x = substr($0, i + length(f)) + 0
            if (e == 1 || (acc ? x > best * (1 + th) : x < best * (1 - th))) { best = x; bad = 0 } else bad++
            if (cool > 0) { cool--; bad = 0 }
            if (bad > p) { n = lr * fac; if (n < minlr) n = minlr; if (lr - n > 1e-8) lr = n; cool = cd; bad = 0 }
            printf "%d %.9g\n", e + 1, lr }' "$1"
}
pl_used() {  # the lr of each epoch's first step record, as "<epoch> <lr>" for epochs 2..
    grep '^{"step"' "$1" | sed -E 's/.*"epoch":([0-9]+),.*"lr":([^}]*)\}/\1 \2/' | awk '!seen[$1]++ && $1 > 1 { printf "%d %.9g\n", $1, $2 }'
}
pl_same() {  # the two lists agree where both have the epoch, to 1e-6 relative
    awk 'NR == FNR { want[$1] = $2; next } ($1 in want) { n++; d = $2 - want[$1]; if (d < 0) d = -d; if (d > 1e-6 * want[$1]) bad++ }
         END { exit !(n > 0 && !bad) }' "$1" "$2"
}
P="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --val-split 0.2 --lr 0.02 --epochs 20 --log-every 1 --quiet"
for args in "val_loss 1 0.5 0.0001 0 0" "val_loss 0 0.5 0.01 2 0.004" "val_acc 1 0.3 0 0 0" "train_loss 2 0.5 0.0001 1 0"; do
    read -r on pat fac th cd minlr <<<"$args"
    rm -f pl.jsonl
    $TOY train $P --reduce-lr-on-plateau $pat --plateau-on $on --plateau-factor $fac --plateau-threshold $th \
        --plateau-cooldown $cd --plateau-min-lr $minlr --log pl.jsonl >pl.out
    pl_ref pl.jsonl $on $pat $fac $th $cd $minlr 0.02 >pl_want
    pl_used pl.jsonl >pl_got
    check "plateau-ref-$on-$pat-$cd" 'pl_same pl_want pl_got && [ "$(wc -l <pl_got)" -eq 19 ]'
done
rm -f pl.jsonl
$TOY train $P --reduce-lr-on-plateau 1 --plateau-factor 0.5 --log pl.jsonl >pl.out
check plateau-reduces 'grep -q "^{\"lr_reduced\":{\"epoch\":[0-9]*,\"lr\":0.01}}$" pl.jsonl'
$TOY train $P --reduce-lr-on-plateau 1 --plateau-factor 0.5 >pl_console
check plateau-message 'grep -qE "^reduce-lr-on-plateau: val_loss has not improved on [0-9.]+ for 2 epochs \(patience 1\); --lr 0.02 -> 0.01$" pl_console'
# with early stopping, and resumed: 6 epochs and a checkpoint, then 14 more, equal one run of 20
rm -f plA.jsonl plB.jsonl
$TOY train $P --reduce-lr-on-plateau 1 --plateau-factor 0.5 --plateau-cooldown 1 --early-stop 6 --log plA.jsonl --save plA.st >/dev/null
$TOY train ${P/--epochs 20/--epochs 6} --reduce-lr-on-plateau 1 --plateau-factor 0.5 --plateau-cooldown 1 --early-stop 6 --log plB.jsonl --checkpoint plB.ck >/dev/null
$TOY train $P --resume plB.ck --reduce-lr-on-plateau 1 --plateau-factor 0.5 --plateau-cooldown 1 --early-stop 6 --log plB.jsonl --save plB.st >/dev/null
check plateau-resume-weights 'cmp -s plA.st plB.st'
check plateau-resume-log '[ "$(nosecs plA.jsonl)" = "$(nosecs plB.jsonl)" ] && grep -q lr_reduced plB.jsonl'
P7=${P/--epochs 20/--epochs 7}
expect plateau-resume-afresh 0 "reduce-lr-on-plateau on train_loss starts afresh: the checkpoint watched another metric" \
    $TOY train ${P7% --quiet} --resume plB.ck --reduce-lr-on-plateau 1 --plateau-on train_loss
sed 's/"plateau.on":"val_loss"/"plateau.on":"val_lxss"/' plB.ck >pl_bad.ck
expect plateau-resume-corrupt 1 "pl_bad.ck: corrupt checkpoint (metadata 'plateau.on' is 'val_lxss'" $TOY train $P --resume pl_bad.ck
# mistakes
expect plateau-needs-validation 2 "--reduce-lr-on-plateau: it watches val_loss, which needs a validation set" \
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --reduce-lr-on-plateau 2
expect plateau-train-loss-alone 0 "epoch 2/2" $TOY train --train-x $D/x.npy --train-y $D/y.npy --reduce-lr-on-plateau 0 --plateau-on train_loss
expect plateau-factor-one 2 "--plateau-factor: expected a factor below 1, got 1" $TOY train $P --reduce-lr-on-plateau 2 --plateau-factor 1
expect plateau-factor-zero 2 "--plateau-factor: expected a positive number, got '0'" $TOY train $P --reduce-lr-on-plateau 2 --plateau-factor 0
expect plateau-alone 2 "--plateau-cooldown: needs --reduce-lr-on-plateau P" $TOY train $P --plateau-cooldown 2
expect plateau-on-bad 2 "--plateau-on: expected val_loss, val_acc or train_loss, got 'lr'" $TOY train $P --reduce-lr-on-plateau 2 --plateau-on lr
expect plateau-acc-regression 2 "--plateau-on val_acc: model 'toy' has no accuracy" \
    $DENSE train --train-x $D/x.npy --train-y $D/t.npy --val-split 0.5 --reduce-lr-on-plateau 2 --plateau-on val_acc
expect plateau-negative 2 "--reduce-lr-on-plateau: expected a non-negative integer, got '-1'" $TOY train $P --reduce-lr-on-plateau -1
expect plateau-help 0 "--reduce-lr-on-plateau P" $TOY train --help

# ----------------------------------------------------------------------------
# --ema D: a moving average of the weights after every step (its arithmetic: test_unit's ema checks), evaluated
# each epoch and written by --save-ema

M="--train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --batch 4 --epochs 4 --val-split 0.2 --quiet"
$TOY train $M --ema 0 --save em_w.st --save-ema em0.st --log em0.jsonl >em0.out
check ema-zero-is-the-weights 'cmp -s em_w.st em0.st'
check ema-zero-same-metrics 'tail -1 em0.jsonl | sed -E "s/.*\"val_loss\":([^,]*),.*\"test_loss\":([^,]*),.*\"ema_val_loss\":([^,]*),.*\"ema_test_loss\":([^,]*),.*/\1 \2 \3 \4/" | awk "{ exit !(\$1 == \$3 && \$2 == \$4) }"'
check ema-console 'grep -qE "^  ema:  val_loss [0-9.]+  val_acc [0-9.]+  test_loss [0-9.]+  test_acc [0-9.]+$" em0.out'
$TOY train $M --ema 0.9 --save em_w9.st --save-ema em9.st --log em9.jsonl >/dev/null
check ema-averages 'cmp -s em_w.st em_w9.st && ! cmp -s em9.st em_w9.st'
check ema-jsonl 'grep -q "\"ema_val_loss\":[0-9.e+-]*,\"ema_val_acc\":[0-9.e+-]*,\"ema_test_loss\":[0-9.e+-]*,\"ema_test_acc\"" em9.jsonl'
expect ema-saved-line 0 "saved em9b.st (the moving average of the weights, decay 0.9, over 8 steps)" $TOY train ${M% --quiet} --ema 0.9 --save-ema em9b.st
expect ema-eval 0 "test_loss" $TOY eval --weights em9.st --test-x $D/x.npy --test-y $D/y.npy
# resumed: 2 epochs and a checkpoint, then 2 more, equal one run of 4
rm -f emA.jsonl emB.jsonl
$TOY train $M --ema 0.9 --save-ema emA.st --log emA.jsonl >/dev/null
$TOY train ${M/--epochs 4/--epochs 2} --ema 0.9 --log emB.jsonl --checkpoint emB.ck >/dev/null
$TOY train $M --resume emB.ck --ema 0.9 --save-ema emB.st --log emB.jsonl >/dev/null
check ema-resume-weights 'cmp -s emA.st emB.st'
check ema-resume-log '[ "$(nosecs emA.jsonl)" = "$(nosecs emB.jsonl)" ]'
expect ema-checkpoint-as-weights 0 "test_loss" $TOY eval --weights emB.ck --test-x $D/x.npy --test-y $D/y.npy
$TOY train ${M/--epochs 4/--epochs 2} --checkpoint emN.ck >/dev/null
expect ema-resume-afresh 0 "ema starts afresh: the checkpoint was trained without --ema" $TOY train ${M% --quiet} --resume emN.ck --ema 0.9
# mistakes
expect ema-one 2 "--ema: expected a decay below 1 (0.999 is common), got 1" $TOY train $M --ema 1
expect ema-negative 2 "--ema: expected a non-negative number, got '-0.5'" $TOY train $M --ema -0.5
expect ema-save-alone 2 "--save-ema: needs --ema D" $TOY train $M --save-ema x.st
expect ema-save-unwritable 1 "/nonexistent/e.st" $TOY train $M --ema 0.9 --save-ema /nonexistent/e.st
expect ema-help 0 "--save-ema W" $TOY train --help

# ----------------------------------------------------------------------------
# ensembles: eval and predict with --weights A,B,… average the members' probabilities (outputs for regression)

npy_values() {  # npy_values FILE TYPE: the array's elements, one a line (TYPE f4 for <f4, d8 for <i8), via od
    local hl
    hl=$(od -An -t u2 -j 8 -N 2 "$1" | tr -d ' ')
    od -An -v -t "$2" -j $((10 + hl)) "$1" | tr -s ' ' '\n' | sed '/^$/d'
}
T="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --epochs 3 --quiet"
$TOY train $T --seed 1 --save en1.st >/dev/null
$TOY train $T --seed 2 --save en2.st >/dev/null
$TOY predict --weights en1.st --input $D/x.npy --output en1.npy --quiet
$TOY predict --weights en2.st --input $D/x.npy --output en2.npy --quiet
expect ensemble-predict 0 "wrote en12.npy (10, 3) probabilities, averaged over the ensemble" \
    $TOY predict --weights en1.st,en2.st --input $D/x.npy --output en12.npy
npy_values en1.npy f4 >en1.txt; npy_values en2.npy f4 >en2.txt; npy_values en12.npy f4 >en12.txt; npy_values $D/y.npy d8 >eny.txt
check ensemble-predict-mean '[ "$(wc -l <en12.txt)" -eq 30 ] && paste en1.txt en2.txt en12.txt | awk "{ d = (\$1 + \$2) / 2 - \$3; if (d < 0) d = -d; if (d > 1e-6) bad++ } END { exit bad > 0 }"'
check ensemble-members-differ '! cmp -s en1.npy en2.npy'
$TOY eval --weights en1.st,en2.st --test-x $D/x.npy --test-y $D/y.npy >en_eval.out
# the reference: NLL and accuracy of the averaged probabilities, from the predicted file and the labels, in awk
read -r ref_nll ref_acc <<<"$(paste -d' ' - - - <en12.txt | paste -d' ' - eny.txt | awk '{ p[0] = $1; p[1] = $2; p[2] = $3; y = $4
    nll -= log(p[y]); b = 0; for (j = 1; j < 3; j++) if (p[j] > p[b]) b = j; acc += b == y } END { printf "%.6f %.6f", nll / NR, acc / NR }')"
check ensemble-eval-members 'grep -qE "^member 1: test_loss [0-9.]+  test_acc [0-9.]+$" en_eval.out && grep -qE "^member 2: " en_eval.out'
check ensemble-eval-reference 'grep "^ensemble of 2 (probabilities averaged): " en_eval.out | sed -E "s/.*test_nll ([0-9.]+)  test_acc ([0-9.]+)$/\1 \2/" |
    awk -v n=$ref_nll -v a=$ref_acc "{ d = \$1 - n; e = \$2 - a; exit !(d < 6e-5 && d > -6e-5 && e < 6e-5 && e > -6e-5) }"'
$TOY eval --weights en1.st --test-x $D/x.npy --test-y $D/y.npy >en_one.out
$TOY eval --weights en1.st,en1.st --test-x $D/x.npy --test-y $D/y.npy >en_same.out
check ensemble-of-one-model 'grep -q "^$(cat en_one.out | sed "s/test_loss/ensemble of 2 (probabilities averaged): test_nll/")$" en_same.out'
check ensemble-single-unchanged 'grep -qE "^test_loss [0-9.]+  test_acc [0-9.]+$" en_one.out && [ "$(wc -l <en_one.out)" -eq 1 ]'
$DENSE train --train-x $D/x.npy --train-y $D/t.npy --quiet --seed 1 --save end1.st >/dev/null
$DENSE train --train-x $D/x.npy --train-y $D/t.npy --quiet --seed 2 --save end2.st >/dev/null
expect ensemble-regression 0 "ensemble of 2 (outputs averaged): test_mse " $DENSE eval --weights end1.st,end2.st --test-x $D/x.npy --test-y $D/t.npy
expect ensemble-empty-path 2 "--weights: an empty path in 'en1.st,' (an ensemble is --weights A,B,…)" \
    $TOY eval --weights en1.st, --test-x $D/x.npy --test-y $D/y.npy
expect ensemble-missing-member 1 "en9.st: No such file or directory" $TOY predict --weights en1.st,en9.st --input $D/x.npy --output en19.npy
check ensemble-missing-writes-nothing '[ ! -e en19.npy ]'

# ----------------------------------------------------------------------------
# search: one training run per hyperparameter setting (grid or random), ranked on the validation set

S="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --epochs 4 --val-split 0.2"
$TOY search $S --lr 0.01,0.1 --momentum 0,0.9 --save se.st --log se.jsonl >se.out
check search-grid-order '[ "$(grep "^trial " se.out | sed -E "s/^trial ([0-9]+)\/4  --lr ([0-9.]+)  --momentum ([0-9.]+) .*/\1 \2 \3/" | tr "\n" " ")" = "1 0.01 0 2 0.01 0.9 3 0.1 0 4 0.1 0.9 " ]'
# every trial is a fresh run: its metrics and weights are those of `train` with its flags
for k in 1 2 3 4; do
    read -r lr mom <<<"$(grep "^trial $k/" se.out | sed -E "s/^trial [0-9]+\/4  --lr ([0-9.]+)  --momentum ([0-9.]+) .*/\1 \2/")"
    rm -f se_t$k.jsonl
    $TOY train $S --quiet --lr $lr --momentum $mom --log se_t$k.jsonl --save se_t$k.st >/dev/null
    got=$(grep "^trial $k/" se.out | sed -E "s/.*val_loss ([0-9.]+)  val_acc ([0-9.]+) .*/\1 \2/")
    want=$(tail -1 se_t$k.jsonl | sed -E 's/.*"val_loss":([^,]*),"val_acc":([^,]*),.*/\1 \2/' | awk '{ printf "%.4f %.4f", $1, $2 }')
    check "search-trial-$k-is-train" '[ "$got" = "$want" ]'
done
best=$(grep "^trial " se.out | sed -E "s/^trial ([0-9]+)\/.*val_loss ([0-9.]+) .*/\2 \1/" | sort -n | head -1 | cut -d" " -f2)
check search-best-line 'grep -q "^best: trial $best  " se.out && grep -q "^saved se.st (trial $best.s weights)$" se.out'
check search-saves-best 'cmp -s se.st se_t$best.st'
check search-jsonl '[ "$(grep -c "^{\"trial\":" se.jsonl)" -eq 4 ] && tail -1 se.jsonl | grep -q "^{\"best\":{\"trial\":$best,\"hparams\":{\"lr\":"'
# random: reproducible from --seed, draws inside the bounds
$TOY search $S --lr loguniform:0.001:0.3 --weight-decay uniform:0:0.01 --trials 5 >sr1.out
$TOY search $S --lr loguniform:0.001:0.3 --weight-decay uniform:0:0.01 --trials 5 >sr2.out
$TOY search $S --lr loguniform:0.001:0.3 --weight-decay uniform:0:0.01 --trials 5 --seed 7 >sr3.out
nosec() { sed -E 's/  [0-9.]+s$//' "$1"; }
check search-random-reproducible '[ "$(nosec sr1.out)" = "$(nosec sr2.out)" ] && [ "$(grep -c "^trial " sr1.out)" -eq 5 ]'
check search-random-seeded '[ "$(grep "^trial 1/" sr1.out | cut -d" " -f3-5)" != "$(grep "^trial 1/" sr3.out | cut -d" " -f3-5)" ]'
check search-random-bounds 'grep "^trial " sr1.out sr3.out | sed -E "s/.*--lr ([0-9.e+-]+)  --weight-decay ([0-9.e+-]+) .*/\1 \2/" |
    awk "{ if (\$1 < 0.001 || \$1 > 0.3 || \$2 < 0 || \$2 > 0.01) bad++ } END { exit !(NR == 10 && !bad) }"'
# a diverging trial is out, the search goes on; if all diverge, nothing is saved
expect search-diverged-trial 0 "--lr 1e+38  diverged (the loss stopped being finite)" $TOY search $S --lr 0.1,1e38 --log sd.jsonl
check search-diverged-jsonl 'grep -q "\"diverged\":true" sd.jsonl && grep -q "^{\"best\":{\"trial\":1," sd.jsonl'
expect search-all-diverged 1 "search: no trial finished with a finite val_loss (every one diverged?); nothing was written to sa.st" \
    $TOY search $S --lr 1e38,1e37 --save sa.st
check search-all-diverged-nothing '[ ! -e sa.st ]'
# with the train flags: early stopping picks each trial's best epoch
expect search-early-stop 0 "best: trial" $TOY search ${S/--epochs 4/--epochs 20} --early-stop 2 --lr 0.02,0.05 --search-on val_acc
# mistakes
expect search-needs-validation 2 "search: needs a validation set (--val-split F, or --val-x and --val-y)" \
    $TOY search --train-x $D/x.npy --train-y $D/y.npy --lr 0.1,0.2
expect search-nothing 2 "search: no hyperparameter to search" $TOY search $S --lr 0.1
expect search-random-no-trials 2 "search: a random search needs --trials N" $TOY search $S --lr uniform:0.01:0.1
expect search-grid-trials 2 "--trials: every spec is a list, so the search is the whole grid of 2 settings" $TOY search $S --lr 0.1,0.2 --trials 3
expect search-bad-spec 2 "--lr: expected a number, a list X,Y,…, uniform:A:B or loguniform:A:B, got '0.1,x'" $TOY search $S --lr 0.1,x
expect search-bad-log 2 "--lr: 'loguniform:0:1' needs 0 < A" $TOY search $S --lr loguniform:0:1 --trials 2
expect search-bad-order 2 "--weight-decay: 'uniform:1:0.5' needs A < B" $TOY search $S --weight-decay uniform:1:0.5 --trials 2
expect search-bad-on 2 "--search-on: expected val_loss or val_acc, got 'test_acc'" $TOY search $S --lr 0.1,0.2 --search-on test_acc
expect search-acc-regression 2 "--search-on val_acc: model 'toy' has no accuracy" \
    $DENSE search --train-x $D/x.npy --train-y $D/t.npy --val-split 0.5 --lr 0.1,0.2 --search-on val_acc
expect search-no-checkpoint 2 "flag '--checkpoint' does not apply to 'search'" $TOY search $S --lr 0.1,0.2 --checkpoint c.st
expect search-help 0 "loguniform:A:B" $TOY search --help
expect search-in-main-help 0 "search     train once per hyperparameter setting" $TOY --help

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

echo "e2e: $pass passed, $fail failed"
