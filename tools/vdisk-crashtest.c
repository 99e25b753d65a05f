/*
 * vdisk-crashtest - power-cut the emulated disks at random points and check
 * every durability promise (docs/crash-testing.md).
 *
 * For each device (IDE, virtio-blk, SCSI) x mode (cache mode x initial write
 * cache x FUA use), it runs random guest command sequences in-process
 * against a backend opened with driver=crashsim over the null driver, and
 * cuts the power at random points, with requests in flight or not.  Each
 * cut checks every legal crash state against what the GUEST was promised
 * (its own VdCrashGuest log, so a device that loses a FUA bit or a FLUSH is
 * caught) and against what the backend promised (its own view, which also
 * knows when the backend's WCE 1->0 drain really finished); --oracle picks one.  A sequence
 * is fully determined by its seed, printed with any failure for --replay.
 *
 * The command line follows system/cmdline.h; usage_text is its manual.
 */
#include "block/crashsim.h"
#include "broken-drivers.h"
#include "crash-guests.h"
#include "system/cmdline.h"

#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS_PER_SEQUENCE 48
#define RESET_HOLD_US 2000    /* how long reset_rewrite holds the write it abandons */
#define LBA_SPAN 256          /* a small disk region, so that writes overlap */

typedef struct Mode {
    VdCacheMode cache;
    bool wce, fua;
} Mode;

typedef struct Config {
    const CrashGuestOps *devices[3];
    unsigned ndevices;
    int cache, wce, fua;      /* -1: all */
    uint64_t budget;          /* crash states per combination */
    uint64_t check_budget;    /* cut points per combination instead (--checks), 0: none */
    uint64_t seed;
    const char *tear;
    const char *driver;
    bool expect_failures, json, replay;
    bool guest_oracle, backend_oracle; /* whose promises each cut checks */
    uint64_t replay_seed;
} Config;

/* What one combination found. */
typedef struct Tally {
    uint64_t cuts, checks, promised, failures, sequences, device_errors;
    double secs;
    bool failed;
    uint64_t fail_seq, fail_op, fail_state, fail_lba, cuts_at_failure, checks_at_failure;
    const char *fail_view;
} Tally;

/* What a slot holds: a write (its guest-log record) or a flush (its seq). */
typedef struct SlotUse {
    bool busy;
    VdCrashGuestWrite *write;
    uint64_t flush;
} SlotUse;

/* One running sequence. */
typedef struct Seq {
    const CrashGuestOps *ops;
    CrashGuest *g;
    VdBlockBackend *blk;
    VdCrashGuest *view;         /* the guest's own promises */
    const Config *c;
    uint64_t rng;
    SlotUse slot[CG_MAX_DEPTH];
    bool wce;
    uint64_t writes;
    uint8_t buf[CG_MAX_SECTORS * 512];
} Seq;

static const CrashGuestOps *const all_devices[] = { &crash_guest_ide, &crash_guest_virtio_blk, &crash_guest_scsi };
static const VdCacheMode all_caches[] = { VD_CACHE_WRITEBACK, VD_CACHE_NONE, VD_CACHE_WRITETHROUGH,
                                          VD_CACHE_DIRECTSYNC, VD_CACHE_UNSAFE };

/* splitmix64 step: the sequence's random numbers. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Reap one finished request, if any; false if none finished. */
static bool reap(Seq *s, Tally *t)
{
    unsigned slot;
    bool ok;
    if (!s->ops->poll(s->g, &slot, &ok)) {
        return false;
    }
    SlotUse *u = &s->slot[slot];
    if (u->write) {
        vd_crash_guest_write_done(s->view, u->write, ok, !s->wce);
    } else {
        vd_crash_guest_flush_done(s->view, u->flush, ok);
    }
    *u = (SlotUse){ 0 };
    t->device_errors += !ok;
    return true;
}

