#!/usr/bin/env bash
# e2e_insight.sh — saliency and maximize (runtime/saliency.c, maximize.c, inputgrad.c) through the toys' input-gradient
# entry point (toy_model.c: layer outputs h_in, the input, and h0, the logits). The toy is linear, so the answers are
# exact: a class's saliency is its weight row (byte for byte), an input unit's is a one-hot; the printed score is
# w_c·x + b_c (1e-5 relative, lbfgs_ref.py); maximize without regularizers rises by lr·‖w‖²/rms(w) at every step
# (1e-4 of the rise); the pictures, their sizes; bad command lines, one line and exit 2.
# usage: e2e_insight.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

$TOY train --train-x $D/x.npy --train-y $D/y.npy --quiet --save a.st >/dev/null
$DENSE train --train-x $D/x.npy --train-y $D/t.npy --quiet --save dense.st >/dev/null
$MNIST train --data $D/mnist --epochs 1 --quiet --save m.st >/dev/null

# tensor FILE NAME: the bytes of tensor NAME of a .safetensors file, from its header's data_offsets
tensor() {
    local hlen off
    hlen=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    off=$(head -c $((8 + hlen)) "$1" | tail -c "$hlen" | sed -E "s/.*\"$2\":\{[^}]*\"data_offsets\":\[([0-9]+),([0-9]+)\].*/\1 \2/")
    set -- "$1" $off
    tail -c +$((8 + hlen + $2 + 1)) "$1" | head -c $(($3 - $2))
}
# row FILE NAME R BYTES: row R of it, BYTES long
row() { tensor "$1" "$2" | tail -c +$(($3 * $4 + 1)) | head -c "$4"; }
# npy_data FILE BYTES: the last BYTES bytes of a .npy (its data)
npy_data() { tail -c "$2" "$1"; }

# ----------------------------------------------------------------------------
# saliency: the gradient of a class score is the weight row, exactly; the printed score is the logit

S="--weights a.st --input $D/x.npy --index 3"
for c in 0 1 2; do
    expect "saliency-class-$c" 0 "saliency of class $c (h0 (3, the output)) at sample 3" $TOY saliency $S --class $c -o s$c.npy
    check "saliency-class-$c-is-weight-row" 'cmp -s <(npy_data s$c.npy 20) <(row a.st weight $c 20)'
    score=$($TOY saliency $S --class $c -o s$c.npy | sed -nE 's/.*score ([^;]*);.*/\1/p')
    pyref "saliency-class-$c-score" saliency $D/x.npy a.st 3 $c "$score"
done
predicted=$($TOY saliency $S -o sp.npy | sed -nE 's/.*predicted class ([0-9]+).*/\1/p')
check saliency-default-predicted '[ -n "$predicted" ] && cmp -s sp.npy s$predicted.npy'
expect saliency-unit-output 0 "saliency of class 1 (h0 (3, the output))" $TOY saliency $S --unit h0:1 -o su1.npy
check saliency-unit-output-same 'cmp -s su1.npy s1.npy'
# an input unit: d x₂ / d x = e₂; by its module path "in" (h_in) too; its score is the feature itself
expect saliency-input-unit 0 "saliency of unit 2 of h_in (5) at sample 3" $TOY saliency $S --unit in:2 -o sx.npy
check saliency-input-unit-one-hot 'cmp -s <(npy_data sx.npy 20) <(printf "\0\0\0\0\0\0\0\0\0\0\200\077\0\0\0\0\0\0\0\0")'
# near A B REL: |A − B| ≤ REL·|B|
near() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && d <= r * m) }'; }
x32=$(od -An -tf4 -j $((128 + (3 * 5 + 2) * 4)) -N4 $D/x.npy | tr -d " ")   # x[3][2]: mkdata's 128-byte header
check saliency-input-unit-score 'near "$($TOY saliency $S --unit h_in:2 -o sx.npy | sed -nE "s/.*score ([^;]*);.*/\1/p")" "$x32" 1e-5'
# a regressor has no predicted class: --class picks the output
expect saliency-dense 0 "saliency of output 1 (h0 (3, the output))" $DENSE saliency --weights dense.st --input $D/x.npy --class 1 -o sd.npy
check saliency-dense-is-weight-row 'cmp -s <(npy_data sd.npy 20) <(row dense.st weight 1 20)'
# an image model: the picture of the sample beside |gradient|; the .npy is the weight row (784 floats)
expect saliency-png 0 "(the input and |gradient|, 227 x 114 pixels)" $MNIST saliency --weights m.st --input $D/mnist/t10k-images-idx3-ubyte.gz --index 1 --class 4 -o ms.png
check saliency-png-signature '[ "$(head -c 8 ms.png | od -An -tx1 | tr -d " ")" = "89504e470d0a1a0a" ]'
expect saliency-image-npy 0 "wrote msn.npy (1, 784) float32" $MNIST saliency --weights m.st --input $D/mnist/t10k-images-idx3-ubyte.gz --index 1 --class 4 -o msn.npy
check saliency-image-is-weight-row 'cmp -s <(npy_data msn.npy 3136) <(row m.st weight 4 3136)'
expect saliency-channel 0 "saliency of channel 0 of h_in (1, 28, 28), its mean" $MNIST saliency --weights m.st --input $D/mnist/t10k-images-idx3-ubyte.gz --unit h_in:0 -o mc.npy
# 1/784 everywhere: the channel's mean
values=$(npy_data mc.npy 3136 | od -An -tf4 -v | tr -s " " "\n" | grep -v "^$" | sort -u)
check saliency-channel-uniform '[ "$(wc -l <<<"$values")" -eq 1 ] && near "$values" 0.00127551020408 1e-6'

