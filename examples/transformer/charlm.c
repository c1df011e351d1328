/* charlm.c: a character language model on Debian's fortunes (the
 * `fortunes` package), a small decoder-only transformer against a GRU
 * baseline of about the same size, each trained for the same wall time.
 *
 * Text: the plain fortune files of /usr/share/games/fortunes (not *.dat,
 * not the *.u8 links, not off/), split into fortunes at the '%' lines;
 * every 10th fortune is held out for validation. Both splits are streams of
 * fortunes each followed by "%\n"; the vocabulary is the bytes that occur.
 *
 * Transformer: token embedding + learned position embedding, NLAYER pre-norm
 * encoder layers (lg_encoder_layer with a causal mask: self-attention with
 * NHEAD heads and a GELU MLP), a final layer norm and a linear head to the
 * vocabulary. GRU: embedding, one GRU layer, a linear head. Both learn with
 * lg_cross_entropy on every next character of random windows of CTX bytes,
 * AdamW, linear warm-up then cosine decay over the wall budget.
 *
 * It shows: validation bits per character (mean cross-entropy / ln 2 over
 * the held-out fortunes, in windows of CTX bytes) for both models, and text
 * sampled from each (temperature sampling with lg_multinomial).
 * Flags: the common ones, plus --seconds S (the wall budget per model,
 * default 60). --quick trains a fixed number of steps instead, so that its
 * result is the same at any thread count.
 */
#define _POSIX_C_SOURCE 200809L /* scandir, lstat */
#include "../common/common.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FORTUNE_DIR "/usr/share/games/fortunes"
enum { CTX = 64, D = 64, NHEAD = 4, NLAYER = 3, FF = 256, BATCH = 16, GRU_E = 32, GRU_H = 192 };

/* ---- the text ---------------------------------------------------------- */

typedef struct text {
    uint8_t *train, *val; /* dense ids */
    int64_t ntrain, nval, nfortunes;
    int vocab;
    uint8_t bytes[256]; /* id -> byte */
} text;

static void append(uint8_t **buf, int64_t *n, int64_t *cap, const char *s, size_t len)
{
    if (*n + (int64_t)len > *cap) {
        *cap = 2 * (*n + (int64_t)len);
        *buf = realloc(*buf, (size_t)*cap);
        if (!*buf) {
            fprintf(stderr, "charlm: out of memory\n");
            exit(1);
        }
    }
    memcpy(*buf + *n, s, len);
    *n += (int64_t)len;
}

static bool plain_fortune_file(const char *dir, const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.' || (n > 4 && !strcmp(name + n - 4, ".dat")) ||
        (n > 3 && !strcmp(name + n - 3, ".u8")))
        return false;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode); /* not off/, not links */
}

/* Reads every fortune, in file-name order, into the two splits. */
static text text_load(void)
{
    struct dirent **names;
    int nn = scandir(FORTUNE_DIR, &names, NULL, alphasort);
    if (nn < 0) {
        fprintf(stderr,
                "charlm: %s not found: this example reads Debian's fortunes;\n"
                "install them with: apt-get install fortunes\n",
                FORTUNE_DIR);
        exit(1);
    }
    text t = { 0 };
    int64_t cap[2] = { 0, 0 };
    uint8_t *buf[2] = { NULL, NULL };
    int64_t len[2] = { 0, 0 };
    char line[4096];
    for (int i = 0; i < nn; i++) {
        if (plain_fortune_file(FORTUNE_DIR, names[i]->d_name)) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", FORTUNE_DIR, names[i]->d_name);
            FILE *f = fopen(path, "rb");
            bool any = false;
            while (f && fgets(line, sizeof line, f)) {
                int s = (int)(t.nfortunes % 10 == 9);
                if (!strcmp(line, "%\n") || !strcmp(line, "%")) {
                    if (any) {
                        append(&buf[s], &len[s], &cap[s], "%\n", 2);
                        t.nfortunes++;
                    }
                    any = false;
                } else {
                    append(&buf[s], &len[s], &cap[s], line, strlen(line));
                    any = true;
                }
            }
            if (any) { /* a file's last fortune without its '%' line */
                int s = (int)(t.nfortunes % 10 == 9);
                append(&buf[s], &len[s], &cap[s], "%\n", 2);
                t.nfortunes++;
            }
            if (f)
                fclose(f);
        }
        free(names[i]);
    }
    free(names);
    if (t.nfortunes < 10) {
        fprintf(stderr, "charlm: no fortunes in %s; install them with: apt-get install fortunes\n",
                FORTUNE_DIR);
        exit(1);
    }
    int id[256];
    bool seen[256] = { false };
    for (int s = 0; s < 2; s++)
        for (int64_t k = 0; k < len[s]; k++)
            seen[buf[s][k]] = true;
    for (int b = 0; b < 256; b++)
        if (seen[b])
            t.bytes[t.vocab] = (uint8_t)b, id[b] = t.vocab++;
    for (int s = 0; s < 2; s++)
        for (int64_t k = 0; k < len[s]; k++)
            buf[s][k] = (uint8_t)id[buf[s][k]];
    t.train = buf[0], t.ntrain = len[0];
    t.val = buf[1], t.nval = len[1];
    return t;
}

