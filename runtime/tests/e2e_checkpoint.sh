#!/usr/bin/env bash
# e2e_checkpoint.sh — resumable checkpoints (resuming is bit-identical to training straight through, the data path's
# options included; every bad checkpoint is one line) and divergence (a non-finite step stops training, nothing is saved).
# usage: e2e_checkpoint.sh BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR and DATA_DIR; see lib.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# ----------------------------------------------------------------------------
# checkpoints: k epochs, a checkpoint, then resuming for the rest is bit-identical to training straight through

K="--train-x $D/x.npy --train-y $D/y.npy --test-x $D/x.npy --test-y $D/y.npy --batch 4 --log-every 1"
for exe in TOY DROP; do
    bin=${!exe}
    rm -f s_$exe.jsonl r_$exe.jsonl
    $bin train $K --epochs 4 --momentum 0.9 --log s_$exe.jsonl --save s_$exe.st >/dev/null
    $bin train $K --epochs 2 --momentum 0.9 --log r_$exe.jsonl --checkpoint c_$exe.st >/dev/null
    expect "resume-$exe" 0 "resumed c_$exe.st: 2 of 4 epochs done, step 6" $bin train $K --epochs 4 --resume c_$exe.st --log r_$exe.jsonl --save r_$exe.st
    check "resume-weights-$exe" 'cmp -s s_$exe.st r_$exe.st'
    check "resume-jsonl-$exe" '[ "$(nosecs s_$exe.jsonl)" = "$(nosecs r_$exe.jsonl)" ] && [ "$(grep -c "\"step\"" r_$exe.jsonl)" -eq 12 ]'
done
check resume-dropout-matters '! cmp -s s_TOY.st s_DROP.st'
# The resumed run took the checkpoint's momentum: without it (default 0) the weights differ.
$TOY train $K --epochs 4 --resume c_TOY.st --momentum 0 --save r_mom0.st >/dev/null
check resume-hparam-override '! cmp -s s_TOY.st r_mom0.st'
# --epochs defaults to the checkpointed run's; a straight run's checkpoint resumes to the same place
$TOY train $K --epochs 3 --momentum 0.9 --val-split 0 --checkpoint c3.st --checkpoint-every 2 --save s3.st >/dev/null
check checkpoint-last-epoch 'head -c 2000 c3.st | grep -q "\"epochs_done\":\"3\""'
check checkpoint-metadata 'head -c 2000 c3.st | grep -q "\"nncc.checkpoint\":\"2\",\"model\":\"toy\",\"params_numel\":\"19\",\"state_numel\":\"19\",\"step\":\"9\""'
# format 1 (the whole state arena, as the toy, which names no state slots, still writes it) is read too
sed 's/"nncc.checkpoint":"2"/"nncc.checkpoint":"1"/' c3.st >c3v1.st
expect checkpoint-format-1 0 "resumed c3v1.st: 3 of 4 epochs done" $TOY train $K --resume c3v1.st --epochs 4
sed 's/"nncc.checkpoint":"2"/"nncc.checkpoint":"9"/' c3.st >c3v9.st
expect checkpoint-format-unknown 1 "c3v9.st: checkpoint format version '9' is not supported (expected 1 or 2)" $TOY train $K --resume c3v9.st
check checkpoint-tensors 'head -c 2000 c3.st | grep -q "\"optimizer.state\":{\"dtype\":\"F32\",\"shape\":\[19\]" && head -c 2000 c3.st | grep -q "\"train.order\":{\"dtype\":\"I64\",\"shape\":\[10\]"'
check checkpoint-hparams 'head -c 2000 c3.st | grep -q "\"hp.lr\":\"0.10000000000000001\",\"hp.momentum\":\"0.90000000000000002\""'
expect resume-nothing-left 0 "resumed c3.st: 3 of 3 epochs done" $TOY train $K --resume c3.st --save r3.st
check resume-nothing-left-weights 'cmp -s s3.st r3.st'
# A checkpoint's weights are weights: eval, predict and --init read them
expect checkpoint-as-weights 0 "test_loss" $TOY eval --weights c3.st --test-x $D/x.npy --test-y $D/y.npy
# ... with SWA's average in it too (swa.weights is training state, not a parameter)
$TOY train $K --epochs 2 --swa-start 1 --swa-lr 0.05 --checkpoint cswa.st --quiet >/dev/null
expect checkpoint-swa-as-weights 0 "test_loss" $TOY eval --weights cswa.st --test-x $D/x.npy --test-y $D/y.npy
$TOY train $K --init c3.st --epochs 1 --lr 0 --save i3.st >/dev/null
check checkpoint-init 'same_but_counter i3.st s3.st'
# bad checkpoints: one line, exit 1 (or 2 for a command line that contradicts it), nothing written
expect resume-missing 1 "nope.st: No such file" $TOY train $K --resume nope.st
expect resume-corrupt 1 "garbage.bin: corrupt safetensors" $TOY train $K --resume $D/garbage.bin
head -c 300 c3.st >trunc.st
expect resume-truncated 1 "trunc.st: corrupt safetensors" $TOY train $K --resume trunc.st
expect resume-weights-only 1 "s3.st: not a checkpoint (weights only, no training state; '--init s3.st'" $TOY train $K --resume s3.st
$MNIST train --data $D/mnist --epochs 1 --quiet --checkpoint cm.st >/dev/null
expect resume-other-model 1 "cm.st: checkpoint of model 'toy' (7851 parameters, 7851 optimizer state floats), but this trainer is 'toy' (19, 19)" $TOY train $K --resume cm.st
sed 's/"model":"toy"/"model":"yot"/' c3.st >renamed.st
expect resume-other-name 1 "checkpoint of model 'yot'" $TOY train $K --resume renamed.st
sed 's/"hp.momentum"/"hp.nesterov"/' c3.st >otherhp.st
expect resume-other-hparams 1 "no hyperparameter 'momentum'" $TOY train $K --resume otherhp.st
sed 's/"step":"9"/"step":"x"/' c3.st >badmeta.st
expect resume-bad-metadata 1 "badmeta.st: corrupt checkpoint (metadata 'step' is 'x'" $TOY train $K --resume badmeta.st
expect resume-batch-conflict 2 "--batch 2: the checkpoint c3.st was trained with --batch 4" $TOY train ${K/--batch 4/--batch 2} --resume c3.st
expect resume-epochs-behind 2 "--epochs 1: the checkpoint c3.st has already trained 3 epochs" $TOY train $K --resume c3.st --epochs 1

