#!/usr/bin/env bash
# e2e_user_data.sh — the data a user brings, through the toy trainer (5 features, 3 classes): one CSV holding the
# features and a column of class names (--label-column, --delimiter, the names kept in the weights, predict
# --labels), the input preprocessing (--scale, --normalize: statistics checked with awk, kept in weights and
# checkpoints, the range warning) and --steps.
# usage: e2e_user_data.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# A __metadata__ string of a safetensors file.
meta() { head -c 4000 "$1" | tail -c +9 | grep -ao "\"$2\":\"[^\"]*\"" | sed -E 's/^"[^"]*":"(.*)"$/\1/'; }

# ----------------------------------------------------------------------------
# one CSV: features and a label column of names (classes in sorted order: bird 0, cat 1, dog 2)

paste -d, <(tail -n +2 $D/x.csv) <(tail -n +2 $D/y.csv | awk '{ print ($1 == 0 ? "bird" : $1 == 1 ? "\"cat\"" : "dog") }') |
    sed '1i f0,f1,f2,f3,f4,kind' >lab.csv
tr , ';' <lab.csv >lab_semi.csv
sed 's/dog$/wolf/' lab.csv >lab_wolf.csv
expect csv-labels-train 0 "epoch 3/3" $TOY train --train-x lab.csv --label-column kind --epochs 3 --save lab.st --no-shuffle
$TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 3 --save num.st --no-shuffle --quiet >/dev/null
check csv-labels-same-weights 'cmp -s <(tail -c 76 lab.st) <(tail -c 76 num.st)'
check csv-class-names-kept '[ "$(meta lab.st classes) $(meta lab.st class.0) $(meta lab.st class.1) $(meta lab.st class.2)" = "3 bird cat dog" ]'
expect csv-labels-semicolon 0 "epoch 3/3" $TOY train --train-x lab_semi.csv --label-column -1 --delimiter ';' --epochs 3 --save semi.st --no-shuffle
check csv-semicolon-same-weights 'cmp -s semi.st lab.st'
expect csv-eval-by-name 0 "test_acc" $TOY eval --weights lab.st --test-x lab.csv --label-column kind
$TOY eval --weights num.st --test-x $D/x.npy --test-y $D/y.npy >num_eval.out
check csv-eval-equals-numeric '[ "$($TOY eval --weights lab.st --test-x lab.csv --label-column kind)" = "$(cat num_eval.out)" ]'
expect csv-unknown-label 1 "lab_wolf.csv: row 3 (line 4): unknown class 'wolf' in the label column 'kind' (the classes are 'bird', 'cat', 'dog')" \
    $TOY train --train-x lab.csv --label-column kind --val-x lab_wolf.csv --epochs 1
expect csv-unknown-label-eval 1 "unknown class 'wolf'" $TOY eval --weights lab.st --test-x lab_wolf.csv --label-column kind
expect csv-y-and-label-column 2 "--train-y: not with --label-column kind" $TOY train --train-x lab.csv --train-y $D/y.npy --label-column kind
expect csv-no-such-column 1 "lab.csv: --label-column species: no such column in the header (it has 'f0', 'f1', 'f2', 'f3', 'f4', 'kind')" \
    $TOY train --train-x lab.csv --label-column species
expect csv-label-column-npy 1 "x.npy: --label-column kind: expected a .csv file" $TOY train --train-x $D/x.npy --label-column kind
expect csv-bad-delimiter 2 "--delimiter: expected one character" $TOY train --train-x lab.csv --label-column kind --delimiter ';;'

# predict: the label column is left out; --labels writes names (CSV) or indices (int32 .npy)
expect predict-csv-with-labels 0 "wrote p_lab.csv (10, 3) probabilities" $TOY predict --weights lab.st --input lab.csv --label-column kind --output p_lab.csv
$TOY predict --weights num.st --input $D/x.npy --output p_num.csv >/dev/null
check predict-drops-label-column 'cmp -s p_lab.csv p_num.csv'
expect predict-labels-names 0 "wrote names.csv (10) predicted class names" $TOY predict --weights lab.st --input lab.csv --label-column kind --labels --output names.csv
check predict-labels-are-argmax '[ "$(tail -n +2 p_lab.csv | awk -F, "{ k = 0; for (j = 2; j <= 3; j++) if (\$j > \$(k + 1)) k = j - 1; print (k == 0 ? \"bird\" : k == 1 ? \"cat\" : \"dog\") }")" = "$(tail -n +2 names.csv)" ] && [ "$(head -1 names.csv)" = label ]'
expect predict-labels-npy 0 "wrote idx.npy (10) predicted class indices" $TOY predict --weights lab.st --input $D/x.npy --labels --output idx.npy
check predict-labels-npy-int32 'head -c 80 idx.npy | grep -q "<i4" && [ "$(od -An -td4 -j128 -v idx.npy | tr -s " \n" " " | sed "s/^ //; s/ $//")" = "$(tail -n +2 p_num.csv | awk -F, "{ k = 0; for (j = 2; j <= 3; j++) if (\$j > \$(k + 1)) k = j - 1; printf \"%d \", k }" | sed "s/ $//")" ]'
expect predict-labels-dense 2 "predict --labels: model 'toy' is not a classifier" $DENSE predict --weights x --input $D/x.npy --labels --output l.csv

