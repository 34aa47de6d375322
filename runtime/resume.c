/* resume.c — train --resume: the settings a resumed run takes from its checkpoint (batch, seed, shuffle, validation
 * split, --epochs, --log-every, the hyperparameters, --augment, --mixup, --cutmix, SWA's options and --snapshots), and
 * the checks that it is the same run (batch, seed, shuffle, validation split, data, the start of SWA's average). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_cli.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_mixup.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

static NNRT_NORETURN void resume_conflict(const char *path, const char *flag, const char *ours, const char *theirs) {
    nnrt_usage_die("%s%s%s: the checkpoint %s was trained with %s (a resumed run keeps the batch, seed, shuffle and "
                   "validation split of its checkpoint)", flag, *ours ? " " : "", ours, path, theirs);
}

/* SWA's options and --snapshots: the checkpoint's, each unless given again (--swa-start 0 and --snapshots 0 turn one
   off). --swa-lr and --swa-anneal-epochs may differ, like a hyperparameter; --swa-start may not once the checkpoint
   has averaged an epoch, since its average is of the epochs from its own E on. A checkpoint without swa.lr (written
   before the options were kept) resumes without SWA unless the flags are given, as it always did. */
static void resume_swa(const nnrt_options *o, nnrt_options *run, const nnrt_checkpoint *c) {
    if (nnrt_flag_given(o, "swa-start") && o->swa_start && c->swa.on && c->swa.count > 0 && o->swa_start != c->swa_start)
        nnrt_usage_die("--swa-start %lld: the checkpoint %s has averaged %lld epoch%s from --swa-start %lld on; a resumed run "
                       "keeps the epoch its average starts at (leave the flag out, or --swa-start 0 to drop the average)",
                       (long long)o->swa_start, o->resume, (long long)c->swa.count, c->swa.count == 1 ? "" : "s",
                       (long long)c->swa_start);
    if (c->swa_lr > 0 && !nnrt_flag_given(o, "swa-start")) run->swa_start = c->swa_start;
    if (c->swa_lr > 0 && run->swa_start) {
        if (!nnrt_flag_given(o, "swa-lr")) run->swa_lr = c->swa_lr;
        if (!nnrt_flag_given(o, "swa-anneal-epochs")) run->swa_anneal_epochs = c->swa_anneal_epochs;
    }
    if (!nnrt_flag_given(o, "snapshots")) run->snapshots = c->snapshots;
}

/* The settings of a resumed run: the checkpoint's batch, seed, shuffle, validation split and --epochs unless the
   command line gives them, and then only --epochs and the hyperparameters may differ (a changed hyperparameter
   gives a different run from there on, on purpose; anything else would not be the run that was checkpointed).
   The data path's --augment, --mixup and --cutmix are the checkpoint's too unless given, and may differ like a
   hyperparameter: a run resumed without them augments and mixes as the checkpointed one did. */
void nnrt_resume_options(nnrt_ctx *ctx, const nnrt_options *o, nnrt_options *run, const nnrt_checkpoint *c) {
    char a[64], b[64];
#define SAME(flag, fmt, ours, theirs)                                                                  \
    if (nnrt_flag_given(o, flag) && (ours) != (theirs)) {                                              \
        snprintf(a, sizeof a, fmt, ours); snprintf(b, sizeof b, "--" flag " " fmt, theirs);            \
        resume_conflict(o->resume, "--" flag, a, b);                                                   \
    }
    SAME("batch", "%lld", (long long)o->batch, (long long)c->batch)
    SAME("seed", "%llu", (unsigned long long)o->seed, (unsigned long long)c->seed)
    SAME("val-split", "%g", o->val_split, c->val_split)
#undef SAME
    if (o->no_shuffle && !c->no_shuffle) resume_conflict(o->resume, "--no-shuffle", "", "shuffling");
    if (o->val_x && c->val_split > 0) resume_conflict(o->resume, "--val-x", o->val_x, "--val-split");
    run->batch = c->batch;
    run->seed = c->seed;
    run->no_shuffle = c->no_shuffle;
    if (!o->val_x) run->val_split = c->val_split;
    if (!nnrt_flag_given(o, "epochs")) run->epochs = c->epochs;
    if (!nnrt_flag_given(o, "log-every")) run->log_every = c->log_every;
    if (run->epochs < c->epochs_done)
        nnrt_usage_die("--epochs %lld: the checkpoint %s has already trained %lld epochs", (long long)run->epochs, o->resume,
                       (long long)c->epochs_done);
    for (int i = 0; i < ctx->model->n_hparams; i++) if (o->hp_given[i]) ctx->hp[i] = o->hp[i];
    // The data path's options: the checkpoint's, each unless given again (--augment none, --mixup 0, --cutmix 0 drop
    // one). A new soft-target buffer when the mixing differs from the command line's (nnrt_resume_free frees it).
    if (!nnrt_flag_given(o, "augment") && c->aug.on) {
        run->aug = c->aug;
        run->augment = c->augment;
    }
    if (!nnrt_flag_given(o, "mixup")) run->mixup = c->mixup;
    if (!nnrt_flag_given(o, "cutmix")) run->cutmix = c->cutmix;
    if (run->mixup != o->mixup || run->cutmix != o->cutmix) nnrt_mix_parse(run->mixup, run->cutmix, ctx->model, &run->mix);
    resume_swa(o, run, c);
}