# ----------------------------------------------------------------------------
# the data path's options are in the checkpoint ("augment", "mixup", "cutmix"): a run resumed without repeating
# them is bit-identical to one that never stopped; a flag given again overrides its stored value, --augment none,
# --mixup 0 and --cutmix 0 turn one off, and a checkpoint without the keys (older ones) resumes without them

M="--data $D/mnist --batch 8 --log-every 1 --seed 5 --quiet"
# same_run A B: the same weights and the same JSONL lines (but the seconds)
same_run() { cmp -s "$1.st" "$2.st" && [ "$(nosecs "$1.jsonl")" = "$(nosecs "$2.jsonl")" ] && [ "$(grep -c '"step"' "$2.jsonl")" -eq 9 ]; }
i=0
for opts in "--augment crop:2,flip,cutout:8,jitter:0.2" "--augment crop:2,flip --mixup 0.2" "--cutmix 1" "--mixup 0.4 --cutmix 1"; do
    i=$((i + 1))
    rm -f dp$i.jsonl dpr$i.jsonl
    $MNIST train $M $opts --epochs 3 --log dp$i.jsonl --save dp$i.st >/dev/null
    $MNIST train $M $opts --epochs 1 --log dpr$i.jsonl --checkpoint dpc$i.st >/dev/null
    expect "resume-data-options-$i" 0 "resumed with the checkpoint's $opts (give the flag again" \
        $MNIST train --data $D/mnist --epochs 3 --resume dpc$i.st --log dpr$i.jsonl --save dpr$i.st
    check "resume-data-options-identical-$i" 'same_run dp$i dpr$i'
done
check data-options-metadata 'head -c 2000 dpc2.st | grep -q "\"augment\":\"crop:2,flip\",\"mixup\":\"0.20000000000000001\"" &&
    head -c 2000 dpc4.st | grep -q "\"mixup\":\"0.40000000000000002\",\"cutmix\":\"1\"" && ! head -c 2000 dpc3.st | grep -q "\"mixup\""'
