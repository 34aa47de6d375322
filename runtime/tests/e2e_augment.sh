#!/usr/bin/env bash
# e2e_augment.sh — train --augment end to end on toy_mnist (a (1, 28, 28) image model): training with it runs and is
# reproducible (a fixed seed, one thread or two, resumed or not), it changes the training batches and nothing the
# evaluation sees, and bad values are usage errors naming the flag (exit 2).
# usage: e2e_augment.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

A="--augment crop:4,flip,cutout:8,jitter:0.2"
T="--data $D/mnist --batch 8 --quiet"
E3="--epochs 3"
S5="--seed 5"

# ----------------------------------------------------------------------------
# reproducible, and it changes training

expect aug-train 0 "epoch 3/3  train_loss" $MNIST train $T $E3 $S5 $A --save a1.st --log a1.jsonl
expect aug-again 0 "epoch 3/3" $MNIST train $T $E3 $S5 $A --save a2.st
expect aug-one-thread 0 "epoch 3/3" $MNIST train $T $E3 $S5 $A --save a3.st --threads 1
expect plain-train 0 "epoch 3/3" $MNIST train $T $E3 $S5 --save p.st
check aug-reproducible 'cmp -s a1.st a2.st'
check aug-thread-independent 'cmp -s a1.st a3.st'
check aug-changes-training '! cmp -s a1.st p.st'
expect aug-other-seed 0 "epoch 3/3" $MNIST train $T $E3 $A --save a4.st --seed 6
check aug-seed-matters '! cmp -s a1.st a4.st'
# Each sample's transform depends on (seed, epoch, sample) only: a resumed run is bit-identical to an unbroken one.
expect aug-checkpoint 0 "epoch 1/1" $MNIST train $T $S5 $A --epochs 1 --checkpoint c.st
expect aug-resume 0 "epoch 3/3" $MNIST train $T $E3 $A --resume c.st --save a5.st
check aug-resume-identical 'cmp -s a1.st a5.st'
# --augment none is no augmentation (what a resumed run gives to drop its checkpoint's list; e2e_checkpoint.sh)
expect aug-none 0 "epoch 3/3" $MNIST train $T $E3 $S5 --augment none --save n.st
check aug-none-is-plain 'cmp -s n.st p.st'
expect aug-none-not-listed 2 "--augment: unknown augmentation 'none' (expected crop:P, flip, cutout:S or jitter:J; or none alone)" \
    $MNIST train $T --augment flip,none
# Only one augmentation differs from all four.
expect aug-flip-only 0 "epoch 3/3" $MNIST train $T $E3 $S5 --augment flip --save f.st
check aug-flip-differs '! cmp -s f.st a1.st && ! cmp -s f.st p.st'

# ----------------------------------------------------------------------------
# the evaluation never sees it: at --lr 0 the weights stay the init's, so the test metrics of every epoch match a
# run without --augment, while the training loss (of augmented batches) does not

lr0() { $MNIST train $T $S5 --epochs 2 --lr 0 --report-test "$@" 2>&1 | grep "^epoch"; }
check lr0-runs '[ "$(lr0 $A | grep -c "test_loss")" = 2 ]'
check eval-unaffected '[ "$(lr0 $A | sed "s/train_loss [0-9.]*//; s/[0-9.]*s$//")" = "$(lr0 | sed "s/train_loss [0-9.]*//; s/[0-9.]*s$//")" ]'
check train-loss-augmented '[ "$(lr0 $A | sed "s/[0-9.]*s$//")" != "$(lr0 | sed "s/[0-9.]*s$//")" ]'
expect eval-same-weights 0 "test_loss" $MNIST eval --weights a1.st --data $D/mnist
expect eval-no-augment 2 "flag '--augment' does not apply to 'eval'" $MNIST eval --weights a1.st --data $D/mnist $A
expect predict-no-augment 2 "flag '--augment' does not apply to 'predict'" $MNIST predict --weights a1.st --input $D/x.npy --output o.npy $A

# ----------------------------------------------------------------------------
# usage errors (exit 2, naming --augment)

expect bad-crop 2 "--augment: crop:P expects the padding P, an integer in [1, 28] (the image's shorter side), got '-1'" $MNIST train $T --augment crop:-1
expect bad-cutout 2 "--augment: cutout:S expects the side S of the square, an integer in [1, 28]" $MNIST train $T --augment cutout:0
expect bad-jitter 2 "--augment: jitter:J expects J, a number in (0, 1]" $MNIST train $T --augment jitter:2
expect bad-name 2 "--augment: unknown augmentation 'mixup'" $MNIST train $T --augment flip,mixup:0.2
expect bad-duplicate 2 "--augment: 'crop' is given twice" $MNIST train $T --augment crop:2,crop:4
expect bad-empty 2 "--augment: expected a list, got ''" $MNIST train $T --augment ""
expect bad-twice 2 "--augment is given twice" $MNIST train $T --augment flip --augment crop:2
expect bad-tabular 2 "--augment: model 'toy' takes 5 flat features, not images (C, H, W); augmentation applies to image models only" \
    $TOY train --train-x $D/x.npy --train-y $D/y.npy --augment flip
expect help-lists-it 0 "--augment LIST" $MNIST train --help

# ----------------------------------------------------------------------------
# show-batch: the first --batch training images as epoch 1 sees them, a PNG grid

png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $3 * 256 + $4 "x" $7 * 256 + $8}'; }  # IHDR width x height
expect show-batch 0 "wrote sb1.png: samples 0-7 of the training set augmented by --augment $(cut -d' ' -f2 <<<"$A")" \
    $MNIST show-batch --data $D/mnist $A --batch 8 -o sb1.png
expect show-batch-again 0 "wrote" $MNIST show-batch --data $D/mnist $A --batch 8 -o sb2.png
expect show-batch-plain 0 "wrote sb3.png: samples 0-7 of the training set, as epoch 1" $MNIST show-batch --data $D/mnist --batch 8 -o sb3.png
# 8 tiles of 28 x 28 at 2x zoom in 3 columns and 3 rows, 1-pixel separators: 3 * 57 + 1 = 172
check show-batch-size '[ "$(png_size sb1.png)" = "172x172" ] && [ "$(head -c 8 sb1.png | od -An -tx1 | tr -d " ")" = 89504e470d0a1a0a ]'
check show-batch-reproducible 'cmp -s sb1.png sb2.png'
check show-batch-augments '! cmp -s sb1.png sb3.png'
expect show-batch-no-output 2 "show-batch: needs --output F.png" $MNIST show-batch --data $D/mnist $A
expect show-batch-not-png 2 "--output sb.jpg: expected a .png file name" $MNIST show-batch --data $D/mnist -o sb.jpg
expect show-batch-no-data 2 "show-batch: needs --data DIR, --train-x F --train-y F, or --train-x F.csv --label-column C" $MNIST show-batch -o sb.png
expect show-batch-flat 2 "show-batch: model 'toy' does not take 1- or 3-channel images" $TOY show-batch --train-x $D/x.npy --train-y $D/y.npy -o sb.png
expect show-batch-bad-augment 2 "--augment: cutout:S expects" $MNIST show-batch --data $D/mnist --augment cutout:0 -o sb.png

finish e2e-augment