# ----------------------------------------------------------------------------
# input preprocessing

expect normalize-feature 0 "saved nf.st" $TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 1 --val-split 0 --normalize feature --scale 0.5 --save nf.st
want_mean=$(tail -n +2 $D/x.csv | awk -F, '{ for (j = 1; j <= 5; j++) { v = $j * 0.5; s[j] += v; q[j] += v * v } } END {
    for (j = 1; j <= 5; j++) { m = s[j] / NR; printf "%s%.6g", (j > 1 ? "," : ""), m } }')
want_std=$(tail -n +2 $D/x.csv | awk -F, '{ for (j = 1; j <= 5; j++) { v = $j * 0.5; s[j] += v; q[j] += v * v } } END {
    for (j = 1; j <= 5; j++) { m = s[j] / NR; printf "%s%.6g", (j > 1 ? "," : ""), sqrt(q[j] / NR - m * m) } }')
round6() { tr , '\n' | awk '{ printf "%s%.6g", (NR > 1 ? "," : ""), $1 }'; }
check normalize-mean-is-awks '[ "$(meta nf.st input.mean | round6)" = "$want_mean" ]'
check normalize-std-is-awks '[ "$(meta nf.st input.std | round6)" = "$want_std" ]'
check normalize-scale-kept '[ "$(meta nf.st input.scale) $(meta nf.st input.normalize) $(meta nf.st input.max)" = "0.5 feature 4.5" ]'
expect normalize-channel-flat 2 "--normalize: expected none, feature (channel is for image models" \
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --normalize channel
expect scale-bad 2 "--scale: expected auto, a positive number or 1/D, got '1/0'" $TOY train --train-x $D/x.npy --train-y $D/y.npy --scale 1/0
check scale-auto-kept '[ "$(meta num.st input.scale) $(meta num.st input.normalize)" = "auto none" ]'
# the range warning: inputs 1000x the training data's
awk -F, 'NR > 1 { printf "%s,%s,%s,%s,%s\n", $1 * 1000, $2 * 1000, $3 * 1000, $4 * 1000, $5 * 1000 }' $D/x.csv >big.csv
expect range-warning 0 "warning: big.csv: its inputs reach 4500 after --scale 0.5, 1e+03 times the training inputs' largest (4.5)" \
    $TOY predict --weights nf.st --input big.csv --output big_p.npy
check range-no-warning-on-own-data '! $TOY predict --weights nf.st --input $D/x.npy --output own_p.npy 2>&1 | grep -q warning'
# a resumed run keeps the checkpoint's preprocessing and is bit-identical, metadata included
$TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 3 --normalize feature --save straight.st --quiet >/dev/null
$TOY train --train-x $D/x.npy --train-y $D/y.npy --epochs 1 --normalize feature --checkpoint ck.st --quiet >/dev/null
check checkpoint-keeps-prep '[ "$(meta ck.st input.mean)" = "$(meta straight.st input.mean)" ]'
expect resume-with-prep 0 "epoch 3/3" $TOY train --train-x $D/x.npy --train-y $D/y.npy --resume ck.st --epochs 3 --save resumed.st
check resume-prep-bit-identical 'cmp -s resumed.st straight.st'
expect resume-other-normalize 2 "--normalize none: the checkpoint ck.st was trained with --normalize feature" \
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --resume ck.st --normalize none
expect resume-other-scale 2 "--scale 1/255: the checkpoint ck.st was trained with --scale auto" \
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --resume ck.st --scale 1/255
expect ensemble-other-prep 2 "its input preprocessing or class names differ from the first member's" \
    $TOY predict --weights straight.st,num.st --input $D/x.npy --output e.npy

# ----------------------------------------------------------------------------
# --steps: a fixed budget of steps (10 samples at batch 4: 3 steps an epoch)

expect steps-budget 0 "epoch 3/3" $TOY train --train-x $D/x.npy --train-y $D/y.npy --steps 7 --log st.jsonl --log-every 1
check steps-count '[ "$(grep -c "\"step\":" st.jsonl)" -eq 7 ] && [ "$(grep -c "\"train_loss\":" st.jsonl)" -eq 3 ] && tail -2 st.jsonl | head -1 | grep -q "\"step\":7,\"epoch\":3"'
expect steps-and-epochs 2 "--steps: give --epochs or --steps, not both" $TOY train --train-x $D/x.npy --train-y $D/y.npy --steps 7 --epochs 2
expect steps-and-checkpoint 2 "--steps: not with --checkpoint" $TOY train --train-x $D/x.npy --train-y $D/y.npy --steps 7 --checkpoint c.st

finish e2e-user-data
