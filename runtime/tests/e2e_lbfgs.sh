#!/usr/bin/env bash
# e2e_lbfgs.sh — full-batch L-BFGS (runtime/lbfgs.c, lbfgs_search.c) on toy_lbfgs (toy_model.c -DTOY_LBFGS: softmax
# regression plus (l2/2)·‖θ‖², strictly convex, so one minimum): the trajectory against the NumPy transcription of
# torch.optim.LBFGS (Tests/Reference/reference_lbfgs.py, through lbfgs_ref.py: every iteration's and epoch's loss within
# 1e-4 relative, the weights within 1e-4 + 1e-3·|w|), with and without the strong-Wolfe search, in chunks of --batch
# and as one chunk; convergence to the minimum Newton's method finds (the loss within 1e-6 relative, the weights within
# 2e-3); the logging and stopping tests; the flags it refuses (one line, exit 2, nothing written); divergence;
# --profile; doctor.
# usage: e2e_lbfgs.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

DATA="--train-x $D/x.npy --train-y $D/y.npy"
K="$DATA --val-split 0 --quiet"
# the references start from weights written here; without NumPy the runs start from the seeded init (and the
# comparisons skip)
INIT=""
if [ -n "$NUMPY" ] && python3 "$PY_REF" init init.st 7 >/dev/null; then INIT="--init init.st"; fi

# lbfgs NAME FLAGS...: trains toy_lbfgs from the init with FLAGS into NAME.jsonl and NAME.st (exit 0, no sanitizer report)
lbfgs() {
    local name=$1
    shift
    rm -f "$name.jsonl" "$name.st"
    expect "run-$name" 0 "" $LBFGS train $K $INIT --log-every "${EVERY:-1}" --log "$name.jsonl" --save "$name.st" "$@"
}

# ----------------------------------------------------------------------------
# the trajectory: short runs, where float32 and float64 take the same path

lbfgs wolfe --epochs 3 --max-iter 5 --history-size 3          # chunks of 4, 4 and 2 samples
pyref trajectory-strong-wolfe trajectory $D/x.npy $D/y.npy init.st wolfe.jsonl wolfe.st max_iter=5 history_size=3
lbfgs whole --epochs 3 --max-iter 5 --history-size 3 --batch 16  # the whole set in one chunk, gathered once
pyref trajectory-one-chunk trajectory $D/x.npy $D/y.npy init.st whole.jsonl whole.st max_iter=5 history_size=3
TOY_LINE_SEARCH=none lbfgs fixed --epochs 3 --lr 0.5 --max-iter 6
pyref trajectory-fixed-step trajectory $D/x.npy $D/y.npy init.st fixed.jsonl fixed.st --fixed-step lr=0.5 max_iter=6
lbfgs hist1 --epochs 2 --max-iter 8 --history-size 1            # the history full from the second pair on
pyref trajectory-history-1 trajectory $D/x.npy $D/y.npy init.st hist1.jsonl hist1.st max_iter=8 history_size=1
lbfgs l2 --epochs 2 --max-iter 6 --l2 0.3
pyref trajectory-l2 trajectory $D/x.npy $D/y.npy init.st l2.jsonl l2.st max_iter=6 l2=0.3
check chunks-change-only-rounding '[ "$(grep -c "\"step\"" wolfe.jsonl)" = "$(grep -c "\"step\"" whole.jsonl)" ]'

# ----------------------------------------------------------------------------
# convergence: the unique minimum

lbfgs conv --epochs 4
pyref converges-to-minimum minimum $D/x.npy $D/y.npy conv.st 0.05 init.st
lbfgs conv2 --epochs 3 --l2 0.2 --batch 16
pyref converges-to-minimum-l2 minimum $D/x.npy $D/y.npy conv2.st 0.2 init.st
TOY_LINE_SEARCH=none lbfgs conv3 --epochs 6 --lr 0.5
pyref converges-fixed-step minimum $D/x.npy $D/y.npy conv3.st 0.05 init.st
# once converged, an epoch stops at its first test: one iteration, the same loss
check converged-epochs-still '[ "$(grep "\"train_loss\"" conv.jsonl | tail -2 | sed "s/,\"seconds.*//; s/.*train_loss//" | uniq | wc -l)" -eq 1 ]'

# ----------------------------------------------------------------------------
# the log and the stopping tests

