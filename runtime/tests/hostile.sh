#!/usr/bin/env bash
# hostile.sh — issue #17: hostile input and faults. Every bad command line, data file and checkpoint is refused with
# one line naming the flag or file and the exit status of its kind (2 command line, 1 data); a step that goes
# non-finite stops before any weight is saved; stale temp files of a killed run are removed; a run killed with
# SIGKILL at random moments always leaves a checkpoint that loads and resumes.
# usage: hostile.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR, named for its configuration, and DATA_DIR;
# see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
CFG=$(basename "$BIN")
LEAKS_ON_SUCCESS=0  # this table never checked for leaks, even on success (e2e_*.sh and the unit tests do)

K="--train-x $D/x.npy --train-y $D/y.npy --batch 4 --quiet"

# ----------------------------------------------------------------------------
# the command line: one row per bad input (name | exit | message | arguments)

while IFS='|' read -r name code msg args; do
    [ -z "$name" ] && continue
    # shellcheck disable=SC2086  # the arguments split on purpose
    expect "cli-$name" "$code" "$msg" $TOY $args
done <<EOF
epochs-zero|2|error: --epochs: expected a positive integer, got '0'|train $K --epochs 0
epochs-huge|2|error: --epochs: expected an integer in [1, 1000000000], got '2000000000'|train $K --epochs 2000000000
lr-negative|2|error: --lr: expected a number in [0, inf), got '-0.1'|train $K --lr -0.1
momentum-negative|2|error: --momentum: expected a number in [0, inf), got '-1'|train $K --momentum -1
weight-decay-negative|2|error: --weight-decay: expected a number in [0, inf), got '-1e-4'|train $K --weight-decay -1e-4
flag-twice|2|error: --epochs is given twice (give each flag once)|train $K --epochs 2 --epochs 3
flag-twice-eq|2|error: --seed is given twice|train $K --seed=1 --seed=1
bool-twice|2|error: --no-shuffle is given twice|train $K --no-shuffle --no-shuffle
hparam-twice|2|error: --lr is given twice|train $K --lr 0.1 --lr 0.2
threads-three|2|error: --threads: expected 1 or 2, got 3|train $K --threads 3
val-split-one|2|error: --val-split: expected a fraction in [0, 1), got 1|train $K --val-split 1
ema-one|2|error: --ema: expected a decay below 1 (0.999 is common), got 1|train $K --ema 1
batch-over-max|2|error: --batch: 9 is more than this model's maximum batch of 8|train --train-x $D/x.npy --train-y $D/y.npy --batch 9
search-lr-negative|2|error: --lr: '-0.1,0.1' gives values outside [0, inf)|search $K --val-split 0.2 --lr -0.1,0.1
search-lr-uniform-negative|2|error: --lr: 'uniform:-1:1' gives values outside [0, inf)|search $K --val-split 0.2 --lr uniform:-1:1 --trials 2
help-epochs-range|0|--epochs N           passes over the training set (default 2); N in [1, 1000000000]|train --help
help-batch-range|0|(default 4, at most 8); N in [1, 8]|train --help
help-lr-range|0|learning rate (default 0.1); X in [0, inf)|train --help
help-val-split-range|0|F in (0, 1)|train --help
EOF

# ----------------------------------------------------------------------------
# data files: sizes a header claims are checked against the file before anything is allocated, products of
# dimensions cannot overflow, and a NaN or infinity is refused naming the file, row and column (exit 1)

while IFS='|' read -r name msg x y bin; do
    [ -z "$name" ] && continue
    expect "data-$name" 1 "$msg" ${bin:-$TOY} train --train-x "$D/$x" --train-y "$D/$y" --quiet
