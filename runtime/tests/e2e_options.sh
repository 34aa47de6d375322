#!/usr/bin/env bash
# e2e_options.sh — train's options: validation sets, --early-stop, --reduce-lr-on-plateau, --ema and SWA's
# --swa-anneal-epochs, each against a reference and resumed bit-identically.
# usage: e2e_options.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

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
expect val-split-one 2 "--val-split: expected a fraction in [0, 1), got 1" $TOY train $V2 --val-split 1
# the default: 10 % held out (1 of the 10 samples); --val-split 0: none, every sample trains
expect val-split-default 0 "val_loss" $TOY train $V2
$TOY train $V2 --val-split 0 --verbose >vs0.out 2>&1
check val-split-zero-none '! grep -q "val_loss" vs0.out && grep -q "data: train 10 samples" vs0.out && ! grep -q "data: validation" vs0.out'
$TOY train $V2 --verbose >vsd.out 2>&1
check val-split-default-sizes 'grep -q "data: train 9 samples" vsd.out && grep -q "data: validation 1 samples" vsd.out'
expect val-split-negative 2 "--val-split: expected a non-negative number, got '-0.1'" $TOY train $V2 --val-split -0.1
expect val-split-and-files 2 "train: give either --val-split or --val-x/--val-y, not both" $TOY train $V2 --val-split 0 --val-x $D/x.npy --val-y $D/y.npy
# a set of 4 samples leaves none for a 10 % split: no validation by default (and early stopping then says why)
printf '0,0,0,0,0,0\n1,1,1,1,1,1\n0,1,0,1,0,0\n1,0,1,0,1,1\n' >tiny.csv
$TOY train --train-x tiny.csv --label-column -1 --epochs 2 --quiet >tiny.out 2>&1
check val-split-default-tiny 'grep -q "^epoch 2/2" tiny.out && ! grep -q val_loss tiny.out'
expect val-split-default-tiny-es 2 "--early-stop: the training set's 4 samples are too few for the default validation split of 0.1" \
    $TOY train --train-x tiny.csv --label-column -1 --early-stop 2
expect report-test-needs-data 2 "--report-test: reports the test split of --data DIR" $TOY train $V2 --report-test
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
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --val-split 0 --early-stop 2
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
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --val-split 0 --reduce-lr-on-plateau 2
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
# SWA's annealing: with --swa-anneal-epochs K, epoch E + j trains at LR·a + r·(1 − a), a = (1 − cos(π·min(1, j/K)))/2,
# r the schedule's rate at the first step of epoch E (torch's SWALR(anneal_epochs=K), stepped once per epoch);
# K = 0, the default, switches at once. The toy's schedule here: lr / (1 + 0.1·(step − 1)) (TOY_LR_DECAY).

SW="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --log-every 1 --val-split 0 --epochs 6 --quiet"  # 3 steps per epoch
export TOY_LR_DECAY=0.1
# lr_closed LOG E K: each of the 18 steps' logged lr against that closed form with --lr 0.1 and --swa-lr 0.02, to a
# relative 1e-8 (the log prints 9 significant digits); a step that differs is printed
lr_closed() {
    grep '"step"' "$1" | awk -v E="$2" -v K="$3" -v S=3 -v lr=0.1 -v d=0.1 -v swa=0.02 '
        function eta(t) { return lr / (1 + d * (t - 1)) }
        {   match($0, /"step":[0-9]+/); t = substr($0, RSTART + 7, RLENGTH - 7) + 0
            match($0, /"lr":[^,}]+/); v = substr($0, RSTART + 5, RLENGTH - 5) + 0
            j = int((t - 1) / S) + 1 - E
            if (j < 0) want = eta(t)
            else if (j >= K) want = swa
            else { a = (1 - cos(atan2(0, -1) * j / K)) / 2; want = swa * a + eta((E - 1) * S + 1) * (1 - a) }
            if (v - want > 1e-8 * want || want - v > 1e-8 * want) { bad++; print "step " t ": lr " v ", expected " want }
            n++ }
        END { exit !(n == 18 && bad == 0) }'
}
rm -f sa.jsonl sb.jsonl s0.jsonl sn.jsonl
$TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2 --log sa.jsonl --save sa.st >/dev/null
check swa-anneal-lr 'lr_closed sa.jsonl 3 2'
$TOY train $SW --swa-start 2 --swa-lr 0.02 --swa-anneal-epochs 3 --log sb.jsonl >/dev/null
check swa-anneal-lr-thirds 'lr_closed sb.jsonl 2 3'
# K = 0 is the switch at once, bit for bit the run without the flag
$TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 0 --log s0.jsonl --save s0.st >/dev/null
$TOY train $SW --swa-start 3 --swa-lr 0.02 --log sn.jsonl --save sn.st >/dev/null
check swa-anneal-zero-unchanged 'cmp -s s0.st sn.st && [ "$(nosecs s0.jsonl)" = "$(nosecs sn.jsonl)" ] && lr_closed sn.jsonl 3 0'
check swa-anneal-matters '! cmp -s sa.st sn.st'
# a job killed at the start of epoch k + 1 (TOY_EXIT_AT_STEP) and resumed from its last checkpoint: bit-identical
# before, at and after the epoch whose checkpoint needs the rate the annealing started from (swa.anneal_from)
for k in 2 3 4; do
    rm -f sr$k.jsonl
    TOY_EXIT_AT_STEP=$((3 * k + 1)) $TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2 --log sr$k.jsonl --checkpoint sr$k.ck >/dev/null
    $TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2 --resume sr$k.ck --log sr$k.jsonl --save sr$k.st >/dev/null
    check "swa-anneal-resume-$k" 'cmp -s sa.st sr$k.st && [ "$(nosecs sa.jsonl)" = "$(nosecs sr$k.jsonl)" ]'
