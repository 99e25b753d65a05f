/*
 * vdisk-seq - run a plain-text guest command sequence against vdisk-vmm.
 *
 * Its --help text (usage_text below) is its manual: options, how it finds
 * vdisk-vmm, the sequence format (docs/qtest-protocol.md, "Sequence
 * files") and the exit status.  The command line follows the convention of
 * every vdisk tool (system/cmdline.h): 0 pass (and --help, --version), 1 a
 * mismatch or a run-time failure (FILE:LINE and both texts, or one line
 * saying what failed, on stderr), 2 a bad command line, 77 skipped.
 */
#include "qtest-client.h"
#include "system/cmdline.h"

#include <gio/gio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_SKIP 77

static const char usage_text[] =
    "Usage: vdisk-seq [OPTION]... FILE.seq [VMM-ARG]...\n"
    "Run a plain-text guest command sequence against vdisk-vmm and check every reply.\n"
    "\n"
    "  --narrate              print each command, its reply, and under it the host\n"
    "                         operations and IRQ changes it caused\n"
    "  --vmm PATH             the vdisk-vmm to run\n"
    "  -h, --help             show this help and exit\n"
    "  --version              show the version and exit\n"
    "\n"
    "Options end at FILE.seq (or at --); every argument after it goes to vdisk-vmm,\n"
    "after the sequence's own @vmm arguments.\n"
    "\n"
    "vdisk-vmm is the first of: --vmm PATH; $VDISK_VMM; the vdisk-vmm beside\n"
    "vdisk-seq (run from a build tree: that tree's system/vdisk-vmm); the first\n"
    "vdisk-vmm on $PATH.\n"
    "\n"
    "Sequence file lines (docs/qtest-protocol.md, \"Sequence files\"):\n"
    "  # text                       a comment\n"
    "  COMMAND                      send it; the reply must start with OK\n"
    "  COMMAND => PATTERN           the reply must match PATTERN (* any text, ? one character)\n"
    "  @vmm ARGS                    vdisk-vmm arguments (before the first command)\n"
    "  @require drive ID            skip (exit 77) unless the machine has drive ID\n"
    "  @wait irq N raise|lower [MS] wait until IRQ line N has that level\n"
    "  @irq N 0|1                   the IRQ line's level, as reported so far\n"
    "  @until MS COMMAND => PATTERN repeat COMMAND until its reply matches, for up to MS\n"
    "  @async PATTERN               an asynchronous line (IRQ/TRACE/INFO) matching PATTERN\n"
    "                               arrived since the last command (waits up to 10 s)\n"
    "  @mark ID                     remember drive ID's counters\n"
    "  @stat ID KEY OP N            counter KEY of drive ID compared with N (= != < <= > >=)\n"
    "  @delta ID KEY OP N           the counter's change since @mark ID, compared with N\n"
    "  @sleep MS                    collect asynchronous lines for MS milliseconds\n"
    "  @say TEXT                    print TEXT (with --narrate)\n"
    "  @crash ID [SEED]             cut drive ID's power here; every crash state must keep\n"
    "                               every promise (docs/crash-testing.md)\n"
    "\n"
    "Exit status: 0 every reply matched, and for --help and --version; 1 a mismatch\n"
    "(FILE:LINE: 'command': expected '...', got '...') or a run-time failure (the file\n"
    "cannot be read, vdisk-vmm cannot be found, started, or ends badly); 2 a bad\n"
    "command line; 77 the sequence was skipped (@require).\n"
    "\n"
    "Example: vdisk-seq --narrate tests/qtest-like/sequences/demo.seq\n";

typedef struct Runner {
    const char *file;
    unsigned lineno;
    bool narrate;
    const char *vmm_path;       /* --vmm, or NULL */
    GPtrArray *vmm_args;        /* char *: from @vmm, then the command line */
    VdQtest *q;
    GPtrArray *async;           /* asynchronous lines since the last command */
    GHashTable *marks;          /* "ID" -> GHashTable key -> uint64 counter */
    bool in_command;            /* narration of async lines waits for the reply */
    bool quiet;                 /* no narration (setup directives) */
    GPtrArray *held;            /* narration lines held during a command */
    unsigned commands;
} Runner;