done <<EOF
idx-huge|huge.idx: truncated file (expected 18446744069414584320 bytes of data for shape (4294967295, 65536, 65536)|huge.idx|y.npy
idx-huge-gz|huge.idx.gz: truncated file|huge.idx.gz|y.npy
idx-dims-overflow|zero_overflow.idx: dimensions overflow (4294967295 x 4294967295)|zero_overflow.idx|y.npy
npy-huge|huge.npy: truncated file (expected 5000000000000 elements of float32; the file has 200 bytes left)|huge.npy|y.npy
npy-huge-gz|huge.npy.gz: truncated file|huge.npy.gz|y.npy
npy-dims-overflow|zero_overflow.npy: dimensions overflow (4294967296 x 4294967296)|zero_overflow.npy|y.npy
npy-nan|x_nan.npy: row 3, column 2 (counting from 0) is NaN; expected finite numbers|x_nan.npy|y.npy
npy-f64-overflow|x_inf64.npy: row 7, column 4 (counting from 0) is +inf|x_inf64.npy|y.npy
npy-target-inf|t_inf.npy: row 4, column 1 (counting from 0) is -inf|x.npy|t_inf.npy|$DENSE
csv-nan|x_nan.csv:6: column 4: 'nan' is not a finite number|x_nan.csv|y.npy
EOF
expect data-test-nan 1 "x_nan.npy: row 3, column 2" $TOY train $K --test-x $D/x_nan.npy --test-y $D/y.npy
$TOY train $K --epochs 1 --save w0.st >/dev/null
expect data-predict-nan 1 "x_nan.npy: row 3, column 2" $TOY predict --weights w0.st --input $D/x_nan.npy --output p.npy
# eval --json: the loss at full precision (a double's 17 digits), as one JSON object
expect eval-json 0 '{"test_loss":' $TOY eval --weights w0.st --test-x $D/x.npy --test-y $D/y.npy --json
check eval-json-digits '$TOY eval --weights w0.st --test-x $D/x.npy --test-y $D/y.npy --json | grep -qE "^\{\"test_loss\":[0-9]\.[0-9]{12,},\"test_acc\":[0-9.e-]+\}$"'
check eval-json-ensemble '[ "$($TOY eval --weights w0.st,w0.st --test-x $D/x.npy --test-y $D/y.npy --json | grep -c "^{")" = 3 ]'
# A CSV with a million blank lines after its rows trains in little memory (it once asked for 3.1 GB). ASan's
# shadow memory needs a large address space, so the limit applies to the plain build only.
if [ "$CFG" = plain ]; then limit="ulimit -v 2000000;"; else limit=""; fi
expect data-csv-blank-lines 0 "epoch 1/1" bash -c "$limit exec $MNIST train --train-x $D/x_blank784.csv --train-y $D/y.npy --epochs 1"

# ----------------------------------------------------------------------------
# checkpoints: every field is checked against the model before anything is used (exit 1, file, field, values)

$TOY train $K --epochs 3 --momentum 0.9 --val-split 0 --checkpoint ck.st >/dev/null
hlen=$(od -An -tu8 -N8 ck.st | tr -d ' ')
edit() { sed "s/$2/$3/" ck.st >"$1"; }  # same-length edits of the header keep the file well-formed
edit ck_batch.st '"batch":"4"' '"batch":"9"'
# (no --batch: the resumed run takes the checkpoint's, which once overflowed the arena)
expect ck-batch-over-max 1 "ck_batch.st: checkpoint field 'batch' is 9, expected 1 to 8 (this model's compiled maximum batch)" \
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --resume ck_batch.st --epochs 4
edit ck_done.st '"epochs":"3"' '"epochs":"1"'
expect ck-epochs-done 1 "ck_done.st: checkpoint field 'epochs_done' is 3, expected at most its 'epochs', 1" $TOY train $K --resume ck_done.st
edit ck_lr.st '"hp.lr":"0.10000000000000001"' '"hp.lr":"-0.1000000000000000"'
expect ck-hp-range 1 "ck_lr.st: checkpoint field 'hp.lr' is -0.10000000000000001, expected a number in [0, inf)" \
    $TOY train $K --resume ck_lr.st --epochs 4
edit ck_shuffle.st '"shuffle":"1"' '"shuffle":"7"'
expect ck-shuffle 1 "ck_shuffle.st: checkpoint field 'shuffle' is 7, expected 0 or 1" $TOY train $K --resume ck_shuffle.st --epochs 4
edit ck_vs.st '"val_split":"0"' '"val_split":"9"'
expect ck-val-split 1 "ck_vs.st: checkpoint field 'val_split' is 9, expected a fraction in [0, 1)" $TOY train $K --resume ck_vs.st --epochs 4
edit ck_hp.st '"hp.weight_decay"' '"hp.weight_decax"'
expect ck-other-optimizer 1 "ck_hp.st: checkpoint of another model 'toy' (it has no hyperparameter 'weight_decay')" \
    $TOY train $K --resume ck_hp.st --epochs 4
cp ck.st ck_nan.st
printf '\000\000\300\177' | dd of=ck_nan.st bs=1 seek=$((8 + hlen + 8)) conv=notrunc status=none  # weight element 2
expect ck-nan-weight 1 "ck_nan.st: tensor 'weight' holds NaN at element 2, expected finite values" \
    $TOY train $K --resume ck_nan.st --epochs 4
# the same weights as --init and for eval: a NaN weight is refused wherever weights are read
expect init-nan-weight 1 "ck_nan.st: tensor 'weight' holds NaN at element 2, expected finite values" $TOY train $K --init ck_nan.st
expect eval-nan-weight 1 "ck_nan.st: tensor 'weight' holds NaN at element 2" $TOY eval --weights ck_nan.st --test-x $D/x.npy --test-y $D/y.npy
check ck-valid-resumes "$TOY train $K --resume ck.st --epochs 4 >/dev/null 2>&1"

# ----------------------------------------------------------------------------
# a step that goes non-finite: the first tensor is named, and nothing is saved or checkpointed

# At --lr 1e39 (infinite as a float) the first update makes the weights infinite while that step's loss is finite.
expect step-weights-nonfinite 1 "training diverged: at step 1 (epoch 1, batch 1 of 3) weight became -inf in the update (its gradient was finite)" \
    $TOY train $K --epochs 2 --lr 1e39 --save nf.st --checkpoint nf.ck
check step-nothing-saved '[ ! -e nf.st ] && [ ! -e nf.ck ] && [ -z "$(ls -a | grep "\.tmp\.")" ]'
expect step-search-trial 0 "weight became -inf in the update" $TOY search $K --epochs 1 --val-split 0.2 --lr 0.1,1e39 --verbose
# A loss that grows by orders of magnitude and stays finite is not silent.
expect loss-growth-warning 0 "warning: the loss grew from" $TOY train $K --epochs 3 --lr 1e5
check loss-growth-once '[ "$($TOY train $K --epochs 3 --lr 1e5 2>&1 | grep -c "^warning: the loss grew")" = 1 ]'
check loss-growth-quiet-normally '! $TOY train $K --epochs 3 2>&1 | grep -q "warning:"'

# ----------------------------------------------------------------------------
# temp files of a killed run: the next run removes the stale ones (their process is gone), keeps a live one's

sh -c 'exit 0' &
dead=$!
wait $dead
printf stale >".tw.st.tmp.$dead.AbCdEf"
printf live >".tw.st.tmp.$$.GhIjKl"
expect stale-temp-note 0 "note: removed ./.tw.st.tmp.$dead.AbCdEf, left by an interrupted run (process $dead)" \
    $TOY train $K --epochs 1 --save ./tw.st
check stale-temp-removed "[ ! -e .tw.st.tmp.$dead.AbCdEf ] && [ -e .tw.st.tmp.$$.GhIjKl ] && [ -e tw.st ]"
rm -f ".tw.st.tmp.$$.GhIjKl"

# ----------------------------------------------------------------------------
# kill -9 at random moments of a checkpointed run: whatever is on disk is a checkpoint that loads and resumes

RANDOM=17  # the moments are random but the same in every run of the suite
kills=0 resumed=0 failures=""
for i in 1 2 3 4 5 6 7 8; do
    rm -f k9.ck .k9.ck.tmp.*
    $MNIST train --data $D/mnist --batch 4 --epochs 1000000 --quiet --checkpoint k9.ck >/dev/null 2>&1 &
    pid=$!
    # the moment is counted from the first checkpoint (a loaded machine may take a while to write it), so that
    # every kill lands in the middle of training: in a step, an evaluation, or a checkpoint being written
    for _ in $(seq 100); do [ -e k9.ck ] && break; sleep 0.05; done
    sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
    if [ ! -e k9.ck ]; then failures="$failures [kill $i: no checkpoint after 5 s]"; continue; fi
    done_=$(head -c 4096 k9.ck | grep -ao '"epochs_done":"[0-9]*"' | grep -o '[0-9]*')
    if $MNIST train --data $D/mnist --quiet --resume k9.ck --epochs $((done_ + 1)) --checkpoint k9.ck >k9.out 2>&1 &&
       [ -z "$(ls -a | grep '\.k9\.ck\.tmp\.')" ]; then
        resumed=$((resumed + 1))
    else
        failures="$failures [kill $i: $(tr '\n' ' ' <k9.out)]"
    fi
done
check kill9-checkpoint-always-resumes "[ -z \"$failures\" ] && [ $kills = 8 ] && [ $resumed = 8 ]"
[ -n "$failures" ] && echo "  kill -9: $kills kills, $resumed resumed; $failures"

finish hostile
