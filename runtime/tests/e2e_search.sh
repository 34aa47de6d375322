#!/usr/bin/env bash
# e2e_search.sh — search: one training run per hyperparameter setting (grid or random), ranked on the
# validation set.
# usage: e2e_search.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

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
expect search-needs-validation 2 "search: needs a validation set (--val-split F with F > 0, or --val-x and --val-y)" \
    $TOY search --train-x $D/x.npy --train-y $D/y.npy --val-split 0 --lr 0.1,0.2
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
# k-fold cross-validation: the folds are disjoint and cover the set, the same for every setting; a setting's score
# is the mean ± std (NumPy's np.std, ddof 0) of its folds' scores; --save trains the best on all the data

F="--train-x $D/x.npy --train-y $D/y.npy --batch 8 --epochs 1 --no-shuffle"
rm -f kf.trace
TOY_TRACE=kf.trace $TOY search $F --folds 5 --lr 0.1,0.2 --log kf.jsonl --save kf.st >kf.out
check kfold-runs '[ "$(wc -l <kf.trace)" -eq 12 ]'  # 2 settings × 5 folds of one step, then the refit: 2 steps
# the samples run k did not train on: its validation fold
held() { sed -n "${1}p" kf.trace | cut -d" " -f10- | tr " " "\n" | sort | comm -13 - <(seq 0 9) | tr "\n" " "; }
folds_ok() {
    local k all=""
    for k in 1 2 3 4 5; do
        [ "$(held $k | wc -w)" -eq 2 ] || return 1
        [ "$(held $k)" = "$(held $((k + 5)))" ] || return 1  # the second setting's folds are the first's
        all="$all$(held $k)"
    done
    [ "$(tr " " "\n" <<<"$all" | grep . | sort -n | tr "\n" " ")" = "0 1 2 3 4 5 6 7 8 9 " ]
}
check kfold-disjoint-cover folds_ok
check kfold-refit-all '[ "$(sed -n 11,12p kf.trace | cut -d" " -f8 | tr "\n" " ")" = "8 2 " ]'
# mean and std of the folds' val_loss and val_acc, as logged, against the per-fold values of the same line
stats_ok() {  # stats_ok METRIC: trial 1's METRIC and METRIC_std equal the mean and population std of its folds'
    local line mean std
    line=$(grep '^{"trial":1,' kf.jsonl)
    mean=$(sed -E 's/^\{"trial":[0-9]+,"hparams":\{[^}]*\},"val_loss":([^,]*),"val_acc":([^,]*),.*/\1 \2/' <<<"$line" |
           cut -d" " -f"$([ "$1" = val_loss ] && echo 1 || echo 2)")
    std=$(sed -E "s/.*\"$1_std\":([^,]*),.*/\1/" <<<"$line")
    sed -E 's/.*"folds":\[(.*)\],"epochs".*/\1/' <<<"$line" | grep -oE "\"$1\":[^,}]*" | cut -d: -f2 |
        awk -v m="$mean" -v s="$std" '{ x[NR] = $1; t += $1 } END {
            mu = t / NR; for (i = 1; i <= NR; i++) v += (x[i] - mu) ^ 2; sd = sqrt(v / NR)
            d1 = (mu - m) / (m > 0 ? m : 1); d2 = (sd - s) / (s > 0 ? s : 1)
            exit !(NR == 5 && d1 * d1 < 1e-14 && d2 * d2 < 1e-14) }'  # the log has 9 significant digits
}
check kfold-mean-std-loss 'stats_ok val_loss'
check kfold-mean-std-acc 'stats_ok val_acc'
check kfold-console 'grep -qE "^trial 1/2  --lr 0.1  val_loss [0-9.]+ ± [0-9.]+  val_acc [0-9.]+ ± [0-9.]+  \(1 epoch per fold\)" kf.out'
kbest=$(sed -E 's/^\{"best":\{"trial":([0-9]+),.*/\1/;t;d' kf.jsonl)
klr=$(grep "^trial $kbest/" kf.out | sed -E "s/^trial [0-9]+\/2  --lr ([0-9.]+) .*/\1/")
$TOY train $F --val-split 0 --lr "$klr" --quiet --save kf_train.st >/dev/null
check kfold-refit-is-train 'grep -q "^saved kf.st (trial $kbest.s setting trained on all 10 training samples for 1 epochs)$" kf.out && cmp -s kf.st kf_train.st'
$TOY search $F --folds 5 --lr 0.1,0.2 --normalize feature >kfn.out 2>&1
check kfold-normalize-per-fold 'grep -q "^best: trial" kfn.out && [ "$(nosec kfn.out | grep "^trial 1/")" != "$(nosec kf.out | grep "^trial 1/")" ]'
expect kfold-one 2 "--folds: expected at least 2 folds (one fold would leave nothing to train on), got 1" $TOY search $F --folds 1 --lr 0.1,0.2
expect kfold-over-limit 2 "--folds: expected a number of folds from 2 to 100" $TOY search $F --folds 101 --lr 0.1,0.2
expect jobs-over-limit 2 "--jobs: expected a number of processes from 1 to 256" $TOY search $F --jobs 257 --lr 0.1,0.2
expect kfold-too-many 2 "--folds 11: the training set has only 10 samples" $TOY search $F --folds 11 --lr 0.1,0.2
expect kfold-and-split 2 "--folds: the folds are the validation sets; not with --val-split" $TOY search $F --folds 3 --val-split 0.2 --lr 0.1,0.2
expect kfold-and-early-stop 2 "--folds: not with --early-stop" $TOY search $F --folds 3 --early-stop 2 --lr 0.1,0.2
expect kfold-train-flag 2 "flag '--folds' does not apply to 'train'" $TOY train $F --folds 3