/* Report a failure at the current line and exit. */
G_GNUC_PRINTF(2, 3) G_GNUC_NORETURN static void seq_fail(Runner *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%u: ", r->file, r->lineno);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Narration text for an asynchronous line. */
static char *narrate_async(const char *line)
{
    unsigned n;
    char what[8];
    if (g_str_has_prefix(line, "TRACE ")) {
        const char *text = strchr(line + 6, ' ');
        return g_strdup_printf("         host: %s", text ? text + 1 : line + 6);
    }
    if (sscanf(line, "IRQ %7s %u", what, &n) == 2) {
        return g_strdup_printf("         irq %u %s", n, strcmp(what, "raise") == 0 ? "raised" : "lowered");
    }
    return g_strdup_printf("         %s", line);
}

/* Asynchronous line hook: remember it; narrate it (after the reply, if a command is running). */
static void on_async(void *opaque, const char *line)
{
    Runner *r = opaque;
    g_ptr_array_add(r->async, g_strdup(line));
    if (!r->narrate || r->quiet) {
        return;
    }
    char *text = narrate_async(line);
    if (r->in_command) {
        g_ptr_array_add(r->held, text);
    } else {
        printf("%s\n", text);
        g_free(text);
    }
}

/* Start the VMM on first use. */
static VdQtest *vmm(Runner *r)
{
    if (!r->q) {
        g_ptr_array_add(r->vmm_args, NULL);
        r->q = vd_qtest_startv((const char *const *)r->vmm_args->pdata);
        g_ptr_array_remove_index(r->vmm_args, r->vmm_args->len - 1);
        vd_qtest_set_async_hook(r->q, on_async, r);
    }
    return r->q;
}

/* Send one command, narrate it, return the reply. */
static char *run_command(Runner *r, const char *cmd)
{
    VdQtest *q = vmm(r);
    g_ptr_array_set_size(r->async, 0);
    r->in_command = true;
    char *reply = vd_qtest_cmd(q, "%s", cmd);
    r->in_command = false;
    r->commands++;
    if (r->narrate && !r->quiet) {
        printf("guest  %-34s %s\n", cmd, strlen(reply) > 60 ? "OK (long reply)" : reply);
        for (guint i = 0; i < r->held->len; i++) {
            printf("%s\n", (char *)g_ptr_array_index(r->held, i));
        }
        fflush(stdout);
    }
    g_ptr_array_set_size(r->held, 0);
    return reply;
}

/* Split "COMMAND => PATTERN"; pattern is NULL when absent. */
static void split_expect(char *line, char **cmd, char **pattern)
{
    char *arrow = strstr(line, "=>");
    *cmd = line;
    *pattern = NULL;
    if (arrow) {
        *arrow = '\0';
        *pattern = g_strstrip(arrow + 2);
    }
    g_strstrip(*cmd);
}

/* A command line with an optional expected pattern. */
static void do_command(Runner *r, char *line)
{
    char *cmd, *pattern;
    split_expect(line, &cmd, &pattern);
    g_autofree char *reply = run_command(r, cmd);
    if (pattern ? !g_pattern_match_simple(pattern, reply) : !g_str_has_prefix(reply, "OK")) {
        seq_fail(r, "'%s': expected '%s', got '%s'", cmd, pattern ? pattern : "OK*", reply);
    }
}

/* Parse a decimal number argument or fail. */
static uint64_t num_arg(Runner *r, const char *s, const char *what)
{
    guint64 v;
    bool hex = s && (g_str_has_prefix(s, "0x") || g_str_has_prefix(s, "0X"));
    if (!s || !g_ascii_string_to_unsigned(s + (hex ? 2 : 0), hex ? 16 : 10, 0, G_MAXUINT64, &v, NULL)) {
        seq_fail(r, "%s: expected a number, got '%s'", what, s ? s : "");
    }
    return v;
}

/* @vmm ARGS */
static void dir_vmm(Runner *r, char **argv, char *rest)
{
    g_auto(GStrv) args = NULL;
    g_autoptr(GError) err = NULL;
    if (r->q) {
        seq_fail(r, "@vmm must come before the first command");
    }
    if (!g_shell_parse_argv(rest, NULL, &args, &err)) {
        seq_fail(r, "@vmm: %s", err->message);
    }
    for (guint i = 0; args[i]; i++) {
        g_ptr_array_insert(r->vmm_args, i, g_strdup(args[i]));
    }
}

/* @require drive ID */
static void dir_require(Runner *r, char **argv, char *rest)
{
    if (g_strv_length(argv) != 3 || strcmp(argv[1], "drive") != 0) {
        seq_fail(r, "usage: @require drive ID");
    }
    r->quiet = true;
    g_autoptr(GPtrArray) info = vd_qtest_info(vmm(r));
    r->quiet = false;
    g_autofree char *want = g_strdup_printf("drive %s ", argv[2]);
    for (guint i = 0; i < info->len; i++) {
        if (g_str_has_prefix(g_ptr_array_index(info, i), want)) {
            return;
        }
    }
    printf("SKIP %s: the machine has no drive %s (device model not built?)\n", r->file, argv[2]);
    vd_qtest_quit(r->q);
    exit(EXIT_SKIP);
}

/* @wait irq N raise|lower [MS] */
static void dir_wait(Runner *r, char **argv, char *rest)
{
    guint n = g_strv_length(argv);
    if (n < 4 || n > 5 || strcmp(argv[1], "irq") != 0 ||
        (strcmp(argv[3], "raise") != 0 && strcmp(argv[3], "lower") != 0)) {
        seq_fail(r, "usage: @wait irq N raise|lower [MS]");
    }
    unsigned line = num_arg(r, argv[2], "IRQ line");
    unsigned ms = n == 5 ? num_arg(r, argv[4], "timeout") : 0;
    if (!vd_qtest_wait_irq(vmm(r), line, strcmp(argv[3], "raise") == 0, ms)) {
        seq_fail(r, "IRQ %u did not %s in time", line, argv[3]);
    }
}

/* @irq N 0|1 */
static void dir_irq(Runner *r, char **argv, char *rest)
{
    if (g_strv_length(argv) != 3) {
        seq_fail(r, "usage: @irq N 0|1");
    }
    unsigned line = num_arg(r, argv[1], "IRQ line");
    bool want = num_arg(r, argv[2], "level");
    if (vd_qtest_irq_level(vmm(r), line) != want) {
        seq_fail(r, "IRQ %u is %d, expected %d", line, !want, want);
    }
}

/* @until MS COMMAND => PATTERN */
static void dir_until(Runner *r, char **argv, char *rest)
{
    char *space = strchr(rest, ' ');
    if (!space) {
        seq_fail(r, "usage: @until MS COMMAND => PATTERN");
    }
    *space = '\0';
    unsigned ms = num_arg(r, rest, "timeout");
    char *cmd, *pattern;
    split_expect(space + 1, &cmd, &pattern);
    if (!pattern) {
        seq_fail(r, "@until needs '=> PATTERN'");
    }
    gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;
    for (;;) {
        g_autofree char *reply = run_command(r, cmd);
        if (g_pattern_match_simple(pattern, reply)) {
            return;
        }
        if (g_get_monotonic_time() >= deadline) {
            seq_fail(r, "'%s' never answered '%s' within %u ms; last reply '%s'", cmd, pattern, ms, reply);
        }
        vd_qtest_poll(r->q, 5);
    }
}

/* @async PATTERN */
static void dir_async(Runner *r, char **argv, char *rest)
{
    gint64 deadline = g_get_monotonic_time() + VD_QTEST_DEFAULT_TIMEOUT_MS * 1000ll;
    guint seen = 0;
    vmm(r);
    for (;;) {
        for (; seen < r->async->len; seen++) {
            if (g_pattern_match_simple(rest, g_ptr_array_index(r->async, seen))) {
                return;
            }
        }
        if (g_get_monotonic_time() >= deadline) {
            seq_fail(r, "no asynchronous line matching '%s' since the last command", rest);
        }
        vd_qtest_poll(r->q, 10);
    }
}

/* All counters of a drive, key -> value. */
static GHashTable *read_stats(Runner *r, const char *id)
{
    g_autofree char *reply = NULL;
    g_autofree char *cmd = g_strdup_printf("blockstats %s", id);
    reply = vd_qtest_cmd(vmm(r), "%s", cmd);
    if (!g_str_has_prefix(reply, "OK ")) {
        seq_fail(r, "'%s' answered '%s'", cmd, reply);
    }
    GHashTable *stats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_auto(GStrv) pairs = g_strsplit(reply + 3, " ", -1);
    for (char **p = pairs; *p; p++) {
        char *eq = strchr(*p, '=');
        if (eq) {
            guint64 *v = g_new(guint64, 1);
            *v = g_ascii_strtoull(eq + 1, NULL, 10);
            g_hash_table_insert(stats, g_strndup(*p, eq - *p), v);
        }
    }
    return stats;
}

/* One counter from a stats table, or fail naming the key. */
static uint64_t stat_value(Runner *r, GHashTable *stats, const char *id, const char *key)
{
    guint64 *v = g_hash_table_lookup(stats, key);
    if (!v) {
        seq_fail(r, "drive %s has no counter '%s'", id, key);
    }
    return *v;
}

/* @mark ID */
static void dir_mark(Runner *r, char **argv, char *rest)
{
    if (g_strv_length(argv) != 2) {
        seq_fail(r, "usage: @mark ID");
    }
    g_hash_table_replace(r->marks, g_strdup(argv[1]), read_stats(r, argv[1]));
}

/* Compare with an operator from the table. */
static bool compare(Runner *r, int64_t a, const char *op, int64_t b)
{
    static const struct { const char *op; int lt, eq, gt; } ops[] = {
        { "=", 0, 1, 0 }, { "==", 0, 1, 0 }, { "!=", 1, 0, 1 },
        { "<", 1, 0, 0 }, { "<=", 1, 1, 0 }, { ">", 0, 0, 1 }, { ">=", 0, 1, 1 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
        if (strcmp(op, ops[i].op) == 0) {
            return a < b ? ops[i].lt : a == b ? ops[i].eq : ops[i].gt;
        }
    }
    seq_fail(r, "unknown comparison '%s' (= != < <= > >=)", op);
}

/* @stat ID KEY OP N and @delta ID KEY OP N */
static void check_stat(Runner *r, char **argv, bool delta)
{
    if (g_strv_length(argv) != 5) {
        seq_fail(r, "usage: @%s ID KEY OP N", delta ? "delta" : "stat");
    }
    g_autoptr(GHashTable) now = read_stats(r, argv[1]);
    int64_t v = stat_value(r, now, argv[1], argv[2]);
    if (delta) {
        GHashTable *mark = g_hash_table_lookup(r->marks, argv[1]);
        if (!mark) {
            seq_fail(r, "@delta %s without an earlier @mark %s", argv[1], argv[1]);
        }
        v -= (int64_t)stat_value(r, mark, argv[1], argv[2]);
    }
    int64_t want = num_arg(r, argv[4], "value");
    if (!compare(r, v, argv[3], want)) {
        seq_fail(r, "%s %s of drive %s is %" G_GINT64_FORMAT ", expected %s %" G_GINT64_FORMAT,
                 delta ? "change of" : "counter", argv[2], argv[1], v, argv[3], want);
    }
    if (r->narrate) {
        printf("         check: %s %s%s %s %" G_GINT64_FORMAT " (it is %" G_GINT64_FORMAT ")\n", argv[1], argv[2],
               delta ? " change" : "", argv[3], want, v);
    }
}

static void dir_stat(Runner *r, char **argv, char *rest) { check_stat(r, argv, false); }
static void dir_delta(Runner *r, char **argv, char *rest) { check_stat(r, argv, true); }

/* @sleep MS */
static void dir_sleep(Runner *r, char **argv, char *rest)
{
    vd_qtest_poll(vmm(r), num_arg(r, argv[1], "milliseconds"));
}

/* @say TEXT */
static void dir_say(Runner *r, char **argv, char *rest)
{
    if (r->narrate) {
        printf("\n%s\n", rest);
    }
}

/* @crash ID [SEED] */
static void dir_crash(Runner *r, char **argv, char *rest)
{
    g_autofree char *cmd = g_strdup_printf("crash %s", rest);
    g_autofree char *reply = run_command(r, cmd);
    if (!g_str_has_prefix(reply, "OK ")) {
        seq_fail(r, "'%s' failed: '%s'", cmd, reply);
    }
    if (!strstr(reply, " failures=0")) {
        seq_fail(r, "'%s': a promised write was lost: '%s'", cmd, reply);
    }
}

/* Directive table: name, minimum word count (with the name), handler. */
static const struct Directive {
    const char *name;
    unsigned min_words;
    void (*fn)(Runner *r, char **argv, char *rest);
} directives[] = {
    { "vmm", 2, dir_vmm }, { "require", 3, dir_require }, { "wait", 4, dir_wait }, { "irq", 3, dir_irq },
    { "until", 3, dir_until }, { "async", 2, dir_async }, { "mark", 2, dir_mark }, { "stat", 5, dir_stat },
    { "delta", 5, dir_delta }, { "sleep", 2, dir_sleep }, { "say", 1, dir_say }, { "crash", 2, dir_crash },
};

/* A line starting with '@'. */
static void do_directive(Runner *r, char *line)
{
    char *name_end = line + 1 + strcspn(line + 1, " \t");
    g_autofree char *name = g_strndup(line + 1, name_end - line - 1);
    g_auto(GStrv) argv = g_strsplit_set(line + 1, " \t", -1);
    char *rest = g_strstrip(name_end); /* after the split: this shifts the text */
    /* Drop empty words from repeated spaces. */
    guint n = 0;
    for (guint i = 0; argv[i]; i++) {
        if (*argv[i]) {
            argv[n++] = argv[i];
        } else {
            g_free(argv[i]);
        }
    }
    argv[n] = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(directives); i++) {
        if (strcmp(name, directives[i].name) == 0) {
            if (n < directives[i].min_words) {
                seq_fail(r, "@%s needs more arguments (see vdisk-seq.c or docs/qtest-protocol.md)", name);
            }
            directives[i].fn(r, argv, rest);
            return;
        }
    }
    seq_fail(r, "unknown directive '@%s'", name);
}

/* --narrate */
static bool opt_narrate(void *opts, const char *value, GError **errp)
{
    ((Runner *)opts)->narrate = true;
    return true;
}

/* --vmm PATH */
static bool opt_vmm(void *opts, const char *value, GError **errp)
{
    ((Runner *)opts)->vmm_path = value;
    return true;
}

/* FILE.seq, then the VMM's arguments. */
static bool take_operand(void *opts, const char *value, GError **errp)
{
    Runner *r = opts;
    if (!r->file) {
        r->file = value;
    } else {
        g_ptr_array_add(r->vmm_args, g_strdup(value));
    }
    return true;
}

/* The sequence file is required. */
static bool check_args(void *opts, GError **errp)
{
    if (!((Runner *)opts)->file) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no sequence file given (see --help)");
        return false;
    }
    return true;
}