check data-options-matter '! cmp -s dp1.st dp2.st && ! cmp -s dp2.st dp3.st && ! cmp -s dp3.st dp4.st'
# the soft-target buffer of --mixup/--cutmix given on the command line is freed (the leak checker, under ASan)
expect data-options-no-leak 0 "epoch 1/1" $MNIST train $M --mixup 0.4 --cutmix 1 --epochs 1
# An older checkpoint (no keys: renamed here, which the loader ignores) resumes without augmentation or mixing, as
# before; the turned-off options resume the same way, and differ from the run that keeps them.
sed 's/"augment":/"augmenX":/; s/"mixup":/"mixuX":/' dpc2.st >dpold.st
rm -f dpo.jsonl dpn.jsonl
$MNIST train $M --epochs 3 --resume dpold.st --save dpo.st --log dpo.jsonl >/dev/null
expect resume-data-options-off 0 "epoch 3/3" $MNIST train $M --epochs 3 --resume dpc2.st --augment none --mixup 0 --save dpn.st --log dpn.jsonl
check resume-older-checkpoint-plain 'cmp -s dpo.st dpn.st && ! cmp -s dpo.st dp2.st'
expect resume-older-checkpoint-quiet 0 "resumed dpold.st: 1 of 3 epochs done, step 3" $MNIST train --data $D/mnist --epochs 3 --resume dpold.st
check resume-older-checkpoint-says-nothing '! $MNIST train --data $D/mnist --epochs 3 --resume dpold.st | grep -q "checkpoint'"'"'s"'
# A flag given again overrides its stored value and keeps the others: --mixup 0.4 on the checkpoint of
# "--augment crop:2,flip --mixup 0.2" is the older checkpoint resumed with "--augment crop:2,flip --mixup 0.4".
$MNIST train $M --epochs 3 --resume dpc2.st --mixup 0.4 --save dpm.st >/dev/null
$MNIST train $M --epochs 3 --resume dpold.st --augment crop:2,flip --mixup 0.4 --save dpm_ref.st >/dev/null
check resume-data-option-override 'cmp -s dpm.st dpm_ref.st && ! cmp -s dpm.st dp2.st'
$MNIST train $M --epochs 3 --resume dpc2.st --augment flip --save dpa.st >/dev/null
$MNIST train $M --epochs 3 --resume dpold.st --augment flip --mixup 0.2 --save dpa_ref.st >/dev/null
check resume-augment-override 'cmp -s dpa.st dpa_ref.st && ! cmp -s dpa.st dp2.st'
sed 's/"mixup":/"mixuX":/; s/"cutmix":/"cutmiX":/' dpc4.st >dpold4.st
$MNIST train $M --epochs 3 --resume dpc4.st --cutmix 0 --save dpk.st >/dev/null
$MNIST train $M --epochs 3 --resume dpold4.st --mixup 0.4 --save dpk_ref.st >/dev/null
check resume-cutmix-off 'cmp -s dpk.st dpk_ref.st && ! cmp -s dpk.st dp4.st'
# a corrupt value: one line naming the file and the key, exit 1 (the same length, so the file stays readable)
one_line() { [ "$("$@" 2>&1 | wc -l)" -eq 1 ]; }
sed 's/"augment":"crop:2,flip"/"augment":"crop:99,fli"/' dpc2.st >dpbad1.st
expect resume-corrupt-augment 1 "dpbad1.st: corrupt checkpoint (metadata 'augment' is 'crop:99,fli': crop:P expects the padding P, an integer in [1, 28]" \
    $MNIST train --data $D/mnist --resume dpbad1.st
sed 's/"augment":"crop:2,flip"/"augment":"crop:2,flop"/' dpc2.st >dpbad2.st
expect resume-corrupt-augment-name 1 "dpbad2.st: corrupt checkpoint (metadata 'augment' is 'crop:2,flop': unknown augmentation 'flop'" \
    $MNIST train --data $D/mnist --resume dpbad2.st
sed 's/"mixup":"0.20000000000000001"/"mixup":"x.20000000000000001"/' dpc2.st >dpbad3.st
expect resume-corrupt-mixup 1 "dpbad3.st: corrupt checkpoint (metadata 'mixup' is 'x.20000000000000001', expected a number)" \
    $MNIST train --data $D/mnist --resume dpbad3.st
sed 's/"cutmix":"1"/"cutmix":"-"/' dpc3.st >dpbad4.st
expect resume-corrupt-cutmix 1 "dpbad4.st: corrupt checkpoint (metadata 'cutmix' is '-', expected a number)" $MNIST train --data $D/mnist --resume dpbad4.st
sed 's/"mixup":"0.20000000000000001"/"mixup":"-0.2000000000000001"/' dpc2.st >dpbad5.st
expect resume-negative-mixup 1 "dpbad5.st: checkpoint field 'mixup' is -0.2000000000000001, expected a non-negative number" \
    $MNIST train --data $D/mnist --resume dpbad5.st