done
check swa-anneal-checkpoint-keys 'head -c 2000 sr3.ck | grep -q "\"swa.count\":\"1\",\"swa.start\":\"3\",\"swa.lr\":\"0.02\",\"swa.anneal_epochs\":\"2\",\"swa.anneal_from\":\"0.0625\"" && ! head -c 2000 sr2.ck | grep -q anneal_from'
# a checkpoint inside the annealing without the rate (trained with K = 0, or the key gone): exit 2
$TOY train ${SW/--epochs 6/--epochs 3} --swa-start 3 --swa-lr 0.02 --checkpoint sk0.ck >/dev/null
expect swa-anneal-resume-without-rate 2 "--swa-anneal-epochs 2: the checkpoint sk0.ck ends inside the annealing from epoch 3 (at epoch 3) but holds no rate it started from" \
    $TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2 --resume sk0.ck
sed 's/"swa.anneal_from":"0.0625"/"swa.anneal_from":"x.0625"/' sr3.ck >sbad.ck
expect swa-anneal-corrupt 1 "sbad.ck: corrupt checkpoint (metadata 'swa.anneal_from' is 'x.0625', expected a number)" \
    $TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2 --resume sbad.ck
sed 's/"swa.anneal_from":"0.0625"/"swa.anneal_from":"-.0625"/' sr3.ck >sneg.ck
expect swa-anneal-negative 1 "sneg.ck: checkpoint field 'swa.anneal_from' is -.0625, expected a learning rate" \
    $TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2 --resume sneg.ck
# mistakes (one line, exit 2)
expect swa-anneal-negative-k 2 "--swa-anneal-epochs: expected a non-negative integer, got '-1'" $TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs -1
expect swa-anneal-alone 2 "--swa-anneal-epochs: needs --swa-start E and --swa-lr LR" $TOY train $SW --swa-anneal-epochs 2
expect swa-anneal-past-end 2 "--swa-anneal-epochs 5: the annealing epochs 3-7 run past the last epoch (--epochs 6)" \
    $TOY train $SW --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 5
expect swa-anneal-help 0 "--swa-anneal-epochs K" $TOY train --help

# ----------------------------------------------------------------------------
# SWA's options are in the checkpoint (swa.start, swa.lr, swa.anneal_epochs), and so is --snapshots: a run resumed
# without the flags is bit-identical to one that never stopped; a flag given again overrides (--swa-start 0 and
# --snapshots 0 turn one off), but not --swa-start once the checkpoint has averaged; a checkpoint without swa.lr
# (older ones) resumes without SWA, as before. The jobs are killed at the start of epoch k + 1 (TOY_EXIT_AT_STEP).