static const VdCliOption seq_options[] = {
    { "narrate", NULL, false, false, opt_narrate },
    { "vmm", NULL, true, false, opt_vmm },
};

static const VdCliTool seq_cli = {
    .name = "vdisk-seq",
    .usage = usage_text,
    .options = seq_options,
    .n_options = G_N_ELEMENTS(seq_options),
    .check = check_args,
    .operand = take_operand,
};

/* An executable vdisk-vmm in dir, or NULL. */
static char *vmm_in(const char *dir)
{
    char *path = g_build_filename(dir, "vdisk-vmm", NULL);
    if (g_file_test(path, G_FILE_TEST_IS_EXECUTABLE) && !g_file_test(path, G_FILE_TEST_IS_DIR)) {
        return path;
    }
    g_free(path);
    return NULL;
}

/* The vdisk-vmm to run (see usage_text), or NULL with the places looked at. */
static char *find_vmm(const Runner *r, GError **errp)
{
    const char *env = g_getenv("VDISK_VMM");
    if (r->vmm_path || (env && *env)) {
        return g_strdup(r->vmm_path ? r->vmm_path : env);
    }
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *self_dir = self ? g_path_get_dirname(self) : NULL;
#ifdef VDISK_SEQ_BUILD_DIR
    /* The uninstalled runner uses its own build tree's vdisk-vmm. */
    if (self_dir && strcmp(self_dir, VDISK_SEQ_BUILD_DIR) == 0) {
        return g_strdup(VDISK_VMM_BUILD_PATH);
    }
#endif
    char *path = self_dir ? vmm_in(self_dir) : NULL;
    if (!path) {
        path = g_find_program_in_path("vdisk-vmm");
    }
    if (!path) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "cannot find vdisk-vmm: not beside %s and not on PATH (give --vmm PATH or set VDISK_VMM)",
                    self ? self : "vdisk-seq");
    }
    return path;
}

