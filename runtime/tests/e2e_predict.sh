#!/usr/bin/env bash
# e2e_predict.sh — weights (atomic save, strict loading), eval and predict, also of an ensemble.
# usage: e2e_predict.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# Weights of another model (the MNIST toy), which the toy must refuse.
$MNIST train --data $D/mnist --epochs 1 --quiet --save mn.st >/dev/null

# ----------------------------------------------------------------------------
# weights: atomic save, strict loading, eval, predict

$TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --quiet --save a.st >outa
check eval-matches-train '[ "$($TOY eval --weights a.st --test-x $D/x.npy --test-y $D/y.npy)" = "$(grep "^epoch 2/2" outa | sed "s/.*  test_loss/test_loss/; s/  [0-9.]*s$//")" ]'
$TOY train --train-x $D/x.npy --train-y $D/y.npy --quiet --init a.st --epochs 1 --lr 0 --save b.st >/dev/null
# (--epochs 0 is refused: one epoch at --lr 0 keeps the weights; only the I64 counter "seen", the last 8 bytes, moves on)
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

finish e2e-predict