R="--train-x $D/x.npy --train-y $D/y.npy"   # what a resumed run must give again: the data
# lr_schedule LOG N: the log's N steps all at the toy's schedule's rate, lr / (1 + 0.1·(step − 1)), to a relative 1e-8
lr_schedule() {
    grep '"step"' "$1" | awk -v N="$2" '
        {   match($0, /"step":[0-9]+/); t = substr($0, RSTART + 7, RLENGTH - 7) + 0
            match($0, /"lr":[^,}]+/); v = substr($0, RSTART + 5, RLENGTH - 5) + 0
            want = 0.1 / (1 + 0.1 * (t - 1))
            if (v - want > 1e-8 * want || want - v > 1e-8 * want) { bad++; print "step " t ": lr " v ", expected " want }
            n++ }
        END { exit !(n == N && bad == 0) }'
}
# bare_resume NAME FLAGS K: the run of FLAGS killed after epoch K, then resumed with the data alone
bare_resume() {
    rm -f $1.jsonl
    TOY_EXIT_AT_STEP=$((3 * $3 + 1)) $TOY train $SW $2 --log $1.jsonl --checkpoint $1.ck >/dev/null
    $TOY train $R --resume $1.ck --log $1.jsonl --save $1.st >$1.out
}
# with the annealing (sa: --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2): before averaging, inside the
# annealing (mid-averaging, swa.anneal_from needed) and after it
for k in 2 3 4; do
    bare_resume sq$k "--swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2" $k
    check "swa-resume-bare-anneal-$k" 'cmp -s sa.st sq$k.st && [ "$(nosecs sa.jsonl)" = "$(nosecs sq$k.jsonl)" ]'
done
check swa-resume-bare-says 'grep -q "^resumed with the checkpoint'"'"'s --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2 (give the flag again to change it; --swa-start 0 turns it off)$" sq3.out'
# without it (sn: --swa-start 3 --swa-lr 0.02): before and mid-averaging
for k in 2 4; do
    bare_resume sz$k "--swa-start 3 --swa-lr 0.02" $k
    check "swa-resume-bare-$k" 'cmp -s sn.st sz$k.st && [ "$(nosecs sn.jsonl)" = "$(nosecs sz$k.jsonl)" ]'
done
# overrides. Before the average begins each flag is free, and the resumed run is the straight run with the new value
# from the start: --swa-anneal-epochs 0 on sa's checkpoint is sn, --swa-anneal-epochs 2 on sn's is sa, and
# --swa-start 4 on sn's is a run with --swa-start 4.
$TOY train $R --resume sq2.ck --swa-anneal-epochs 0 --save so1.st >/dev/null
$TOY train $R --resume sz2.ck --swa-anneal-epochs 2 --save so2.st >/dev/null
check swa-resume-override-anneal 'cmp -s so1.st sn.st && cmp -s so2.st sa.st'
rm -f s4.jsonl so3.jsonl
$TOY train $SW --swa-start 4 --swa-lr 0.02 --log s4.jsonl --save s4.st >/dev/null
head -n 8 sz2.jsonl >so3.jsonl   # the killed job's 2 epochs (4 lines each)
$TOY train $R --resume sz2.ck --swa-start 4 --log so3.jsonl --save so3.st >/dev/null
check swa-resume-override-start-before 'cmp -s so3.st s4.st && [ "$(nosecs s4.jsonl)" = "$(nosecs so3.jsonl)" ] && ! cmp -s s4.st sn.st'
# mid-averaging, --swa-lr 0.05 trains the epochs left at 0.05 (the average keeps epochs 3-4 of 0.02); the same start
# given again is no conflict
rm -f so4.jsonl
$TOY train $R --resume sz4.ck --swa-lr 0.05 --swa-start 3 --log so4.jsonl --save so4.st >so4.out
check swa-resume-override-lr '[ "$(grep -c "\"lr\":0.05[,}]" so4.jsonl)" -eq 6 ] && [ "$(grep -c "\"lr\":" so4.jsonl)" -eq 6 ] && ! cmp -s so4.st sn.st'
check swa-resume-override-says 'grep -q "^resumed sz4.ck: 4 of 6 epochs done" so4.out && ! grep -q "resumed with" so4.out'
# mid-averaging, another --swa-start is refused (the average is of the epochs from 3 on): exit 2, both values named
expect swa-resume-start-conflict 2 "--swa-start 4: the checkpoint sz4.ck has averaged 2 epochs from --swa-start 3 on" \
    $TOY train $R --resume sz4.ck --swa-start 4
