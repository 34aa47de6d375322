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

finish e2e-search