# every iteration is a step logged with the loss at its start; an epoch's train_loss is its first iteration's loss
first_losses() { awk -F'[:,]' '/"step"/ && $4 != e { e = $4; print $6 }' "$1"; }
epoch_losses() { sed -n 's/.*"train_loss":\([^,]*\),.*/\1/p' "$1"; }
check log-epoch-loss-is-first-iteration '[ "$(first_losses wolfe.jsonl)" = "$(epoch_losses wolfe.jsonl)" ] && [ "$(epoch_losses wolfe.jsonl | wc -l)" -eq 3 ]'
check log-steps-numbered '[ "$(grep "\"step\"" wolfe.jsonl | sed "s/{\"step\":\([0-9]*\),.*/\1/" | tr "\n" " ")" = "$(seq -s " " 1 "$(grep -c "\"step\"" wolfe.jsonl)") " ]'
check log-lr '! grep "\"step\"" fixed.jsonl | grep -qv "\"lr\":0.5}"'
check log-max-iter '[ "$(grep -c "\"step\":[0-9]*,\"epoch\":1," fixed.jsonl)" -eq 6 ]'   # the fixed step: one evaluation each
EVERY=3 lbfgs every --epochs 2 --max-iter 5
check log-every '[ "$(grep "\"step\"" every.jsonl | sed "s/{\"step\":\([0-9]*\),.*/\1/" | tr "\n" " ")" = "3 6 9 " ]'
lbfgs maxeval --epochs 3 --max-eval 1                           # the first iteration's search uses it up
check max-eval-one-iteration '[ "$(grep -c "\"step\"" maxeval.jsonl)" -eq 3 ]'
lbfgs tolgrad --epochs 2 --tolerance-grad 100                    # optimal already: no iteration at all
check tolerance-grad-no-iteration '[ "$(grep -c "\"step\"" tolgrad.jsonl)" -eq 0 ] && [ "$(epoch_losses tolgrad.jsonl | uniq | wc -l)" -eq 1 ]'
lbfgs tolchange --epochs 2 --tolerance-change 1                  # the loss changes by less than 1: one iteration each
check tolerance-change-one-iteration '[ "$(grep -c "\"step\"" tolchange.jsonl)" -eq 2 ]'
# the test set is evaluated at every epoch's end, and a checkpoint's weights start another run (--init)
expect test-set 0 "epoch 2/2  train_loss" $LBFGS train $K --epochs 2 --test-x $D/x.npy --test-y $D/y.npy
expect checkpoint-written 0 "checkpoint ck.st (2 epochs" $LBFGS train ${K/--quiet/} --epochs 2 --checkpoint ck.st
expect checkpoint-as-init 0 "saved ck_init.st" $LBFGS train ${K/--quiet/} --epochs 1 --init ck.st --save ck_init.st
expect gradcheck 0 "gradcheck: passed" $LBFGS gradcheck
expect search 0 "best: trial" $LBFGS search $DATA --quiet --epochs 2 --l2 0.01,0.1 --val-split 0.3

# ----------------------------------------------------------------------------
# what it refuses: one line naming the flag, exit 2, no weights file

# refuse NAME SUBSTRING FLAGS...
refuse() {
    local name=$1 sub=$2
    shift 2
    rm -f refused.st
    expect "refuses-$name" 2 "$sub" $LBFGS train $K --save refused.st "$@"
    local lines
    lines=$($LBFGS train $K --save refused.st "$@" 2>&1 >/dev/null | wc -l)
    if [ "$lines" -eq 1 ] && [ ! -e refused.st ]; then ok "refuses-$name-one-line"
    else bad "refuses-$name-one-line" "$lines lines on stderr, or refused.st written"; fi
}
refuse resume "--resume: L-BFGS keeps its history" --resume ck.st --epochs 3
refuse resume-done "--resume: L-BFGS keeps its history" --resume ck.st   # even with no epoch left to run
refuse steps "--steps: L-BFGS takes one step per epoch" --steps 3
refuse ema "--ema: L-BFGS takes one step per epoch" --ema 0.9
refuse swa "--swa-start: L-BFGS's steps come from its line search" --swa-start 1 --swa-lr 0.1
refuse snapshots "--snapshots: L-BFGS's steps come from its line search" --snapshots 2 --epochs 2
refuse mixup "--mixup: model 'toy' has no soft-target training step" --mixup 0.2
refuse history-fraction "--history-size: L-BFGS counts it in whole numbers, got 2.5" --history-size 2.5
refuse history-zero "--history-size: expected a number in [1, inf), got '0'" --history-size 0
refuse max-iter-zero "--max-iter: expected a number in [1, inf), got '0'" --max-iter 0
refuse max-iter-fraction "--max-iter: L-BFGS counts it in whole numbers, got 1.5" --max-iter 1.5
refuse max-eval-fraction "--max-eval: L-BFGS counts it in whole numbers, got 2.5" --max-eval 2.5

# divergence: a loss that overflows inside the line search (or at the fixed step) stops training, exit 1, no weights
rm -f dv.st
expect diverges-in-line-search 1 "the loss at step length t = " $LBFGS train $K --epochs 2 --lr 1e30 --save dv.st
check diverges-no-weights '[ ! -e dv.st ]'
TOY_LINE_SEARCH=none expect diverges-fixed-step 1 "training diverged" $LBFGS train $K --epochs 2 --lr 1e30 --save dv.st
check diverges-fixed-step-no-weights '[ ! -e dv.st ]'

# ----------------------------------------------------------------------------
# --profile counts every train_step call of the loss evaluations as a step; doctor skips the checks that take steps

# clean LOG: no sanitizer report in a run's output whose exit status the check does not decide
clean() { if grep -qE "Sanitizer|runtime error:" "$2"; then bad "$1" "sanitizer report: $(cat "$2")"; else ok "$1"; fi; }
$LBFGS train $K --epochs 2 --profile >prof.txt 2>&1
clean profile-clean prof.txt
check profile-counts-evaluations 'grep -qE "^profile: 2 epochs, [1-9][0-9]* steps, 3\.[0-9] samples per step" prof.txt'
check profile-step-time 'grep -qE "^    train_step total +[0-9.]+ +100\.0 " prof.txt'
$LBFGS doctor $DATA >doctor.txt 2>&1
clean doctor-clean doctor.txt
for c in overfit "update ratio" learning "lr range test"; do
    check "doctor-skips-$c" 'grep -qE "^SKIP  $c +the model trains with full-batch L-BFGS" doctor.txt'
done
check doctor-still-checks 'grep -qE "^PASS  gradcheck" doctor.txt && grep -qE "^(PASS|FAIL)  initial loss" doctor.txt'

finish e2e-lbfgs