/* Wait until a slot is free; returns it. */
static unsigned free_slot(Seq *s, Tally *t)
{
    for (;;) {
        while (reap(s, t)) {
        }
        for (unsigned i = 0; i < s->ops->depth; i++) {
            if (!s->slot[i].busy) {
                return i;
            }
        }
        g_main_context_iteration(NULL, TRUE);
    }
}

/* Wait until nothing is in flight. */
static void wait_idle(Seq *s, Tally *t)
{
    for (;;) {
        while (reap(s, t)) {
        }
        bool any = false;
        for (unsigned i = 0; i < s->ops->depth; i++) {
            any |= s->slot[i].busy;
        }
        if (!any) {
            return;
        }
        g_main_context_iteration(NULL, TRUE);
    }
}

/* Cut the power now, check one view's promises, and add the findings to the tally. */
static void cut_view(Seq *s, Tally *t, VdCrashGuest *view, uint64_t seq_seed, uint64_t op)
{
    VdCrashReport r;
    g_autoptr(GError) err = NULL;
    bool ok = view ? vd_blk_crash_check_guest(s->blk, view, seq_seed ^ (op << 32), &r, &err)
                   : vd_blk_crash_check(s->blk, seq_seed ^ (op << 32), &r, &err);
    if (!ok) {
        g_error("%s", err->message);
    }
    if (s->c->replay) {
        g_autoptr(GString) line = g_string_new(NULL);
        vd_crash_report_format(&r, line);
        printf("  op %3" G_GUINT64_FORMAT " %s view: %s\n", op, view ? "guest" : "backend", line->str);
    }
    if (r.failures && !t->failed && !r.unsafe) {
        t->failed = true;
        t->fail_seq = seq_seed;
        t->fail_op = op;
        t->fail_state = r.first_cut;
        t->fail_lba = r.first_lba;
        t->cuts_at_failure = t->cuts + r.first_cut + 1;
        t->checks_at_failure = t->checks + 1;
        t->fail_view = view ? "guest" : "backend";
    }
    t->cuts += r.cuts;
    t->checks++;
    t->promised += r.promised;
    t->failures += r.unsafe ? 0 : r.failures;
}

/* Cut the power now: check the guest's promises and the backend's, as configured. */
static void cut(Seq *s, Tally *t, uint64_t seq_seed, uint64_t op)
{
    if (s->c->guest_oracle) {
        cut_view(s, t, s->view, seq_seed, op);
    }
    if (s->c->backend_oracle) {
        cut_view(s, t, NULL, seq_seed, op);
    }
}

/* Start write number ++writes (its id in every sector) of nsect sectors at lba in a free slot; returns the slot. */
static unsigned start_write(Seq *s, Tally *t, uint64_t lba, unsigned nsect, bool fua)
{
    unsigned slot = free_slot(s, t);
    uint64_t id = ++s->writes;
    for (unsigned i = 0; i < nsect; i++) {
        uint8_t *p = s->buf + i * 512;
        memset(p, (uint8_t)id, 512);
        memcpy(p, &id, sizeof(id));
        memcpy(p + 8, &i, sizeof(i));
    }
    s->slot[slot] = (SlotUse){ .busy = true, .write = vd_crash_guest_write(s->view, lba * 512, s->buf, nsect * 512, fua) };
    s->ops->submit_write(s->g, slot, lba, nsect, fua, s->buf);
    return slot;
}

/* Start one random write. */
static void random_write(Seq *s, Tally *t, const Mode *m)
{
    unsigned nsect = 1 + next_rand(&s->rng) % 16;
    uint64_t lba = next_rand(&s->rng) % (LBA_SPAN - nsect);
    bool fua = m->fua && s->ops->has_fua && next_rand(&s->rng) % 3 == 0;
    start_write(s, t, lba, nsect, fua);
}

/* Switch the write cache the device's way, and note what that promises. */
static void switch_wce(Seq *s, Tally *t, bool on)
{
    if (s->ops->depth == 1) {
        wait_idle(s, t); /* one command at a time */
    }
    uint64_t sw = on ? 0 : vd_crash_guest_cache_off(s->view);
    s->wce = on;
    bool ok = s->ops->set_wce(s->g, on);
    t->device_errors += !ok;
    if (!on && s->ops->switch_drains) {
        vd_crash_guest_cache_off_done(s->view, sw, ok);
    }
}