# ----------------------------------------------------------------------------
# --jobs: trials side by side, one process each; the same lines, log and saved weights as one at a time

$TOY search $S --lr 0.01,0.1 --momentum 0,0.9 --jobs 2 --save sj.st --log sj.jsonl >sj.out
check jobs-same-lines '[ "$(nosec se.out | grep -v "^search:\|^saved")" = "$(nosec sj.out | grep -v "^search:\|^saved")" ] && grep -q "; 2 processes$" sj.out'
check jobs-same-log '[ "$(sed -E "s/,\"seconds\":[^}]*//" se.jsonl)" = "$(sed -E "s/,\"seconds\":[^}]*//" sj.jsonl)" ]'
check jobs-same-weights 'cmp -s se.st sj.st'
$TOY search $F --folds 5 --lr 0.1,0.2 --jobs 3 --log kfj.jsonl >/dev/null
check jobs-folds 'diff <(sed -E "s/,\"seconds\":[^}]*//" kf.jsonl) <(sed -E "s/,\"seconds\":[^}]*//" kfj.jsonl) >/dev/null'
expect jobs-threads 2 "--jobs 2: each trial runs in a process of its own on one thread; not with --threads 2" $TOY search $S --lr 0.1,0.2 --jobs 2 --threads 2
# a trial's process killed: the search stops with a message, and the other trials' processes end too
LONG="--train-x $D/x.npy --train-y $D/y.npy --batch 1 --val-split 0.2 --epochs 1000000 --lr 0.01,0.02 --jobs 2"
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 $TOY search $LONG >jk.out 2>&1 &
jpid=$!
kids=""
for _ in $(seq 300); do kids=$(ps -o pid= --ppid $jpid | tr -d " " | tr "\n" " "); [ "$(wc -w <<<"$kids")" -eq 2 ] && break; sleep 0.1; done
kill -9 ${kids%% *} 2>/dev/null
wait $jpid
jrc=$?
sleep 0.5
check jobs-child-killed '[ "$jrc" -eq 1 ] && grep -q "error: search: trial [12].s process was killed by signal 9; the search stops" jk.out'
check jobs-others-stopped '! ps -o stat= -p ${kids##* } 2>/dev/null | grep -qv "^Z"'
# the search killed: its trials' processes end with it
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 $TOY search $LONG >/dev/null 2>&1 &
jpid=$!
for _ in $(seq 300); do kids=$(ps -o pid= --ppid $jpid | tr -d " " | tr "\n" " "); [ "$(wc -w <<<"$kids")" -eq 2 ] && break; sleep 0.1; done
kill -9 $jpid
wait $jpid 2>/dev/null
# alive: still running (a zombie no one reaped is dead: its new parent, maybe not a reaping init, may leave it)
orphans() { local k st; for k in $kids; do st=$(ps -o stat= -p $k 2>/dev/null); [ -n "$st" ] && [ "${st#Z}" = "$st" ] && return 0; done; return 1; }
for _ in $(seq 200); do orphans || break; sleep 0.1; done
check jobs-parent-killed '[ -n "$kids" ] && ! orphans'