int main(int argc, char **argv)
{
    Runner r = { .vmm_args = g_ptr_array_new_with_free_func(g_free) };
    int status;
    if (!vd_cli_start(&seq_cli, &r, argc, argv, &status)) {
        g_ptr_array_free(r.vmm_args, TRUE);
        return status;
    }
    vd_qtest_set_program("vdisk-seq");
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    if (!g_file_get_contents(r.file, &text, NULL, &err)) {
        fprintf(stderr, "vdisk-seq: %s\n", err->message);
        return VD_EXIT_FAILURE;
    }
    g_autofree char *vmm_path = find_vmm(&r, &err);
    if (!vmm_path) {
        fprintf(stderr, "vdisk-seq: %s\n", err->message);
        return VD_EXIT_FAILURE;
    }
    g_setenv("VDISK_VMM", vmm_path, TRUE);
    r.async = g_ptr_array_new_with_free_func(g_free);
    r.held = g_ptr_array_new_with_free_func(g_free);
    r.marks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (guint n = 0; lines[n]; n++) {
        r.lineno = n + 1;
        char *line = g_strstrip(lines[n]);
        if (!*line || *line == '#') {
            continue;
        }
        if (*line == '@') {
            do_directive(&r, line);
        } else {
            do_command(&r, line);
        }
    }
    status = r.q ? vd_qtest_quit(r.q) : 0;
    if (status != 0) {
        fprintf(stderr, "%s: vdisk-vmm exited with status %d\n", r.file, status);
        return VD_EXIT_FAILURE;
    }
    if (!r.narrate) {
        printf("PASS %s (%u commands)\n", r.file, r.commands);
    }
    g_ptr_array_free(r.async, TRUE);
    g_ptr_array_free(r.held, TRUE);
    g_hash_table_destroy(r.marks);
    g_ptr_array_free(r.vmm_args, TRUE);
    return 0;
}