expect swa-resume-start-conflict-one-line 2 "leave the flag out, or --swa-start 0 to drop the average" $TOY train $R --resume sz4.ck --swa-start 2
# --swa-start 0 turns SWA off: the schedule's rate from epoch 5 on, no average, --save the raw weights
rm -f soff.jsonl
$TOY train $R --resume sz4.ck --swa-start 0 --log soff.jsonl --save soff.st >soff.out
check swa-resume-off 'grep -q "swa: off (--swa-start 0); the checkpoint'"'"'s average of 2 epochs is dropped" soff.out && lr_schedule soff.jsonl 6 && ! grep -q "\"swa\"" soff.jsonl && ! grep -q "SWA" soff.out'
# a checkpoint of 4 epochs without SWA, resumed with --swa-start 3: the average starts afresh at epoch 5, and the end
# line and the log name the epochs it holds (5-6), not --swa-start
rm -f sf.jsonl
TOY_EXIT_AT_STEP=13 $TOY train $SW --log sf.jsonl --checkpoint sf.ck >/dev/null
$TOY train $R --resume sf.ck --swa-start 3 --swa-lr 0.02 --log sf.jsonl --save sf.st >sf.out
check swa-resume-afresh 'grep -q "^swa starts afresh: the checkpoint was trained without --swa-start$" sf.out && grep -q "^swa: the average of epochs 5-6 (2)" sf.out && grep -q "\"swa\":{\"start\":5,\"epochs\":2}" sf.jsonl'
expect swa-start-zero-fresh 2 "--swa-start 0: turns a checkpoint's SWA off at --resume only" $TOY train $SW --swa-start 0 --swa-lr 0.02
expect swa-resume-lr-alone 2 "--swa-lr: needs --swa-start E too" $TOY train $R --resume sz4.ck --swa-start 0 --swa-lr 0.02
# a checkpoint's option that no longer fits names it: --epochs 2 on sa's checkpoint ends before its --swa-start 3
expect swa-resume-past-end 2 "--swa-start 3: past the last epoch (--epochs 2); SWA averages the epochs from E to the last; the checkpoint sq2.ck gave --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2" \
    $TOY train $R --resume sq2.ck --epochs 2
# an older checkpoint (no swa.lr, swa.anneal_epochs: renamed, which the loader ignores) resumes without SWA and says
# how to go on averaging; with the flags given again it is the straight run, as before
sed 's/"swa.lr":/"swa.LR":/; s/"swa.anneal_epochs":/"swa.anneal_EPOCHS":/' sq3.ck >sold.ck
rm -f sold.jsonl
$TOY train $R --resume sold.ck --log sold.jsonl --save sold.st >sold.out
check swa-resume-older 'grep -q "swa: the checkpoint was trained with --swa-start 3 but keeps no --swa-lr" sold.out && ! grep -q "\"swa\"" sold.jsonl && ! cmp -s sold.st sa.st'
head -n 12 sq3.jsonl >sold2.jsonl   # the killed job's 3 epochs
$TOY train $R --resume sold.ck --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2 --log sold2.jsonl --save sold2.st >/dev/null
check swa-resume-older-flags 'cmp -s sold2.st sa.st && [ "$(nosecs sa.jsonl)" = "$(nosecs sold2.jsonl)" ]'
# corrupt values: one line naming the file and the key, exit 1 (same length, so the header stays readable)
sed 's/"swa.lr":"0.02"/"swa.lr":"x.02"/' sq3.ck >sc1.ck
expect swa-corrupt-lr 1 "sc1.ck: corrupt checkpoint (metadata 'swa.lr' is 'x.02', expected a number)" $TOY train $R --resume sc1.ck
sed 's/"swa.lr":"0.02"/"swa.lr":"-.02"/' sq3.ck >sc2.ck
expect swa-corrupt-lr-negative 1 "sc2.ck: checkpoint field 'swa.lr' is -.02, expected a learning rate (a finite number > 0)" $TOY train $R --resume sc2.ck
sed 's/"swa.anneal_epochs":"2"/"swa.anneal_epochs":"9"/' sq3.ck >sc3.ck
expect swa-corrupt-anneal-epochs 1 "sc3.ck: checkpoint field 'swa.anneal_epochs' is 9, expected a number of epochs from 0 to 4 (within its 'epochs')" $TOY train $R --resume sc3.ck
sed 's/"swa.anneal_epochs":"2"/"swa.anneal_epochs":"-"/' sq3.ck >sc4.ck
expect swa-corrupt-anneal-epochs-text 1 "sc4.ck: corrupt checkpoint (metadata 'swa.anneal_epochs' is '-', expected an integer >= 0)" $TOY train $R --resume sc4.ck
sed 's/"swa.start":"3"/"swa.start":"7"/' sq3.ck >sc5.ck
expect swa-corrupt-start 1 "sc5.ck: checkpoint field 'swa.start' is 7, expected an epoch from 1 to 6 (within its 'epochs')" $TOY train $R --resume sc5.ck
for f in sc1 sc2 sc3 sc4 sc5; do
    check "swa-corrupt-one-line-$f" '[ "$($TOY train $R --resume $f.ck 2>&1 | wc -l)" -eq 1 ]'
done