/*
 * Reset the device under a write held in the host (delay.write), then
 * rewrite the same sectors with FUA: the abandoned write must never land
 * over the promised rewrite.  Two guards keep that order (the IDE drive
 * stays BSY after SRST until its orphans finish; the backend serialises
 * overlapping writes); docs/crash-testing.md shows the oracle bites once
 * both are gone.
 */
static void reset_rewrite(Seq *s, Tally *t)
{
    wait_idle(s, t);
    unsigned nsect = 1 + next_rand(&s->rng) % 16;
    uint64_t lba = next_rand(&s->rng) % (LBA_SPAN - nsect);
    vd_blk_set_delay(s->blk, VD_FAULT_WRITE, RESET_HOLD_US);
    unsigned slot = start_write(s, t, lba, nsect, next_rand(&s->rng) % 2);
    g_main_context_iteration(NULL, FALSE);
    s->ops->reset(s->g);
    vd_blk_set_delay(s->blk, VD_FAULT_WRITE, 0);
    vd_crash_guest_write_done(s->view, s->slot[slot].write, false, !s->wce);
    s->slot[slot] = (SlotUse){ 0 };
    switch_wce(s, t, s->wce); /* a reset may revert the cache to its power-on state */
    start_write(s, t, lba, nsect, true);
    wait_idle(s, t);
}

/* Run one sequence; false if the backend or device could not be set up. */
static bool run_sequence(const Config *c, const CrashGuestOps *ops, const Mode *m, uint64_t seq_seed, Tally *t)
{
    Seq s = { .ops = ops, .rng = seq_seed, .view = vd_crash_guest_new(), .c = c };
    g_autoptr(GError) err = NULL;
    g_autofree char *opts = g_strdup_printf("driver=%s,child=null,size=16M,cache=%s,aio=threads%s%s", c->driver,
                                            vd_cache_mode_name(m->cache), c->tear ? ",tear=" : "",
                                            c->tear ? c->tear : "");
    s.blk = vd_blk_open(opts, NULL, &err);
    s.g = s.blk ? ops->open(s.blk, &err) : NULL;
    if (!s.g) {
        fprintf(stderr, "vdisk-crashtest: %s %s: %s\n", ops->name, opts, err->message);
        vd_blk_close(s.blk);
        vd_crash_guest_free(s.view);
        return false;
    }
    s.wce = vd_blk_write_cache(s.blk); /* the power-on state, which the guest reads from the device */
    switch_wce(&s, t, m->wce);
    for (uint64_t op = 0; op < OPS_PER_SEQUENCE; op++) {
        unsigned r = next_rand(&s.rng) % 100;
        if (r < 60) {
            random_write(&s, t, m);
        } else if (r < 72) {
            unsigned slot = free_slot(&s, t);
            s.slot[slot] = (SlotUse){ .busy = true, .flush = vd_crash_guest_flush(s.view) };
            ops->submit_flush(s.g, slot);
        } else if (r < 76) {
            switch_wce(&s, t, !s.wce);
        } else if (r < 79 && ops->reset) {
            reset_rewrite(&s, t);
        } else {
            cut(&s, t, seq_seed, op);
        }
        if (next_rand(&s.rng) % 2) {
            g_main_context_iteration(NULL, FALSE);
        }
        while (reap(&s, t)) {
        }
    }
    wait_idle(&s, t);
    cut(&s, t, seq_seed, OPS_PER_SEQUENCE);
    ops->close(s.g);
    vd_blk_close(s.blk);
    vd_crash_guest_free(s.view);
    t->sequences++;
    return true;
}

/* True once a combination has used its budget: crash states, or cut points with --checks. */
static bool spent(const Config *c, const Tally *t)
{
    return c->check_budget ? t->checks >= c->check_budget : t->cuts >= c->budget;
}