/* The unigram entropy of the training text in bits: what a model that
 * ignores context reaches at best. */
static double unigram_bits(const text *t)
{
    double count[256] = { 0 }, h = 0;
    for (int64_t k = 0; k < t->ntrain; k++)
        count[t->train[k]] += 1;
    for (int c = 0; c < t->vocab; c++)
        if (count[c] > 0)
            h -= count[c] / (double)t->ntrain * log2(count[c] / (double)t->ntrain);
    return h;
}

/* ---- the models -------------------------------------------------------- */

typedef struct model {
    bool is_gru;
    lg_embedding *tok, *pos;
    lg_encoder_layer *layers[NLAYER];
    lg_layernorm *ln_f;
    lg_rnn *gru;
    lg_linear *head;
} model;

static model transformer_new(lg_ctx *ctx, int vocab)
{
    model m = { .is_gru = false };
    m.tok = lg_embedding_new(ctx, "tok_emb", vocab, D, NULL);
    m.pos = lg_embedding_new(ctx, "pos_emb", CTX, D, NULL);
    if (m.tok && m.pos) { /* GPT-2's N(0, 0.02) rather than nn.Embedding's N(0, 1) */
        lg_init_normal(ctx, m.tok->weight, 0, 0.02);
        lg_init_normal(ctx, m.pos->weight, 0, 0.02);
    }
    lg_encoder_opts eo = lg_encoder_opts_default();
    eo.dim_feedforward = FF;
    eo.dropout = 0; /* a minute of training does not overfit */
    eo.activation = LG_ACT_GELU;
    eo.batch_first = true;
    eo.norm_first = true;
    for (int l = 0; l < NLAYER; l++) {
        char name[32];
        snprintf(name, sizeof name, "layers.%d", l);
        m.layers[l] = lg_encoder_layer_new(ctx, name, D, NHEAD, &eo);
    }
    m.ln_f = lg_layernorm_new(ctx, "ln_f", 1, (int64_t[]){ D }, NULL);
    m.head = lg_linear_new(ctx, "head", D, vocab, NULL);
    ex_check(ctx, "transformer");
    return m;
}

static model gru_new(lg_ctx *ctx, int vocab)
{
    model m = { .is_gru = true };
    m.tok = lg_embedding_new(ctx, "tok_emb", vocab, GRU_E, NULL);
    m.gru = lg_rnn_new(ctx, "gru", LG_GRU, GRU_E, GRU_H, NULL);
    m.head = lg_linear_new(ctx, "head", GRU_H, vocab, NULL);
    ex_check(ctx, "gru");
    return m;
}

/* Logits [n, len, vocab] for ids [n, len] (len <= CTX). The GRU starts from
 * h0 ([1, n, H], NULL for zeros) and leaves its last state in *h_n. */