# --snapshots is kept too: the cycles of a run resumed without it end where the straight run's do, and every
# snapshot file is the same
rm -f np.jsonl
$TOY train $SW --snapshots 3 --log np.jsonl --save np.st >/dev/null
bare_resume nq "--snapshots 3 --save nq.st" 3
check snapshots-resume-bare 'cmp -s np.st nq.st && [ "$(nosecs np.jsonl)" = "$(nosecs nq.jsonl)" ] && cmp -s np.st.snap1.safetensors nq.st.snap1.safetensors &&
    cmp -s np.st.snap2.safetensors nq.st.snap2.safetensors && cmp -s np.st.snap3.safetensors nq.st.snap3.safetensors'
check snapshots-resume-says 'grep -q "^resumed with the checkpoint'"'"'s --snapshots 3 (give the flag again to change it; --snapshots 0 turns it off)$" nq.out'
check snapshots-checkpoint-key 'head -c 2000 nq.ck | grep -q "\"snapshots\":\"3\"" && ! head -c 2000 sq3.ck | grep -q "\"snapshots\""'
expect snapshots-resume-needs-save 2 "--snapshots: needs --save W (the snapshots go to W.snap1.safetensors, …); the checkpoint nq.ck gave --snapshots 3" \
    $TOY train $R --resume nq.ck
expect snapshots-resume-not-with-swa 2 "--snapshots: not with --swa-start (each sets the learning rate); the checkpoint nq.ck gave --snapshots 3" \
    $TOY train $R --resume nq.ck --save x.st --swa-start 5 --swa-lr 0.02
expect snapshots-resume-off 0 "epoch 6/6" $TOY train $R --resume nq.ck --snapshots 0
expect snapshots-zero-fresh 2 "--snapshots 0: turns a checkpoint's snapshot ensemble off at --resume only" $TOY train $SW --snapshots 0 --save x.st
sed 's/"snapshots":"3"/"snapshots":"9"/' nq.ck >nc1.ck
expect snapshots-corrupt 1 "nc1.ck: checkpoint field 'snapshots' is 9, expected a number of cycles from 1 to 6 (within its 'epochs')" \
    $TOY train $R --resume nc1.ck --save x.st
sed 's/"snapshots":"3"/"snapshots":"0"/' nq.ck >nc2.ck
expect snapshots-corrupt-zero 1 "nc2.ck: corrupt checkpoint (metadata 'snapshots' is '0', expected an integer >= 1)" \
    $TOY train $R --resume nc2.ck --save x.st

# --steps: SWA's and the snapshots' epoch checks count the epochs the budget runs (3 steps per epoch here), not
# --epochs' default (2 for the toy): --steps 30 with --swa-start 8 is --epochs 10, bit for bit
S="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --log-every 1 --val-split 0 --quiet"
rm -f st.jsonl se.jsonl
$TOY train $S --steps 30 --swa-start 8 --swa-lr 0.02 --swa-anneal-epochs 2 --log st.jsonl --save st.st >/dev/null
$TOY train $S --epochs 10 --swa-start 8 --swa-lr 0.02 --swa-anneal-epochs 2 --log se.jsonl --save se.st >/dev/null
check swa-steps 'cmp -s st.st se.st && [ "$(nosecs st.jsonl)" = "$(nosecs se.jsonl)" ] && grep -q "\"swa\":{\"start\":8,\"epochs\":3" st.jsonl'
# and the other way: --steps 3 is 1 epoch, which ends before --swa-start 2 (it used to train without averaging)
expect swa-steps-past-end 2 "--swa-start 2: past the last epoch (--steps 3: epoch 1 is the last, at 3 steps per epoch)" \
    $TOY train $S --steps 3 --swa-start 2 --swa-lr 0.02
expect swa-steps-anneal-past-end 2 "--swa-anneal-epochs 2: the annealing epochs 3-4 run past the last epoch (--steps 7: epoch 3 is the last" \
    $TOY train $S --steps 7 --swa-start 3 --swa-lr 0.02 --swa-anneal-epochs 2
expect swa-steps-partial-epoch 0 "swa: the average of epochs 3-3 (1)" $TOY train $S --steps 7 --swa-start 3 --swa-lr 0.02
expect snapshots-steps 2 "--snapshots 4: more cycles than epochs (--steps 7: epoch 3 is the last" $TOY train $S --steps 7 --snapshots 4 --save x.st
rm -f sts.st.snap4.safetensors
expect snapshots-steps-ok 0 "" $TOY train $S --steps 12 --snapshots 4 --save sts.st
check snapshots-steps-files '[ -f sts.st.snap4.safetensors ]'
unset TOY_LR_DECAY

finish e2e-options
