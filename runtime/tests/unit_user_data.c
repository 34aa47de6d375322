/* unit_user_data.c — unit tests of the data a user brings: CSV with a header, quotes, delimiters and a label column
 * (csv.c), class names (labels.c), input preprocessing (prep.c) and its metadata in weights files (weights.c). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static int close_to(double a, double b, double rel) { return fabs(a - b) <= rel * fmax(fabs(b), 1e-30); }

// ----------------------------------------------------------------------------
// csv.c

static void test_csv_table(void) {
    const char *iris = "sepal length;sepal width;\"species; name\";petal\n"
                       "5.1;3.5;\"setosa\";0.2\n"
                       "\n"
                       " 7.0 ; 3.2 ;versicolor; 1.4\r\n"
                       "6.3;3.3;\"vir\"\"ginica\";2.5";
    write_bytes(at("iris.csv"), iris, strlen(iris));
    nnrt_csv_table t = nnrt_csv_read(at("iris.csv"), &(nnrt_csv_opts){';', "species; name"}, 0, 0);
    CHECK("csv label by name", t.rows == 3 && t.cols == 3 && strcmp(t.label_name, "'species; name'") == 0);
    CHECK("csv label column left out", t.x[0] == 5.1f && t.x[2] == 0.2f && t.x[3] == 7.0f && t.x[5] == 1.4f && t.x[8] == 2.5f);
    CHECK("csv labels unquoted", strcmp(t.labels[0], "setosa") == 0 && strcmp(t.labels[1], "versicolor") == 0 &&
                                 strcmp(t.labels[2], "vir\"ginica") == 0);
    CHECK("csv lines", t.lines[0] == 2 && t.lines[1] == 4 && t.lines[2] == 5);
    nnrt_csv_table_free(&t);
    t = nnrt_csv_read(at("iris.csv"), &(nnrt_csv_opts){';', "2"}, 3, 0);
    CHECK("csv label by index", t.rows == 3 && strcmp(t.label_name, "'species; name'") == 0 && t.x[1] == 3.5f);
    nnrt_csv_table_free(&t);
    write_bytes(at("nohdr.tsv.csv"), "1\t2\tcat\n3\t4\tdog\n", 16);
    write_bytes(at("num.csv"), "1,2\n3,4\n", 8);
    t = nnrt_csv_read(at("nohdr.tsv.csv"), &(nnrt_csv_opts){'\t', "-1"}, 2, 0);
    CHECK("csv no header, names in the label column, tabs, index -1",
          t.rows == 2 && t.cols == 2 && strcmp(t.label_name, "2") == 0 && strcmp(t.labels[1], "dog") == 0 && t.x[3] == 4);
    nnrt_csv_table_free(&t);
    write_bytes(at("feat.csv"), "a,b\n1,2\n", 8);
    t = nnrt_csv_read(at("feat.csv"), &(nnrt_csv_opts){',', "species"}, 2, 1);
    CHECK("csv optional label column absent (predict)", t.rows == 1 && t.cols == 2 && !t.labels);
    nnrt_csv_table_free(&t);
    t = nnrt_csv_read(at("feat.csv"), &(nnrt_csv_opts){',', "-1"}, 2, 1);
    CHECK("csv optional label index absent: as many fields as inputs", t.rows == 1 && t.cols == 2 && !t.labels && t.x[1] == 2);
    nnrt_csv_table_free(&t);
}

static void die_csv_read(const void *p) {
    const char *const *a = p;  // file, delimiter, label column
    nnrt_csv_table t = nnrt_csv_read(at(a[0]), &(nnrt_csv_opts){a[1][0], a[2]}, 0, 0);
    (void)t;
}

static void test_csv_errors(void) {
    const char *files[][2] = {{"q.csv", "x,y\n1,\"open\n"}, {"q2.csv", "x,y\n1,\"a\"b\n"}, {"r.csv", "x,y,s\n1,2,a\n1,b\n"},
                              {"n.csv", "x,y,s\n1,two,a\n"}};
    for (int i = 0; i < 4; i++) write_bytes(at(files[i][0]), files[i][1], strlen(files[i][1]));
    EXPECT_DIE("csv unknown column", 1, "iris.csv: --label-column kind: no such column in the header (it has 'sepal length', "
               "'sepal width', 'species; name', 'petal')", die_csv_read, ((const char *[]){"iris.csv", ";", "kind"}));
    EXPECT_DIE("csv name without a header", 1, "num.csv: --label-column kind: the file has no header row",
               die_csv_read, ((const char *[]){"num.csv", ",", "kind"}));
    EXPECT_DIE("csv index out of range", 1, "--label-column 3: the file has 3 columns", die_csv_read,
               ((const char *[]){"nohdr.tsv.csv", "\t", "3"}));
    EXPECT_DIE("csv open quote", 1, "q.csv:2: column 2: a quote is not closed on its line", die_csv_read,
               ((const char *[]){"q.csv", ",", "y"}));
    EXPECT_DIE("csv text after quote", 1, "q2.csv:2: column 2: text after the closing quote", die_csv_read,
               ((const char *[]){"q2.csv", ",", "y"}));
    EXPECT_DIE("csv ragged with labels", 1, "r.csv:3: expected 3 columns, got 2", die_csv_read, ((const char *[]){"r.csv", ",", "s"}));
    EXPECT_DIE("csv feature not a number", 1, "n.csv:2: column 2: expected a number, got 'two'", die_csv_read,
               ((const char *[]){"n.csv", ",", "s"}));
}

// ----------------------------------------------------------------------------
// labels.c

static nnrt_csv_table label_table(const char *const *labels, int n) {
    nnrt_csv_table t = {.rows = n, .cols = 0, .labels = nnrt_malloc((size_t)n * sizeof(char *)),
                        .lines = nnrt_malloc((size_t)n * sizeof(long)), .label_name = "'species'"};
    for (int i = 0; i < n; i++) { t.labels[i] = strdup(labels[i]); t.lines[i] = i + 2; }
    return t;
}

static void die_labels_table(const void *p) {
    const char *const *a = p;  // known classes (comma-separated, may be ""), then labels (NULL-terminated)
    nnrt_classes c = {0};
    char names[256];
    snprintf(names, sizeof names, "%s", a[0]);
    for (char *tok = strtok(names, ","); tok; tok = strtok(NULL, ",")) {
        c.names = realloc(c.names, (size_t)(c.n + 1) * sizeof *c.names);
        c.names[c.n++] = strdup(tok);
    }
    int n = 0;
    while (a[1 + n]) n++;
    nnrt_csv_table t = label_table(a + 1, n);
    nnrt_array y = nnrt_labels_from_table("v.csv", &t, &fake, &(nnrt_data_opts){.classes = &c, .learn = c.n == 0});
    (void)y;
}

static void test_labels(void) {
    nnrt_classes c = {0};
    nnrt_csv_table t = label_table((const char *[]){"virginica", "setosa", "versicolor", "setosa"}, 4);
    nnrt_array y = nnrt_labels_from_table("t.csv", &t, &fake, &(nnrt_data_opts){.classes = &c, .learn = 1});
    const int32_t *k = y.data;
    CHECK("class names sorted", c.n == 3 && strcmp(c.names[0], "setosa") == 0 && strcmp(c.names[2], "virginica") == 0);
    CHECK("class names mapped", y.n == 4 && k[0] == 2 && k[1] == 0 && k[2] == 1 && k[3] == 0);
    nnrt_array_free(&y);
    nnrt_csv_table_free(&t);
    t = label_table((const char *[]){"versicolor", "virginica"}, 2);
    y = nnrt_labels_from_table("v.csv", &t, &fake, &(nnrt_data_opts){.classes = &c});
    CHECK("known classes map a validation file", ((int32_t *)y.data)[0] == 1 && ((int32_t *)y.data)[1] == 2);
    nnrt_array_free(&y);
    nnrt_csv_table_free(&t);
    nnrt_classes_free(&c);
    t = label_table((const char *[]){"3", "0", "2"}, 3);
    y = nnrt_labels_from_table("t.csv", &t, &fake, &(nnrt_data_opts){.classes = &c, .learn = 1});
    CHECK("integer labels are class indices", c.n == 0 && ((int32_t *)y.data)[0] == 3 && ((int32_t *)y.data)[2] == 2);
    nnrt_array_free(&y);
    nnrt_csv_table_free(&t);
    EXPECT_DIE("unknown class", 1, "v.csv: row 2 (line 3): unknown class 'virginca' in the label column 'species' (the classes are "
               "'setosa', 'versicolor', 'virginica')", die_labels_table,
               ((const char *[]){"setosa,versicolor,virginica", "setosa", "virginca", NULL}));
    EXPECT_DIE("more names than classes", 1, "v.csv: the label column 'species' holds 5 distinct class names, but model 'fake' has "
               "4 classes", die_labels_table, ((const char *[]){"", "a", "b", "c", "d", "e", NULL}));
    EXPECT_DIE("index out of range", 1, "v.csv: row 1 (line 2): label 4 is outside [0, 4)", die_labels_table,
               ((const char *[]){"", "4", NULL}));
}

// ----------------------------------------------------------------------------
// prep.c

static void test_prep(void) {
    nnrt_prep p = {0};
    CHECK("scale 1/255 divides", nnrt_prep_set_scale(&p, "1/255") && p.div == 255.0f);
    CHECK("scale 0.5 multiplies", nnrt_prep_set_scale(&p, "0.5") && p.div == 0 && p.mul == 0.5f);
    CHECK("scale 2/3 multiplies", nnrt_prep_set_scale(&p, "2/3") && p.div == 0 && p.mul == (float)(2.0 / 3.0));
    CHECK("bad scales", !nnrt_prep_set_scale(&p, "abc") && !nnrt_prep_set_scale(&p, "-1") && !nnrt_prep_set_scale(&p, "1/0") &&
                        !nnrt_prep_set_scale(&p, "") && !nnrt_prep_set_scale(&p, "1/"));
    // 3 features over 4 samples; the third is constant (std 1, as StandardScaler).
    float v[12] = {1, 10, 5, 2, 20, 5, 3, 30, 5, 6, 40, 5};
    nnrt_array x = {.path = "x.npy", .dtype = NNRT_F32, .n = 4, .dim = 3, .data = v};
    nnrt_prep_fit(&p, &x, &fake, "0.5", "feature");
    double m0 = (1 + 2 + 3 + 6) / 8.0, s0 = sqrt(((0.5 - m0) * (0.5 - m0) + (1 - m0) * (1 - m0) + (1.5 - m0) * (1.5 - m0) + (3 - m0) * (3 - m0)) / 4);
    CHECK("feature mean and std (ddof 0)", p.n_stats == 3 && close_to(p.mean[0], m0, 1e-6) && close_to(p.std[0], s0, 1e-6) &&
                                           close_to(p.mean[1], 12.5, 1e-6) && close_to(p.std[1], sqrt(31.25), 1e-6));
    CHECK("constant feature: std 1", p.mean[2] == 2.5f && p.std[2] == 1.0f && p.max_abs == 20);
    float row[4];
    nnrt_prep_row(&p, &x, 3, row);
    CHECK("row applied", row[0] == (3.0f - p.mean[0]) / p.std[0] && row[1] == (20.0f - p.mean[1]) / p.std[1] && row[2] == 0);
    nnrt_prep_free(&p);
    // An image model (C, H, W) = (2, 1, 2): channel 0 is features 0-1, channel 1 features 2-3.
    nnrt_model img = fake;
    img.input_dim = 4;
    img.input_rank = 3;
    img.input_shape[0] = 2, img.input_shape[1] = 1, img.input_shape[2] = 2;
    uint8_t u[8] = {0, 255, 10, 20, 255, 255, 30, 40};
    nnrt_array ux = {.path = "u.npy", .dtype = NNRT_U8, .n = 2, .dim = 4, .data = u};
    nnrt_prep_fit(&p, &ux, &img, NULL, "channel");
    double cm = (0 + 1 + 1 + 1) / 4.0, cs = sqrt((cm * cm + 3 * (1 - cm) * (1 - cm)) / 4);
    CHECK("auto scale of uint8 is / 255", strcmp(p.scale, "auto") == 0 && p.automatic && p.max_abs == 1);
    CHECK("channel statistics", p.n_stats == 2 && close_to(p.mean[0], cm, 1e-6) && close_to(p.std[0], cs, 1e-6) &&
                                close_to(p.mean[1], 25 / 255.0, 1e-6) && p.fmean[1] == p.mean[0] && p.fstd[2] == p.std[1]);
    nnrt_prep_row(&p, &ux, 0, row);
    CHECK("uint8 row: divide, then normalize", row[0] == (0.0f / 255.0f - p.mean[0]) / p.std[0] &&
                                              row[1] == (255.0f / 255.0f - p.mean[0]) / p.std[0]);
    nnrt_prep_free(&p);
}

static void warn_range(const void *p) {
    nnrt_prep prep = {0};
    float train[2] = {0.5f, 1.0f}, raw[2] = {0, 255};
    nnrt_array tx = {.path = "train.npy", .dtype = NNRT_F32, .n = 2, .dim = 1, .data = train};
    nnrt_array rx = {.path = p, .dtype = NNRT_F32, .n = 2, .dim = 1, .data = raw};
    nnrt_model one = fake;
    one.input_dim = 1;
    nnrt_prep_fit(&prep, &tx, &one, NULL, NULL);
    nnrt_prep_check_range(&prep, &rx);
    nnrt_prep_check_range(&prep, &tx);  // its own data: no warning (the expectation counts one line below)
}

static void die_meta(const void *p) {
    nnrt_st *f = nnrt_st_read(at(p));
    nnrt_data_info d;
    nnrt_data_info_read(f, &fake, &d);
}

static void test_data_info(void) {
    static float params[4017];
    nnrt_data_info d = {.has_prep = 1};
    float v[6] = {1, 2, 3, 4, 5, 7};
    nnrt_array x = {.path = "x.npy", .dtype = NNRT_F32, .n = 2, .dim = 3, .data = v};
    nnrt_prep_fit(&d.prep, &x, &fake, "1/3", "feature");
    d.classes.n = 2;
    d.classes.names = nnrt_malloc(2 * sizeof(char *));
    d.classes.names[0] = strdup("Iris\tsetosa");
    d.classes.names[1] = strdup("Iris \"virginica\"");
    nnrt_save_weights(at("info.st"), &fake, params, &d);
    nnrt_data_info r;
    nnrt_load_weights(at("info.st"), &fake, params, &r);
    CHECK("metadata round trip: prep", r.has_prep && strcmp(r.prep.scale, "1/3") == 0 && r.prep.div == 3.0f &&
                                       r.prep.norm == NNRT_NORM_FEATURE && r.prep.max_abs == d.prep.max_abs &&
                                       memcmp(r.prep.mean, d.prep.mean, 3 * sizeof(float)) == 0 &&
                                       memcmp(r.prep.std, d.prep.std, 3 * sizeof(float)) == 0 && r.prep.fstd[2] == d.prep.std[2]);
    CHECK("metadata round trip: class names (quote, tab)", r.classes.n == 2 && strcmp(r.classes.names[0], "Iris\tsetosa") == 0 &&
                                                          strcmp(r.classes.names[1], "Iris \"virginica\"") == 0);
    nnrt_data_info_free(&r);
    nnrt_data_info_free(&d);
    nnrt_save_weights(at("plain.st"), &fake, params, NULL);
    nnrt_load_weights(at("plain.st"), &fake, params, &r);
    CHECK("no metadata: defaults", !r.has_prep && r.classes.n == 0);
    nnrt_st_kv bad_std[] = {{"input.scale", "1"}, {"input.normalize", "feature"}, {"input.mean", "0,0,0"}, {"input.std", "1,0,1"}};
    nnrt_write_safetensors(at("badstd.st"), &fake, params, bad_std, 4, NULL, 0);
    nnrt_st_kv bad_classes[] = {{"classes", "2"}, {"class.0", "b"}, {"class.1", "a"}};
    nnrt_write_safetensors(at("badcls.st"), &fake, params, bad_classes, 3, NULL, 0);
    EXPECT_DIE("metadata std 0", 1, "badstd.st: metadata 'input.std' is '1,0,1', expected 3 comma-separated positive numbers",
               die_meta, "badstd.st");
    EXPECT_DIE("metadata classes unsorted", 1, "badcls.st: metadata 'class.1' ('a') does not sort after the class before it",
               die_meta, "badcls.st");
    EXPECT_DIE("range warning", 0, "warning: raw.npy: its inputs reach 255 after --scale auto (floats as they are), 255 times "
               "the training inputs' largest (1)", warn_range, "raw.npy");
    {   // auto: the same weights divide a uint8 file by 255 and take a float file as it is (ToTensor's rule)
        nnrt_prep a = {0};
        nnrt_prep_set_scale(&a, "auto");
        uint8_t u[2] = {51, 255};
        float f[2] = {51, 255}, ru[2], rf[2];
        nnrt_prep_row(&a, &(nnrt_array){.dtype = NNRT_U8, .n = 1, .dim = 2, .data = u}, 0, ru);
        nnrt_prep_row(&a, &(nnrt_array){.dtype = NNRT_F32, .n = 1, .dim = 2, .data = f}, 0, rf);
        CHECK("auto scale per dtype", ru[0] == 51.0f / 255.0f && ru[1] == 1.0f && rf[0] == 51 && rf[1] == 255);
    }
}

void test_user_data(void) {
    test_csv_table();
    test_csv_errors();
    test_labels();
    test_prep();
    test_data_info();
}