/* True if a combination's first failure came within its budget. */
static bool failed_in_budget(const Config *c, const Tally *t)
{
    return t->failed && (c->replay || (c->check_budget ? t->checks_at_failure <= c->check_budget
                                                       : t->cuts_at_failure <= c->budget));
}

/* Run one device x mode until its budget is spent (or the first failure). */
static bool run_combo(const Config *c, const CrashGuestOps *ops, const Mode *m, unsigned combo, Tally *t)
{
    gint64 start = g_get_monotonic_time();
    if (c->replay) {
        if (!run_sequence(c, ops, m, c->replay_seed, t)) {
            return false;
        }
    }
    for (uint64_t k = 0; !c->replay && !spent(c, t) && !(c->expect_failures && t->failed); k++) {
        uint64_t seq_seed = next_rand(&(uint64_t){ c->seed ^ ((uint64_t)combo << 40) ^ k });
        if (!run_sequence(c, ops, m, seq_seed, t)) {
            return false;
        }
    }
    t->secs = (g_get_monotonic_time() - start) / 1e6;
    return true;
}

/* The replay command for a combination's first failure. */
static char *replay_args(const CrashGuestOps *ops, const Mode *m, const Config *c, const Tally *t)
{
    return g_strdup_printf("--device %s --cache %s --wce %s --fua %s --driver %s%s%s --replay %" G_GUINT64_FORMAT,
                           ops->name, vd_cache_mode_name(m->cache), m->wce ? "on" : "off", m->fua ? "on" : "off",
                           c->driver, c->tear ? " --tear " : "", c->tear ? c->tear : "", t->fail_seq);
}

/* One result line, text or JSON. */
static void print_combo(const Config *c, const CrashGuestOps *ops, const Mode *m, const Tally *t, bool first)
{
    double rate = t->secs > 0 ? t->cuts / t->secs : 0;
    g_autofree char *replay = t->failed ? replay_args(ops, m, c, t) : NULL;
    if (c->json) {
        printf("%s\n    {\"device\": \"%s\", \"cache\": \"%s\", \"wce\": %s, \"fua\": %s, \"cuts\": %" G_GUINT64_FORMAT
               ", \"checks\": %" G_GUINT64_FORMAT ", \"sequences\": %" G_GUINT64_FORMAT ", \"promised\": %" G_GUINT64_FORMAT
               ", \"failures\": %" G_GUINT64_FORMAT ", \"device_errors\": %" G_GUINT64_FORMAT
               ", \"seconds\": %.3f, \"states_per_s\": %.0f",
               first ? "" : ",", ops->name, vd_cache_mode_name(m->cache), m->wce ? "true" : "false",
               m->fua ? "true" : "false", t->cuts, t->checks, t->sequences, t->promised, t->failures, t->device_errors,
               t->secs, rate);
        if (t->failed) {
            printf(", \"first_failure\": {\"view\": \"%s\", \"seed\": %" G_GUINT64_FORMAT ", \"op\": %" G_GUINT64_FORMAT
                   ", \"state\": %" G_GUINT64_FORMAT ", \"lba\": %" G_GUINT64_FORMAT ", \"after_cuts\": %" G_GUINT64_FORMAT
                   ", \"after_checks\": %" G_GUINT64_FORMAT ", \"replay\": \"%s\"}", t->fail_view, t->fail_seq, t->fail_op,
                   t->fail_state, t->fail_lba, t->cuts_at_failure, t->checks_at_failure, replay);
        }
        printf("}");
        return;
    }
    printf("%-10s cache=%-12s wce=%-3s fua=%-3s cuts=%-8" G_GUINT64_FORMAT " checks=%-6" G_GUINT64_FORMAT
           " failures=%-6" G_GUINT64_FORMAT " states/s=%.0f%s\n", ops->name, vd_cache_mode_name(m->cache),
           m->wce ? "on" : "off", m->fua ? "on" : "off", t->cuts, t->checks, t->failures, rate,
           m->cache == VD_CACHE_UNSAFE ? " (unsafe: nothing promised)" : "");
    if (t->device_errors) {
        printf("  %" G_GUINT64_FORMAT " device errors\n", t->device_errors);
    }
    if (t->failed) {
        printf("  FAILURE (%s view) after %" G_GUINT64_FORMAT " cuts, %" G_GUINT64_FORMAT " checks: seed=%" G_GUINT64_FORMAT
               " op=%" G_GUINT64_FORMAT " state=%" G_GUINT64_FORMAT " lba=%" G_GUINT64_FORMAT "\n  replay: vdisk-crashtest %s\n",
               t->fail_view, t->cuts_at_failure, t->checks_at_failure, t->fail_seq, t->fail_op, t->fail_state, t->fail_lba,
               replay);
    }
}