static lg_tensor *forward(lg_ctx *ctx, const model *m, const int64_t *ids, int64_t n, int64_t len,
                          lg_tensor *h0, lg_tensor **h_n)
{
    lg_tensor *idx = lg_tensor_from(ctx, LG_I64, ids, 2, (int64_t[]){ n, len });
    lg_tensor *x = lg_embedding_forward(ctx, m->tok, idx);
    if (m->is_gru) {
        lg_rnn_result r;
        x = lg_transpose(ctx, x, 0, 1); /* [len, n, E] */
        if (lg_rnn_forward(ctx, m->gru, x, NULL, h0, NULL, &r) != LG_OK)
            ex_check(ctx, "gru");
        if (h_n)
            *h_n = r.h_n;
        return lg_transpose(ctx, lg_linear_forward(ctx, m->head, r.output), 0, 1);
    }
    lg_tensor *pos = lg_arange(ctx, LG_I64, 0, (double)len, 1);
    x = lg_add(ctx, x, lg_embedding_forward(ctx, m->pos, pos));
    lg_mha_masks mk = lg_mha_masks_default();
    mk.is_causal = true;
    for (int l = 0; l < NLAYER; l++)
        x = lg_encoder_layer_forward(ctx, m->layers[l], x, &mk);
    return lg_linear_forward(ctx, m->head, lg_layernorm_forward(ctx, m->ln_f, x));
}

/* Mean cross-entropy in nats of next-byte prediction for windows
 * ids[n, CTX + 1] (inputs the first CTX, targets the last CTX). */
static lg_tensor *window_loss(lg_ctx *ctx, const model *m, const int64_t *win, int64_t n, int vocab,
                              int64_t *in, int64_t *tg)
{
    for (int64_t b = 0; b < n; b++)
        for (int t = 0; t < CTX; t++)
            in[b * CTX + t] = win[b * (CTX + 1) + t], tg[b * CTX + t] = win[b * (CTX + 1) + t + 1];
    lg_tensor *logits = forward(ctx, m, in, n, CTX, NULL, NULL);
    logits = lg_reshape(ctx, logits, 2, (int64_t[]){ n * CTX, vocab });
    lg_tensor *target = lg_tensor_from(ctx, LG_I64, tg, 1, (int64_t[]){ n * CTX });
    return lg_cross_entropy(ctx, logits, target, NULL);
}

/* Validation bits per character: the held-out stream cut into consecutive
 * windows of CTX + 1 bytes (overlapping by one), each predicted from its own
 * start, as both models were trained. */
static double evaluate(lg_ctx *ctx, const model *m, const text *t, int64_t max_windows)
{
    int64_t nw = (t->nval - 1) / CTX;
    if (nw > max_windows)
        nw = max_windows;
    enum { EB = 64 };
    static int64_t win[EB * (CTX + 1)], in[EB * CTX], tg[EB * CTX];
    double sum = 0;
    lg_no_grad_begin(ctx);
    for (int64_t w0 = 0; w0 < nw; w0 += EB) {
        int64_t n = nw - w0 < EB ? nw - w0 : EB;
        for (int64_t b = 0; b < n; b++)
            for (int k = 0; k <= CTX; k++)
                win[b * (CTX + 1) + k] = t->val[(w0 + b) * CTX + k];
        lg_tensor *loss = window_loss(ctx, m, win, n, t->vocab, in, tg);
        ex_check(ctx, "evaluation");
        sum += lg_item(ctx, loss) * (double)n;
        lg_step_end(ctx);
    }
    lg_no_grad_end(ctx);
    return sum / (double)nw / log(2.0);
}

/* Prints len sampled bytes after the prompt "%\n" (the start of a fortune),
 * at temperature temp: the transformer re-reads its last CTX bytes each
 * step, the GRU carries its state. */