void nnrt_resume_report(const nnrt_ctx *ctx, const nnrt_options *o, const nnrt_options *run, const nnrt_checkpoint *c) {
    if (o->quiet) return;
    printf("resumed %s: %lld of %lld epochs done, step %lld\n", o->resume, (long long)c->epochs_done, (long long)run->epochs,
           (long long)ctx->step);
    if (c->swa_start && !c->swa_lr && !nnrt_flag_given(o, "swa-start"))
        printf("swa: the checkpoint was trained with --swa-start %lld but keeps no --swa-lr (it was written before it did); "
               "give --swa-start and --swa-lr again to go on averaging\n", (long long)c->swa_start);
    int aug = run->augment != o->augment, mix = run->mixup != o->mixup, cut = run->cutmix != o->cutmix;
    int swa = run->swa_start != o->swa_start, lr = run->swa_lr != o->swa_lr, k = run->swa_anneal_epochs != o->swa_anneal_epochs;
    int snap = run->snapshots != o->snapshots;
    if (!aug && !mix && !cut && !swa && !lr && !k && !snap) return;
    printf("resumed with the checkpoint's");
    if (aug) printf(" --augment %s", run->augment);
    if (mix) printf(" --mixup %g", run->mixup);
    if (cut) printf(" --cutmix %g", run->cutmix);
    if (swa) printf(" --swa-start %lld", (long long)run->swa_start);
    if (lr) printf(" --swa-lr %g", run->swa_lr);
    if (k) printf(" --swa-anneal-epochs %lld", (long long)run->swa_anneal_epochs);
    if (snap) printf(" --snapshots %lld", (long long)run->snapshots);
    // how to turn off each option taken (--swa-lr and --swa-anneal-epochs go with --swa-start)
    const char *off[5];
    int n = 0;
    if (aug) off[n++] = "--augment none";
    if (mix) off[n++] = "--mixup 0";
    if (cut) off[n++] = "--cutmix 0";
    if (swa) off[n++] = "--swa-start 0";
    if (snap) off[n++] = "--snapshots 0";
    printf(" (give the flag again to change it");
    for (int i = 0; i < n; i++) printf("%s%s", i == 0 ? "; " : i == n - 1 ? " and " : ", ", off[i]);
    printf(n == 1 ? " turns it off)\n" : n ? " turn one off)\n" : ")\n");
}

void nnrt_resume_free(const nnrt_options *o, nnrt_options *run) {
    if (run->mix.soft != o->mix.soft) free(run->mix.soft);
    run->mix.soft = NULL;
}

void nnrt_check_resumed_data(const char *path, const nnrt_checkpoint *c, const nnrt_dataset *train, int64_t n_val) {
    if (c->n_train != train->x.n || c->n_val != n_val)
        nnrt_die("%s: the checkpoint was trained on %lld samples with %lld for validation, but this run has %lld with %lld "
                 "(give the same data and validation flags to resume)", path, (long long)c->n_train, (long long)c->n_val,
                 (long long)train->x.n, (long long)n_val);
}