static const char *const device_names[] = { "ide", "virtio-blk", "scsi", NULL };
static const char *const cache_names[] = { "writeback", "none", "writethrough", "directsync", "unsafe", NULL };
static const char *const onoff_names[] = { "off", "on", NULL };
static const char *const driver_names[] = { "crashsim", "broken-fua", "broken-flush", NULL };
static const char *const tear_names[] = { "off", "512", "4k", NULL };
static const char *const oracle_names[] = { "both", "guest", "backend", NULL };

static const char usage_text[] =
    "Usage: vdisk-crashtest [OPTION]...\n"
    "Power-cut the emulated disks (IDE, virtio-blk, SCSI) at random points and check\n"
    "every durability promise in every legal crash state (docs/crash-testing.md).\n"
    "Each device x mode combination runs random guest command sequences in-process\n"
    "against a driver=crashsim backend; a failure prints its seed for --replay.\n"
    "\n"
    "  --device ide|virtio-blk|scsi|all          (default all)\n"
    "  --cache writeback|none|writethrough|directsync|unsafe|all   (default all)\n"
    "  --wce on|off|all       the guest's initial write cache (default all)\n"
    "  --fua on|off|all       the guest uses FUA writes (default all; virtio-blk has none)\n"
    "  --cuts N               crash states checked per combination (default 10000)\n"
    "  --checks N             cut points per combination instead of --cuts\n"
    "  --seed S               the first sequence's seed (default 1)\n"
    "  --tear off|512|4k      torn writes at that granularity (default off)\n"
    "  --driver crashsim|broken-fua|broken-flush\n"
    "                         the host stack under test; the broken ones must be caught\n"
    "  --oracle both|guest|backend  whose promises each cut checks (default both)\n"
    "  --expect-failures      succeed only if every combination fails within its budget\n"
    "  --replay SEED          run one sequence (needs one --device, --cache, --wce, --fua)\n"
    "  --json                 print the results as JSON\n"
    "  -h, --help             show this help and exit\n"
    "  --version              show the version and exit\n"
    "\n"
    "Every option is given at most once.  Exit status: 0 no failure (with\n"
    "--expect-failures: every combination failed within its budget), and for --help\n"
    "and --version; 1 otherwise; 2 for a bad command line.\n";

/* The command line as parsed: each choice as an index into its names table (-1: all). */
typedef struct CrashArgs {
    Config *c;
    int device, driver, tear, oracle;
} CrashArgs;

#define CLI_ERROR(errp, ...) g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__)