static void sample(lg_ctx *ctx, const model *m, const text *t, int len, double temp)
{
    int64_t hist[CTX];
    int n = 0, nl = 0;
    for (int c = 0; c < t->vocab; c++)
        if (t->bytes[c] == '\n')
            nl = c;
    hist[n++] = nl;
    float *h = calloc(GRU_H, sizeof *h);
    lg_no_grad_begin(ctx);
    for (int k = 0; k < len; k++) {
        lg_tensor *logits, *h_n = NULL;
        if (m->is_gru) {
            lg_tensor *h0 = lg_tensor_from(ctx, LG_F32, h, 3, (int64_t[]){ 1, 1, GRU_H });
            logits = forward(ctx, m, &hist[n - 1], 1, 1, h0, &h_n);
        } else {
            logits = forward(ctx, m, hist, 1, n, NULL, NULL);
        }
        logits = lg_reshape(ctx, lg_narrow(ctx, logits, 1, lg_tensor_dim(logits, 1) - 1, 1), 1,
                            (int64_t[]){ t->vocab });
        lg_tensor *next =
            lg_multinomial(ctx, lg_softmax(ctx, lg_mul_scalar(ctx, logits, 1 / temp), 0), 1, true);
        ex_check(ctx, "sampling");
        if (h_n)
            memcpy(h, lg_tensor_data(h_n), GRU_H * sizeof *h);
        int64_t c = *(int64_t *)lg_tensor_data(next);
        lg_step_end(ctx);
        putchar(t->bytes[c]);
        if (n == CTX)
            memmove(hist, hist + 1, (CTX - 1) * sizeof *hist), n--;
        hist[n++] = c;
    }
    lg_no_grad_end(ctx);
    free(h);
    putchar('\n');
}

/* ---- training ---------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct run {
    int64_t steps;
    double seconds, train_loss, bpc;
    int64_t params;
} run;

static int64_t param_count(lg_ctx *ctx)
{
    int64_t n = 0;
    for (int i = 0; i < lg_param_count(ctx); i++)
        n += lg_tensor_numel(lg_param_at(ctx, i));
    return n;
}

/* Trains m for `seconds` of wall time (or, with max_steps > 0, exactly
 * max_steps steps), drawing windows from a generator seeded with seed so
 * that both models see the same windows in the same order. The learning
 * rate warms up linearly over the first 5% of the budget, then follows a
 * cosine to 0 at its end. */
static run train(lg_ctx *ctx, const model *m, const text *t, const ex_args *a, double seconds,
                 int64_t max_steps, double lr, FILE *csv, int model_id)
{
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAMW);
    oo.lr = lr;
    oo.weight_decay = 0.01;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    ex_check(ctx, "optimizer");
    static int64_t win[BATCH * (CTX + 1)], in[BATCH * CTX], tg[BATCH * CTX];
    uint64_t rs = a->seed;
    run r = { .params = param_count(ctx) };
    double t0 = ex_seconds(), ema = NAN;
    ex_progress p;
    ex_progress_start(&p, m->is_gru ? "gru" : "transformer", max_steps > 0 ? max_steps : 1000);
    for (;;) {
        double frac =
            max_steps > 0 ? (double)r.steps / (double)max_steps : (ex_seconds() - t0) / seconds;
        if (frac >= 1)
            break;
        double f = frac < 0.05 ? (frac + 0.01) / 0.06
                               : 0.5 * (1 + cos(3.14159265358979323846 * (frac - 0.05) / 0.95));
        lg_optim_set_lr(opt, lr * f);
        for (int b = 0; b < BATCH; b++) {
            int64_t s = (int64_t)(splitmix(&rs) % (uint64_t)(t->ntrain - CTX - 1));
            for (int k = 0; k <= CTX; k++)
                win[b * (CTX + 1) + k] = t->train[s + k];
        }
        lg_tensor *loss = window_loss(ctx, m, win, BATCH, t->vocab, in, tg);
        if (lg_backward(ctx, loss) != LG_OK)
            ex_check(ctx, "training");
        double l = lg_item(ctx, loss);
        lg_clip_grad_norm(ctx, 1.0, 2);
        ex_optim_step(opt);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
        ex_check(ctx, "training");
        ema = isnan(ema) ? l : 0.95 * ema + 0.05 * l;
        r.steps++;
        if (r.steps % 25 == 0)
            ex_csv_row(csv, 4, (double[]){ model_id, (double)r.steps, ex_seconds() - t0, ema });
        ex_progress_update(&p, max_steps > 0 ? r.steps : (int64_t)(1000 * frac), ema);
    }
    r.seconds = ex_seconds() - t0;
    r.train_loss = ema;
    char msg[128];
    snprintf(msg, sizeof msg, "%lld steps in %.1f s, train loss %.3f nats", (long long)r.steps,
             r.seconds, ema);
    ex_progress_end(&p, msg);
    r.bpc = evaluate(ctx, m, t, a->quick ? 200 : INT64_MAX);
    return r;
}