check resume-corrupt-one-line 'one_line $MNIST train --data $D/mnist --resume dpbad1.st && one_line $MNIST train --data $D/mnist --resume dpbad5.st'
# the flat toy's checkpoint with mixup: mixup applies to any input, and resumes too
rm -f tm.jsonl tmr.jsonl
$TOY train $K --epochs 4 --mixup 0.3 --log tm.jsonl --save tm.st >/dev/null
$TOY train $K --epochs 2 --mixup 0.3 --log tmr.jsonl --checkpoint tmc.st >/dev/null
$TOY train $K --epochs 4 --resume tmc.st --log tmr.jsonl --save tmr.st >/dev/null
check resume-mixup-flat 'cmp -s tm.st tmr.st && [ "$(nosecs tm.jsonl)" = "$(nosecs tmr.jsonl)" ] && ! cmp -s tm.st s_TOY.st'

# ----------------------------------------------------------------------------
# divergence: the first step whose loss is not finite stops training with exit 1; --save is not written (an
# existing file keeps its bytes), an earlier checkpoint stays, and the log ends with that step (loss null)

echo "old weights" >dv.st
rm -f dv.jsonl
expect diverge-stops 1 "training diverged: the loss of step " $TOY train $K --epochs 3 --lr 1e38 --save dv.st --log dv.jsonl
expect diverge-hint 1 "A smaller learning rate (--lr, now 1e+38) usually helps" $TOY train $K --epochs 3 --lr 1e38
expect diverge-save-named 1 "; dv.st was not written" $TOY train $K --epochs 3 --lr 1e38 --save dv.st
check diverge-save-untouched '[ "$(cat dv.st)" = "old weights" ]'
check diverge-log-last 'tail -1 dv.jsonl | grep -qE "^\{\"step\":[0-9]+,\"epoch\":1,\"loss\":null,\"lr\":1e\+38\}$"'
check diverge-no-epoch-line '! grep -q "\"epoch\":1,\"train_loss\"" dv.jsonl'
# it stops at the first such step: the step in the message is the last one logged (every step is, --log-every 1)
dvstep=$(tail -1 dv.jsonl | sed -E 's/^\{"step":([0-9]+),.*/\1/')
expect diverge-first-step 1 "the loss of step $dvstep (epoch 1, batch $dvstep of 3)" $TOY train $K --epochs 3 --lr 1e38
cp c3.st dvc.st && cp c3.st dvc_before.st
expect diverge-checkpoint-kept 1 "the checkpoint dvc.st keeps epoch 3 (--resume it with other hyperparameters)" \
    $TOY train $K --resume dvc.st --checkpoint dvc.st --epochs 5 --lr 1e38
check diverge-checkpoint-bytes 'cmp -s dvc.st dvc_before.st'
expect diverge-no-checkpoint 1 "no checkpoint was written in this run" $TOY train $K --epochs 3 --lr 1e38 --checkpoint dvn.st
check diverge-no-checkpoint-file '[ ! -e dvn.st ]'
expect diverge-not-below 0 "epoch 3/3  train_loss" $TOY train $K --epochs 3 --lr 0.1
expect resume-shuffle-conflict 2 "--no-shuffle: the checkpoint c3.st was trained with shuffling" $TOY train $K --resume c3.st --no-shuffle
expect resume-val-conflict 2 "--val-split 0.2: the checkpoint c3.st was trained with --val-split 0" $TOY train $K --resume c3.st --val-split 0.2
expect resume-and-init 2 "give one" $TOY train $K --resume c3.st --init s3.st
expect resume-other-data 1 "c3.st: the checkpoint was trained on 10 samples with 0 for validation, but this run has 10 with 10" \
    $TOY train $K --resume c3.st --val-x $D/x.npy --val-y $D/y.npy
cp c3.st keep3.st
expect checkpoint-fails-late 1 "x_shape.npy" $TOY train --train-x $D/x.npy --train-y $D/y.npy --test-x $D/x_shape.npy --test-y $D/y.npy --checkpoint keep3.st
check checkpoint-keeps-old 'cmp -s c3.st keep3.st && [ -z "$(ls -a | grep tmp)" ]'
expect help-train-resume 0 "--resume C" $TOY train --help

finish e2e-checkpoint