# ----------------------------------------------------------------------------
# maximize: without regularizers a linear unit rises by lr·‖w‖²/rms(w) at every step; with them, reproducibly

OFF="--l2 0 --jitter 0 --blur-every 0"
rm -f mx.jsonl
expect maximize-class 0 "maximize class 1 (h0 (3, the output)):" $TOY maximize --weights a.st --unit 1 -o mx.npy $OFF --steps 25 --lr 0.1 --log mx.jsonl
check maximize-every-step-rises 'awk -F"[:}]" "NR > 1 && \$3 <= v { bad = 1 } { v = \$3 } END { exit bad || NR != 26 }" mx.jsonl'
pyref maximize-linear-rise maximize a.st 1 0.1 mx.jsonl
expect maximize-regularized 0 "after 30 steps" $TOY maximize --weights a.st --unit h0:2 -o r1.npy --steps 30 --seed 5
$TOY maximize --weights a.st --unit h0:2 -o r2.npy --steps 30 --seed 5 --quiet
$TOY maximize --weights a.st --unit h0:2 -o r3.npy --steps 30 --seed 6 --quiet
check maximize-reproducible 'cmp -s r1.npy r2.npy && ! cmp -s r1.npy r3.npy'
expect maximize-input-unit 0 "maximize unit 4 of h_in (5)" $TOY maximize --weights a.st --unit in:4 -o mi.npy $OFF --steps 5
# an image model: jitter, blur and the picture; jitter larger than the image wraps (numpy.roll), as does a huge one
expect maximize-png 0 "wrote mm.png (114 x 114 pixels)" $MNIST maximize --weights m.st --unit 3 -o mm.png --steps 20
expect maximize-channel 0 "maximize channel 0 of h_in (1, 28, 28), its mean" $MNIST maximize --weights m.st --unit h_in:0 -o mc.png --steps 8
expect maximize-jitter-past-image 0 "after 12 steps" $MNIST maximize --weights m.st --unit 3 -o mj.npy --steps 12 --jitter 40
expect maximize-jitter-huge 0 "after 6 steps" $MNIST maximize --weights m.st --unit 3 -o mj.npy --steps 6 --jitter 1000000000
$MNIST maximize --weights m.st --unit 3 -o mj1.npy --steps 6 --jitter 1 --quiet
$MNIST maximize --weights m.st --unit 3 -o mj2.npy --steps 6 --jitter 1 --quiet
check maximize-png-reproducible 'cmp -s mj1.npy mj2.npy'
# a zero gradient: nothing to ascend, and the hint
{ head -c $((8 + $(od -An -tu8 -N8 a.st | tr -d " "))) a.st; head -c 76 /dev/zero; } >zero.st
expect maximize-flat 0 "its gradient is zero at the start" $TOY maximize --weights zero.st --unit 0 -o mz.npy $OFF
expect maximize-diverges 1 "maximize: the unit's value or gradient stopped being finite at step" $TOY maximize --weights a.st --unit 0 -o md.npy --lr 1e38 --steps 3 $OFF

# ----------------------------------------------------------------------------
# bad command lines: one line, exit 2, nothing written

# refuse NAME SUBSTRING CMD...
refuse() {
    local name=$1 sub=$2 lines
    shift 2
    rm -f out.png out.npy
    expect "refuses-$name" 2 "$sub" "$@"
    lines=$("$@" 2>&1 >/dev/null | wc -l)
    if [ "$lines" -eq 1 ] && [ ! -e out.png ] && [ ! -e out.npy ]; then ok "refuses-$name-one-line"
    else bad "refuses-$name-one-line" "$lines lines on stderr, or an output written"; fi
}
refuse unknown-layer "--unit h9:1: model 'toy' has no layer 'h9' (its layers: h_in (5), h0 (3, the output))" $TOY maximize --weights a.st --unit h9:1 -o out.npy
refuse unit-range "--unit h0:3: index 3 is out of range: h0 (3, the output) has 3 units (0 to 2)" $TOY saliency $S --unit h0:3 -o out.npy
refuse channel-range "--unit h_in:1: index 1 is out of range: h_in (1, 28, 28) has 1 channels (0 to 0)" $MNIST maximize --weights m.st --unit h_in:1 -o out.png
refuse class-range "--class 3: class 3 is out of range: model 'toy' has 3 classes (0 to 2)" $TOY saliency $S --class 3 -o out.npy
refuse unit-form "--unit h0: expected a class C or LAYER:INDEX" $TOY maximize --weights a.st --unit h0 -o out.npy
refuse index-range "--index 10: out of range: $D/x.npy has 10 samples (0 to 9)" $TOY saliency --weights a.st --input $D/x.npy --index 10 -o out.npy
refuse flat-picture "saliency: model 'toy' takes 5 features, not an image" $TOY saliency $S -o out.png
refuse flat-maximize-picture "maximize: model 'toy' takes 5 features, not an image" $TOY maximize --weights a.st --unit 0 -o out.png
refuse dense-no-class "saliency: model 'toy' is not a classifier: give --class K" $DENSE saliency --weights dense.st --input $D/x.npy -o out.npy
refuse both "saliency: give --class C or --unit U, not both" $TOY saliency $S --class 1 --unit 1 -o out.npy
refuse no-unit "maximize: needs --unit U" $TOY maximize --weights a.st -o out.npy

finish e2e-insight
