#!/usr/bin/env bash
# e2e_lbfgs.sh — full-batch L-BFGS (runtime/lbfgs.c, lbfgs_search.c) on toy_lbfgs (toy_model.c -DTOY_LBFGS: softmax
# regression plus (l2/2)·‖θ‖², strictly convex, so one minimum): the trajectory against the NumPy transcription of
# torch.optim.LBFGS (Tests/Reference/reference_lbfgs.py, through lbfgs_ref.py: every iteration's and epoch's loss within
# 1e-4 relative, the weights within 1e-4 + 1e-3·|w|), with and without the strong-Wolfe search, in chunks of --batch
# and as one chunk; convergence to the minimum Newton's method finds (the loss within 1e-6 relative, the weights within
# 2e-3); the logging and stopping tests; checkpoints (k epochs resumed to N: the weights and the JSONL of N straight
# epochs, bit for bit; bad L-BFGS histories); the flags it refuses (one line, exit 2, nothing written); divergence;
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
# checkpoints: the history (the pairs, d, t, g_prev, H_diag, the iteration count) is kept, so k epochs resumed to N
# are the N straight epochs bit for bit, for the strong-Wolfe search (history 3: full and cycling by then, in chunks
# and in one), the fixed step, and a run whose history stays empty (max-iter 1)

R="$K --log-every 1"   # what a resumed run is given; the runs it resumes start from $INIT too
# resumed NAME EPOCHS K FLAGS...: N straight epochs against K epochs, a checkpoint, and the rest resumed
resumed() {
    local name=$1 n=$2 k=$3
    shift 3
    rm -f "rs_$name.jsonl" "rr_$name.jsonl"
    $LBFGS train $R $INIT --epochs "$n" --log "rs_$name.jsonl" --save "rs_$name.st" "$@" >/dev/null
    $LBFGS train $R $INIT --epochs "$k" --log "rr_$name.jsonl" --checkpoint "rc_$name.st" "$@" >/dev/null
    expect "resume-$name" 0 "epoch $n/$n" $LBFGS train $R --epochs "$n" --resume "rc_$name.st" \
        --log "rr_$name.jsonl" --save "rr_$name.st"
    check "resume-$name-weights" 'cmp -s rs_$name.st rr_$name.st'
    check "resume-$name-jsonl" '[ "$(nosecs rs_$name.jsonl)" = "$(nosecs rr_$name.jsonl)" ]'
}
resumed wolfe 5 2 --max-iter 5 --history-size 3
resumed wolfe-k1 4 1 --max-iter 4 --history-size 3
resumed whole 4 3 --max-iter 5 --history-size 3 --batch 16
TOY_LINE_SEARCH=none resumed fixed 4 2 --lr 0.5 --max-iter 6 --history-size 3
resumed one-iteration 3 1 --max-iter 1
check resume-history-kept 'head -c 3000 rc_wolfe.st | grep -q "\"lbfgs.count\":\"3\"" && head -c 3000 rc_wolfe.st | grep -q "\"lbfgs.s\":{\"dtype\":\"F32\",\"shape\":\[3,18\]"'
check resume-empty-history 'head -c 3000 rc_one-iteration.st | grep -q "\"lbfgs.count\":\"0\"" && ! head -c 3000 rc_one-iteration.st | grep -q "lbfgs.s"'
# the weights alone (--init) start a new history: another trajectory
$LBFGS train $R --epochs 3 --max-iter 5 --history-size 3 --init rc_wolfe.st --save ri_wolfe.st >/dev/null
check resume-history-matters '! cmp -s ri_wolfe.st rs_wolfe.st'
# a checkpoint with no epoch left resumes to the same weights; a resumed run's checkpoint resumes again
expect resume-nothing-left 0 "resumed rc_whole.st: 3 of 3 epochs done" $LBFGS train ${R/--quiet/} --resume rc_whole.st --checkpoint rn_c.st
check resume-nothing-left-same-checkpoint 'cmp -s rn_c.st rc_whole.st'   # the history read back and written again
$LBFGS train $R $INIT --epochs 2 --max-iter 5 --history-size 3 --checkpoint chain.st >/dev/null
$LBFGS train $R --epochs 4 --resume chain.st --checkpoint chain.st >/dev/null
expect resume-chain 0 "resumed chain.st: 4 of 5 epochs done" $LBFGS train ${R/--quiet/} --epochs 5 --resume chain.st --save chain5.st
check resume-chain-weights 'cmp -s chain5.st rs_wolfe.st'
# a smaller --history-size keeps the newest pairs; a hyperparameter changes the run from there on
expect resume-smaller-history 0 "epoch 5/5" $LBFGS train $R --epochs 5 --resume rc_wolfe.st --history-size 1 --save rh.st
check resume-smaller-history-differs '! cmp -s rh.st rs_wolfe.st'
# bad histories: one line, exit 1 (the key renamed keeps the header's length)
sed 's/"lbfgs.n_iter"/"lbfgs.x_iter"/' rc_wolfe.st >old.st
expect resume-no-history 1 "old.st: the checkpoint has no L-BFGS history (an older trainer wrote it)" $LBFGS train $R --resume old.st --epochs 5
sed 's/"lbfgs.t":"1"/"lbfgs.t":"x"/' rc_wolfe.st >bad_t.st
expect resume-bad-t 1 "bad_t.st: corrupt checkpoint (metadata 'lbfgs.t' is 'x', expected a number)" $LBFGS train $R --resume bad_t.st --epochs 5
sed -E 's/"lbfgs.H_diag":"0/"lbfgs.H_diag":"-/' rc_wolfe.st >bad_h.st
expect resume-bad-h-diag 1 "bad_h.st: corrupt checkpoint (L-BFGS's step length" $LBFGS train $R --resume bad_h.st --epochs 5
sed 's/"lbfgs.count":"3"/"lbfgs.count":"2"/' rc_wolfe.st >bad_count.st
expect resume-bad-count 1 "bad_count.st: tensor 'lbfgs.s' has shape (3, 18), expected (2, 18)" $LBFGS train $R --resume bad_count.st --epochs 5
sed 's/"lbfgs.y"/"lbfgs.z"/' rc_wolfe.st >bad_y.st
expect resume-bad-tensor 1 "bad_y.st: corrupt checkpoint (no tensor 'lbfgs.y')" $LBFGS train $R --resume bad_y.st --epochs 5
# another model's checkpoint (the SGD toy's) is refused before the history is looked for
$TOY train $K --epochs 1 --checkpoint sgd.st >/dev/null
expect resume-other-model 1 "sgd.st: checkpoint of" $LBFGS train $R --resume sgd.st --epochs 2

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