/* The value of option opt as an index into names (-1 for "all", if all_ok); false names the accepted values. */
static bool parse_choice(const char *opt, const char *value, const char *const *names, bool all_ok, int *out,
                         GError **errp)
{
    if (all_ok && strcmp(value, "all") == 0) {
        *out = -1;
        return true;
    }
    for (int i = 0; names[i]; i++) {
        if (strcmp(value, names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    g_autofree char *list = g_strjoinv(", ", (char **)names);
    CLI_ERROR(errp, "%s %s: accepted values: %s%s", opt, value, list, all_ok ? ", all" : "");
    return false;
}

/* A decimal number option. */
static bool parse_u64(const char *opt, const char *value, uint64_t *out, GError **errp)
{
    guint64 v;
    if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXUINT64, &v, NULL)) {
        CLI_ERROR(errp, "%s %s: expected a decimal number", opt, value);
        return false;
    }
    *out = v;
    return true;
}

/* --device */
static bool opt_device(void *o, const char *v, GError **errp)
{
    return parse_choice("--device", v, device_names, true, &((CrashArgs *)o)->device, errp);
}

/* --cache */
static bool opt_cache(void *o, const char *v, GError **errp)
{
    return parse_choice("--cache", v, cache_names, true, &((CrashArgs *)o)->c->cache, errp);
}

/* --wce */
static bool opt_wce(void *o, const char *v, GError **errp)
{
    return parse_choice("--wce", v, onoff_names, true, &((CrashArgs *)o)->c->wce, errp);
}

/* --fua */
static bool opt_fua(void *o, const char *v, GError **errp)
{
    return parse_choice("--fua", v, onoff_names, true, &((CrashArgs *)o)->c->fua, errp);
}

/* --driver */
static bool opt_driver(void *o, const char *v, GError **errp)
{
    return parse_choice("--driver", v, driver_names, false, &((CrashArgs *)o)->driver, errp);
}

/* --tear */
static bool opt_tear(void *o, const char *v, GError **errp)
{
    return parse_choice("--tear", v, tear_names, false, &((CrashArgs *)o)->tear, errp);
}

/* --oracle */
static bool opt_oracle(void *o, const char *v, GError **errp)
{
    return parse_choice("--oracle", v, oracle_names, false, &((CrashArgs *)o)->oracle, errp);
}

/* --cuts */
static bool opt_cuts(void *o, const char *v, GError **errp)
{
    return parse_u64("--cuts", v, &((CrashArgs *)o)->c->budget, errp);
}

/* --checks */
static bool opt_checks(void *o, const char *v, GError **errp)
{
    return parse_u64("--checks", v, &((CrashArgs *)o)->c->check_budget, errp);
}

/* --seed */
static bool opt_seed(void *o, const char *v, GError **errp)
{
    return parse_u64("--seed", v, &((CrashArgs *)o)->c->seed, errp);
}

/* --replay SEED */
static bool opt_replay(void *o, const char *v, GError **errp)
{
    ((CrashArgs *)o)->c->replay = true;
    return parse_u64("--replay", v, &((CrashArgs *)o)->c->replay_seed, errp);
}

/* --expect-failures */
static bool opt_expect_failures(void *o, const char *v, GError **errp)
{
    ((CrashArgs *)o)->c->expect_failures = true;
    return true;
}

/* --json */
static bool opt_json(void *o, const char *v, GError **errp)
{
    ((CrashArgs *)o)->c->json = true;
    return true;
}

/* Cross-option rules, then the Config's derived fields. */
static bool check_args(void *o, GError **errp)
{
    CrashArgs *a = o;
    Config *c = a->c;
    c->driver = driver_names[a->driver];
    c->guest_oracle = a->oracle != 2;
    c->backend_oracle = a->oracle != 1;
    c->tear = a->tear > 0 ? tear_names[a->tear] : NULL;
    bool any_fua = false;
    for (unsigned d = 0; d < 3; d++) {
        if (a->device < 0 || (unsigned)a->device == d) {
            c->devices[c->ndevices++] = all_devices[d];
            any_fua |= all_devices[d]->has_fua;
        }
    }
    if (c->replay && (a->device < 0 || c->cache < 0 || c->wce < 0 || c->fua < 0)) {
        CLI_ERROR(errp, "--replay needs one --device, --cache, --wce and --fua");
        return false;
    }
    if (c->fua == 1 && !any_fua) {
        CLI_ERROR(errp, "--device %s --fua on: %s has no FUA write", device_names[a->device], device_names[a->device]);
        return false;
    }
    return true;
}

static const VdCliOption crash_options[] = {
    { "device", NULL, true, false, opt_device },
    { "cache", NULL, true, false, opt_cache },
    { "wce", NULL, true, false, opt_wce },
    { "fua", NULL, true, false, opt_fua },
    { "cuts", NULL, true, false, opt_cuts },
    { "checks", NULL, true, false, opt_checks },
    { "seed", NULL, true, false, opt_seed },
    { "tear", NULL, true, false, opt_tear },
    { "driver", NULL, true, false, opt_driver },
    { "oracle", NULL, true, false, opt_oracle },
    { "expect-failures", NULL, false, false, opt_expect_failures },
    { "replay", NULL, true, false, opt_replay },
    { "json", NULL, false, false, opt_json },
};

static const VdCliTool crash_cli = {
    .name = "vdisk-crashtest",
    .usage = usage_text,
    .options = crash_options,
    .n_options = G_N_ELEMENTS(crash_options),
    .check = check_args,
};

int main(int argc, char **argv)
{
    Config c = { .cache = -1, .wce = -1, .fua = -1, .budget = 10000, .seed = 1 };
    CrashArgs args = { .c = &c, .device = -1 };
    int status;
    if (!vd_cli_start(&crash_cli, &args, argc, argv, &status)) {
        return status;
    }
    broken_drivers_register();
    Tally total = { 0 };
    unsigned combos = 0, failed_combos = 0;
    bool first = true;
    if (c.json) {
        printf("{\"driver\": \"%s\", \"budget\": %" G_GUINT64_FORMAT ", \"seed\": %" G_GUINT64_FORMAT ", \"combinations\": [",
               c.driver, c.budget, c.seed);
    }
    for (unsigned d = 0; d < c.ndevices; d++) {
        for (unsigned ci = 0; ci < G_N_ELEMENTS(all_caches); ci++) {
            for (unsigned w = 0; w < 2; w++) {
                for (unsigned f = 0; f < 2; f++) {
                    bool fua_na = f && !c.devices[d]->has_fua; /* virtio-blk has no FUA write */
                    if ((c.cache >= 0 && (unsigned)c.cache != ci) || (c.wce >= 0 && (unsigned)c.wce != w) ||
                        (c.fua >= 0 && (unsigned)c.fua != f) || fua_na) {
                        continue;
                    }
                    Mode m = { .cache = all_caches[ci], .wce = w, .fua = f };
                    Tally t = { 0 };
                    if (!run_combo(&c, c.devices[d], &m, combos, &t)) {
                        return 1;
                    }
                    print_combo(&c, c.devices[d], &m, &t, first);
                    first = false;
                    combos++;
                    failed_combos += failed_in_budget(&c, &t);
                    total.cuts += t.cuts;
                    total.checks += t.checks;
                    total.failures += t.failures;
                    total.device_errors += t.device_errors;
                    total.secs += t.secs;
                }
            }
        }
    }
    double rate = total.secs > 0 ? total.cuts / total.secs : 0;
    if (c.json) {
        printf("\n  ],\n  \"total\": {\"combinations\": %u, \"cuts\": %" G_GUINT64_FORMAT ", \"checks\": %" G_GUINT64_FORMAT
               ", \"failures\": %" G_GUINT64_FORMAT ", \"failed_combinations\": %u, \"device_errors\": %" G_GUINT64_FORMAT
               ", \"seconds\": %.3f, \"states_per_s\": %.0f}\n}\n",
               combos, total.cuts, total.checks, total.failures, failed_combos, total.device_errors, total.secs, rate);
    } else {
        printf("total: %u combinations, %" G_GUINT64_FORMAT " cuts in %" G_GUINT64_FORMAT " checks, %.1f s, %.0f states/s, "
               "%" G_GUINT64_FORMAT " failures in %u combinations\n", combos, total.cuts, total.checks, total.secs, rate,
               total.failures, failed_combos);
    }
    if (c.expect_failures) {
        return failed_combos == combos ? 0 : 1;
    }
    return total.failures || total.device_errors ? 1 : 0;
}