# ----------------------------------------------------------------------------
# --prune halving: 9 settings get 1 epoch, the best 3 get 3, the best of those 9 (= --epochs); each rung's
# survivors are the best of the rung before, and a setting's score is train's for its budget

H="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --val-split 0.2 --epochs 9"
$TOY search $H --lr 0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.3,0.5 --prune halving --log h.jsonl >h.out
check halving-header 'grep -q "; successive halving over 3 rungs of 1, 3, 9 epochs, keeping the best 1/3 at each$" h.out'
check halving-rungs 'grep -q "^rung 1/3: 9 trials, 1 epoch each$" h.out && grep -q "^rung 2/3: the best 3, 3 epochs each$" h.out && grep -q "^rung 3/3: the best 1, 9 epochs each$" h.out'
check halving-counts '[ "$(grep -c "\"rung\":1," h.jsonl) $(grep -c "\"rung\":2," h.jsonl) $(grep -c "\"rung\":3," h.jsonl)" = "9 3 1" ]'
# the survivors of rung R: the best (lowest val_loss; ties: the earlier trial) of rung R-1, in trial order
top() { grep "\"rung\":$1," h.jsonl | sed -E 's/^\{"trial":([0-9]+),.*"val_loss":([^,]*),.*/\2 \1/' | sort -k1,1g -k2,2n | head -$2 | cut -d" " -f2 | sort -n | tr "\n" " "; }
ran() { grep "\"rung\":$1," h.jsonl | sed -E 's/^\{"trial":([0-9]+),.*/\1/' | tr "\n" " "; }
check halving-survivors-2 '[ "$(top 1 3)" = "$(ran 2)" ]'
check halving-survivors-3 '[ "$(top 2 1)" = "$(ran 3)" ]'
check halving-budgets 'grep "\"rung\":1," h.jsonl | grep -q "\"epochs\":1," && grep "\"rung\":3," h.jsonl | grep -q "\"epochs\":9,"'
hbest=$(ran 3 | tr -d " ")
hlr=$(grep "^trial $hbest/" h.out | tail -1 | sed -E "s/^trial [0-9]+\/9  --lr ([0-9.]+) .*/\1/")
rm -f h_train.jsonl
$TOY train $H --quiet --lr "$hlr" --log h_train.jsonl >/dev/null
hgot=$(grep "^trial $hbest/" h.out | tail -1 | sed -E "s/.*val_loss ([0-9.]+)  val_acc ([0-9.]+) .*/\1 \2/")
hwant=$(tail -1 h_train.jsonl | sed -E 's/.*"val_loss":([^,]*),"val_acc":([^,]*),.*/\1 \2/' | awk '{ printf "%.4f %.4f", $1, $2 }')
check halving-last-is-train '[ "$hgot" = "$hwant" ] && grep -q "^best: trial $hbest  " h.out'
expect halving-bad-name 2 "--prune: expected halving, got 'median'" $TOY search $H --lr 0.1,0.2 --prune median
expect halving-factor-one 2 "--prune-factor: expected an integer of at least 2, got 1" $TOY search $H --lr 0.1,0.2 --prune halving --prune-factor 1
expect halving-factor-alone 2 "--prune-factor: needs --prune halving" $TOY search $H --lr 0.1,0.2 --prune-factor 2
expect halving-one-rung 2 "--prune halving: --epochs 2 leaves one rung; successive halving needs --epochs of at least --prune-factor (3)" \
    $TOY search ${H/--epochs 9/--epochs 2} --lr 0.1,0.2 --prune halving

finish e2e-search
