/* unit_safetensors.c — unit tests of the safetensors reader and writer: strict weights, and the general form
 * checkpoints use. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static float params_a[4017], params_b[4017];

/* A safetensors file with the given header JSON and `data` bytes of zeros. */
static void write_st(const char *name, const char *header, size_t data) {
    size_t hl = strlen(header), n = 8 + hl + data;
    unsigned char *buf = calloc(1, n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    write_bytes(at(name), buf, n);
    free(buf);
}

static void load_st(const void *name) { nnrt_load_safetensors(at(name), &fake, params_b); }

#define ST_OK_REST "\"1.running_var\":{\"dtype\":\"F32\",\"shape\":[4000],\"data_offsets\":[64,16064]},\"2.z\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[16064,16068]}"
#define ST_BIAS "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]},"

void test_safetensors(void) {
    nnrt_init_params(&fake, params_a, 9);
    nnrt_save_safetensors(at("w.st"), &fake, params_a);
    nnrt_load_safetensors(at("w.st"), &fake, params_b);
    CHECK("safetensors round trip", memcmp(params_a, params_b, sizeof params_a) == 0);

    write_st("meta.st", "{\"__metadata__\":{\"k\":\"v\",\"n\":{\"x\":[1,2,{}]}},\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]}," ST_BIAS ST_OK_REST "}", 16068);
    nnrt_load_safetensors(at("meta.st"), &fake, params_b);
    CHECK("safetensors metadata allowed, other order", params_b[0] == 0);

    write_st("missing.st", "{" ST_BIAS ST_OK_REST "}", 16068);
    EXPECT_DIE("safetensors missing key", 1, "missing.st: missing tensor '0.weight' (expected F32 of shape (4, 3))", load_st, "missing.st");
    write_st("extra.st", "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]}," ST_BIAS ST_OK_REST ",\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 16068);
    EXPECT_DIE("safetensors extra key", 1, "unexpected tensor 'x'", load_st, "extra.st");
    write_st("dup.st", "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]}," ST_BIAS ST_OK_REST ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]}}", 16068);
    EXPECT_DIE("safetensors duplicate key", 1, "tensor '0.bias' appears twice", load_st, "dup.st");
    write_st("extra1.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]}," ST_BIAS ST_OK_REST "}", 16068);
    EXPECT_DIE("safetensors extra key first", 1, "unexpected tensor 'a' (not a parameter of fake)", load_st, "extra1.st");
    write_st("shape.st", "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}," ST_BIAS ST_OK_REST "}", 16068);
    EXPECT_DIE("safetensors wrong shape", 1, "tensor '0.weight' has shape (3, 4), expected (4, 3)", load_st, "shape.st");
    write_st("dtype.st", "{\"0.weight\":{\"dtype\":\"F16\",\"shape\":[4,3],\"data_offsets\":[0,24]}," ST_BIAS ST_OK_REST "}", 16068);
    EXPECT_DIE("safetensors wrong dtype", 1, "tensor '0.weight' has dtype F16, expected F32", load_st, "dtype.st");
    write_st("bounds.st", "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]}," ST_BIAS ST_OK_REST "}", 100);
    EXPECT_DIE("safetensors offsets past the end", 1, "corrupt safetensors file (tensor '1.running_var'", load_st, "bounds.st");
    write_st("json.st", "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4,3]", 100);
    EXPECT_DIE("safetensors corrupt header", 1, "json.st: corrupt safetensors header", load_st, "json.st");
    write_bytes(at("hlen.st"), "\xff\xff\x00\x00\x00\x00\x00\x00{}", 10);
    EXPECT_DIE("safetensors header length", 1, "hlen.st: corrupt safetensors file (header length 65535", load_st, "hlen.st");
    write_bytes(at("short.st"), "\x02\x00", 2);
    EXPECT_DIE("safetensors too short", 1, "short.st: not a safetensors file", load_st, "short.st");
}

/* The general safetensors writer and reader that checkpoints use: metadata strings (escaped), extra tensors. */
void test_safetensors_general(void) {
    nnrt_init_params(&fake, params_a, 4);
    int64_t order[3] = {2, 0, 1};
    float state[2] = {1.5f, -2.0f};
    nnrt_st_kv meta[2] = {{"nncc.checkpoint", "1"}, {"quote", "a\"b\\c"}};
    nnrt_st_extra extra[2] = {{"optimizer.state", 0, 2, state}, {"train.order", 1, 3, order}};
    nnrt_write_safetensors(at("general.st"), &fake, params_a, meta, 2, extra, 2);
    nnrt_st *f = nnrt_st_read(at("general.st"));
    CHECK("st metadata", strcmp(nnrt_st_meta(f, "nncc.checkpoint"), "1") == 0 && strcmp(nnrt_st_meta(f, "quote"), "a\"b\\c") == 0
                         && strcmp(nnrt_st_meta(f, "format"), "pt") == 0 && nnrt_st_meta(f, "nope") == NULL);
    nnrt_st_load_params(f, &fake, params_b);
    CHECK("st params", memcmp(params_a, params_b, sizeof params_a) == 0);
    const void *sp = nnrt_st_tensor(f, "optimizer.state", 0, 2), *op = nnrt_st_tensor(f, "train.order", 1, 3);
    float s[2] = {0};
    int64_t o[3] = {0};
    if (sp && op) { memcpy(s, sp, sizeof s); memcpy(o, op, sizeof o); }  // the data is not aligned for its type
    CHECK("st extra tensors", sp && op && s[1] == -2.0f && o[0] == 2 && o[2] == 1 && !nnrt_st_tensor(f, "absent", 0, 1));
    nnrt_st_check_unexpected(f, &fake);
    nnrt_st_free(f);
    nnrt_load_safetensors(at("general.st"), &fake, params_b);  // a checkpoint is weights too
    CHECK("st checkpoint as weights", memcmp(params_a, params_b, sizeof params_a) == 0);

    // a validation split: seeded, disjoint, file order kept
    float xs[10];
    int32_t ys[10];
    for (int i = 0; i < 10; i++) { xs[i] = (float)i; ys[i] = i % 3; }
    float *xd = malloc(sizeof xs);
    int32_t *yd = malloc(sizeof ys);
    memcpy(xd, xs, sizeof xs);
    memcpy(yd, ys, sizeof ys);
    nnrt_dataset d = {{strdup("x"), NNRT_F32, 10, 1, xd}, {strdup("y"), NNRT_I32, 10, 1, yd}}, v;
    nnrt_split_validation(&d, 0.3, 7, &v);
    const float *tx = d.x.data, *vx = v.x.data;
    const int32_t *ty = d.y.data;
    int ok = d.x.n == 7 && v.x.n == 3 && d.y.n == 7 && v.y.n == 3, seen = 0;
    for (int i = 0; ok && i < 7; i++) { ok = ty[i] == (int)tx[i] % 3 && (i == 0 || tx[i] > tx[i - 1]); seen |= 1 << (int)tx[i]; }
    for (int i = 0; ok && i < 3; i++) { ok = i == 0 || vx[i] > vx[i - 1]; seen |= 1 << (int)vx[i]; }
    CHECK("validation split", ok && seen == 0x3ff);
    nnrt_dataset_free(&d);
    nnrt_dataset_free(&v);
}