/* Takes --seconds S out of argv (ex_parse knows only the common flags). */
static double take_seconds(int *argc, char **argv)
{
    double s = 60;
    for (int i = 1; i < *argc; i++)
        if (!strcmp(argv[i], "--seconds") && i + 1 < *argc) {
            s = atof(argv[i + 1]);
            memmove(argv + i, argv + i + 2, (size_t)(*argc - i - 1) * sizeof *argv);
            *argc -= 2;
            i--;
        }
    if (!(s > 0)) {
        fprintf(stderr, "charlm: --seconds needs a positive number\n");
        exit(2);
    }
    return s;
}

int main(int argc, char **argv)
{
    double seconds = take_seconds(&argc, argv);
    ex_args a = ex_parse(argc, argv, "charlm", 1);
    double t0 = ex_seconds();
    text t = text_load();
    double h1 = unigram_bits(&t);
    printf("%lld fortunes: %lld training bytes, %lld validation bytes, %d symbols "
           "(unigram entropy %.3f bits)\n",
           (long long)t.nfortunes, (long long)t.ntrain, (long long)t.nval, t.vocab, h1);
    /* --quick: a fixed number of steps, so the result is the same bits at
     * any thread count (a wall budget is not) */
    int64_t steps = a.quick ? 100 : 0;
    if (!a.quick)
        printf("each model trains for %.0f s of wall time\n", seconds);
    FILE *csv = ex_csv_open(&a, "training.csv", "model,step,seconds,train_loss");

    lg_ctx *tctx = ex_ctx(&a);
    model tm = transformer_new(tctx, t.vocab);
    run tr = train(tctx, &tm, &t, &a, seconds, steps, 3e-3, csv, 0);
    printf("transformer: %lld parameters, validation %.3f bits per character\n",
           (long long)tr.params, tr.bpc);

    lg_ctx *gctx = ex_ctx(&a);
    model gm = gru_new(gctx, t.vocab);
    run gr = train(gctx, &gm, &t, &a, seconds, steps, 3e-3, csv, 1);
    printf("gru: %lld parameters, validation %.3f bits per character\n", (long long)gr.params,
           gr.bpc);
    fclose(csv);

    printf("\n--- transformer sample (temperature 0.8) ---\n");
    sample(tctx, &tm, &t, a.quick ? 120 : 600, 0.8);
    printf("--- gru sample (temperature 0.8) ---\n");
    sample(gctx, &gm, &t, a.quick ? 80 : 300, 0.8);
    printf("\n");

    ex_result(&a, ex_seconds() - t0,
              "transformer_bpc=%.4f gru_bpc=%.4f unigram_bits=%.4f transformer_params=%lld "
              "gru_params=%lld transformer_steps=%lld gru_steps=%lld train_seconds=%.1f",
              tr.bpc, gr.bpc, h1, (long long)tr.params, (long long)gr.params, (long long)tr.steps,
              (long long)gr.steps, tr.seconds + gr.seconds);
    lg_ctx_free(tctx);
    lg_ctx_free(gctx);
    free(t.train);
    free(t.val);
    return 0;
}
