#!/usr/bin/env bash
# e2e_train.sh — the training loop (order, partial last batch, shuffling, logging), gradcheck and --profile.
# usage: e2e_train.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# Weights the checks below compare against or load (as e2e_data.sh and e2e_predict.sh train them).
$TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 2 --batch 4 --quiet --save w_x.npy_y.npy.st >/dev/null
$TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --quiet --save a.st >/dev/null

# ----------------------------------------------------------------------------
# the training loop: order, partial last batch, shuffling, logging

rm -f trace1 trace2 trace3 trace4
TOY_TRACE=trace1 $TOY train --train-x $D/x.npy --train-y $D/y.npy --val-split 0 --epochs 2 --batch 4 --no-shuffle --quiet \
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
TOY_TRACE=trace2 $TOY train --train-x $D/x.npy --train-y $D/y.npy --val-split 0 --epochs 2 --batch 4 --seed 7 --quiet >/dev/null
TOY_TRACE=trace3 $TOY train --train-x $D/x.npy --train-y $D/y.npy --val-split 0 --epochs 2 --batch 4 --seed 7 --quiet >/dev/null
TOY_TRACE=trace4 $TOY train --train-x $D/x.npy --train-y $D/y.npy --val-split 0 --epochs 2 --batch 4 --seed 8 --quiet >/dev/null
check shuffle-deterministic 'cmp -s trace2 trace3'
check shuffle-seed-matters '! cmp -s trace2 trace4'
check shuffle-epochs-differ '[ "$(head -1 trace2 | cut -d" " -f10-)" != "$(sed -n 4p trace2 | cut -d" " -f10-)" ]'
check shuffle-permutation '[ "$(head -3 trace2 | cut -d" " -f10- | tr " " "\n" | sort -n | tr "\n" " ")" = "0 1 2 3 4 5 6 7 8 9 " ]'
$TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --val-split 0 --epochs 3 --quiet --log m2.jsonl --log-every 2 --lr 0.25 >out2
check jsonl-every-k '[ "$(grep -c "\"step\"" m2.jsonl)" -eq 4 ] && grep -q "^{\"step\":8,\"epoch\":3," m2.jsonl'
check jsonl-lr-override 'grep -q "\"lr\":0.25}" m2.jsonl'
check jsonl-test 'grep -q "^{\"epoch\":3,\"train_loss\":[0-9.e+-]*,\"test_loss\":[0-9.e+-]*,\"test_acc\":[0-9.e+-]*,\"seconds\":" m2.jsonl'
check summary-line 'grep -qE "^epoch 3/3  train_loss [0-9.]+  test_loss [0-9.]+  test_acc [0-9.]+  [0-9.]+s$" out2'
$TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 1 >out3 2>err3
check no-bar-without-tty '[ ! -s err3 ]'
check hparams-change-result '$TOY train --train-x $D/x.npy --train-y $D/y.npy --quiet --momentum 0.9 --weight-decay=0.01 --save hp.st >/dev/null && ! cmp -s hp.st w_x.npy_y.npy.st'

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

P="--train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --val-split 0 --epochs 2 --batch 4 --quiet"
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

finish e2e-train
