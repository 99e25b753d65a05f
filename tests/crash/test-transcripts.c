/*
 * test-transcripts.c - replay the qtest transcripts of markdown pages.
 *
 * A fenced block right after a line "<!-- replay: VMM-ARGS -->" is run
 * against a fresh vdisk-vmm started with VMM-ARGS: each "> command" is sent,
 * and its reply must match the block's last "< OK..."/"< FAIL..." line before
 * the next command ("..." in it matches any text).  Every other "< " line is
 * an asynchronous line (IRQ, TRACE) that must arrive, in order, within the
 * session timeout.  A "crashlog ID FILE" command's FILE must then start with
 * the dm-log-writes magic.  Runs in a temporary directory, where each
 * relative "file=NAME" image of VMM-ARGS that does not exist is created
 * first (64 MiB, sparse), so a page can show "--drive file=disk.img,...".
 *
 * A fenced block right after "<!-- replay-shell: SETUP -->" is a shell
 * session: SETUP runs first (sh, in the temporary directory), then each
 * "$ COMMAND" runs in sh with the directory of $VDISK_VMM first on PATH, and
 * its output (stdout and stderr) must be the lines under it ("..." matches
 * any text).
 *
 * Usage: test-transcripts FILE.md...   (exit 0: every block replayed)
 */
#include "qtest-client.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct Replay {
    const char *file;
    unsigned line;
    GPtrArray *async;           /* asynchronous lines not yet matched */
    GPtrArray *logs;            /* crashlog files written */
} Replay;

/* Report a mismatch at the current transcript line and exit. */
G_GNUC_PRINTF(2, 3) G_GNUC_NORETURN static void fail(Replay *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%u: ", r->file, r->line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Asynchronous line hook: keep it for matching. */
static void on_async(void *opaque, const char *line)
{
    g_ptr_array_add(((Replay *)opaque)->async, g_strdup(line));
}

/* "..." becomes the glob "*". */
static char *pattern_of(const char *expected)
{
    g_auto(GStrv) parts = g_strsplit(expected, "...", -1);
    return g_strjoinv("*", parts);
}

/* Wait for an asynchronous line matching want; drop the lines before it. */
static void expect_async(Replay *r, VdQtest *q, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    g_autofree char *pat = pattern_of(want);
    for (;;) {
        for (guint i = 0; i < r->async->len; i++) {
            if (g_pattern_match_simple(pat, g_ptr_array_index(r->async, i))) {
                g_ptr_array_remove_range(r->async, 0, i + 1);
                return;
            }
        }
        if (g_get_monotonic_time() > deadline) {
            fail(r, "no asynchronous line '%s'", want);
        }
        vd_qtest_poll(q, 10);
    }
}

/* Send one command and check its reply against want (NULL: any OK). */
static void run_command(Replay *r, VdQtest *q, const char *cmd, const char *want)
{
    g_autofree char *reply = vd_qtest_cmd(q, "%s", cmd);
    g_autofree char *pat = pattern_of(want ? want : "OK...");
    if (!g_pattern_match_simple(pat, reply)) {
        fail(r, "'%s': expected '%s', got '%s'", cmd, want ? want : "OK...", reply);
    }
    char id[64], path[256];
    if (sscanf(cmd, "crashlog %63s %255s", id, path) == 2 && g_str_has_prefix(reply, "OK")) {
        g_ptr_array_add(r->logs, g_strdup(path));
    }
}

/* True if line is a reply (not an asynchronous line). */
static bool is_reply(const char *line)
{
    return g_str_has_prefix(line, "OK") || g_str_has_prefix(line, "FAIL");
}

/* Create every relative file=NAME image of the VMM arguments that does not exist yet. */
static void create_images(Replay *r, char **argv)
{
    for (char **a = argv; *a; a++) {
        const char *f = strstr(*a, "file=");
        if (!f || (f != *a && f[-1] != ',')) {
            continue;
        }
        g_autofree char *name = g_strndup(f + 5, strcspn(f + 5, ","));
        if (g_path_is_absolute(name) || g_file_test(name, G_FILE_TEST_EXISTS)) {
            continue;
        }
        FILE *img = fopen(name, "w");
        if (!img || ftruncate(fileno(img), 64 << 20) != 0) {
            fail(r, "cannot create the image %s", name);
        }
        fclose(img);
    }
}

/* Replay one block (lines[start] is the first line inside the fence); returns the closing fence's index. */
static guint replay_block(Replay *r, char **lines, guint start, const char *vmm_args)
{
    g_auto(GStrv) argv = NULL;
    if (!g_shell_parse_argv(vmm_args, NULL, &argv, NULL)) {
        fail(r, "bad replay arguments '%s'", vmm_args);
    }
    create_images(r, argv);
    VdQtest *q = vd_qtest_startv((const char *const *)argv);
    vd_qtest_set_async_hook(q, on_async, r);
    g_ptr_array_set_size(r->async, 0);
    guint i = start;
    while (lines[i] && !g_str_has_prefix(lines[i], "```")) {
        r->line = i + 1;
        if (!g_str_has_prefix(lines[i], "> ")) {
            fail(r, "expected a '> command' line, got '%s'", lines[i]);
        }
        const char *cmd = lines[i] + 2, *want = NULL;
        guint cmd_line = i + 1;
        g_autoptr(GPtrArray) async = g_ptr_array_new();
        for (i++; lines[i] && g_str_has_prefix(lines[i], "< "); i++) {
            if (is_reply(lines[i] + 2)) {
                want = lines[i] + 2;
            } else {
                g_ptr_array_add(async, lines[i] + 2);
            }
        }
        r->line = cmd_line;
        run_command(r, q, cmd, want);
        for (guint k = 0; k < async->len; k++) {
            expect_async(r, q, g_ptr_array_index(async, k));
        }
    }
    if (vd_qtest_quit(q) != 0) {
        fail(r, "vdisk-vmm did not exit cleanly");
    }
    return i;
}

/* Run a shell command (stderr into stdout) with vdisk-vmm on PATH; its output. */
static char *run_shell(Replay *r, const char *cmd)
{
    g_autofree char *full = g_strdup_printf("exec 2>&1; %s", cmd);
    g_autofree char *bindir = g_path_get_dirname(vd_qtest_vmm_path());
    g_autofree char *path = g_strdup_printf("%s:%s", bindir, g_getenv("PATH") ? g_getenv("PATH") : "/usr/bin:/bin");
    g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "PATH", path, TRUE);
    const char *argv[] = { "/bin/sh", "-c", full, NULL };
    char *out = NULL;
    g_autoptr(GError) err = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, NULL, &err)) {
        fail(r, "cannot run '%s': %s", cmd, err->message);
    }
    return out;
}

/* Replay a shell block (lines[start] is the first line inside the fence); returns the closing fence's index. */
static guint replay_shell_block(Replay *r, char **lines, guint start, const char *setup)
{
    g_free(run_shell(r, setup));
    guint i = start;
    while (lines[i] && !g_str_has_prefix(lines[i], "```")) {
        r->line = i + 1;
        if (!g_str_has_prefix(lines[i], "$ ")) {
            fail(r, "expected a '$ command' line, got '%s'", lines[i]);
        }
        const char *cmd = lines[i] + 2;
        g_autofree char *out = run_shell(r, cmd);
        g_auto(GStrv) got = g_strsplit(g_strchomp(out), "\n", -1);
        guint k = 0;
        for (i++; lines[i] && !g_str_has_prefix(lines[i], "$ ") && !g_str_has_prefix(lines[i], "```"); i++, k++) {
            g_autofree char *pat = pattern_of(lines[i]);
            if (!got[k] || !g_pattern_match_simple(pat, got[k])) {
                fail(r, "'%s': expected '%s', got '%s'", cmd, lines[i], got[k] ? got[k] : "(no more output)");
            }
        }
        if (got[k] && *got[k]) {
            fail(r, "'%s': unexpected output '%s'", cmd, got[k]);
        }
    }
    return i;
}

/* Every crashlog written must be a dm-log-writes log. */
static void check_logs(Replay *r)
{
    for (guint i = 0; i < r->logs->len; i++) {
        const char *path = g_ptr_array_index(r->logs, i);
        g_autofree char *data = NULL;
        gsize len;
        uint64_t magic;
        if (!g_file_get_contents(path, &data, &len, NULL) || len < 512) {
            fail(r, "crashlog %s: missing or shorter than its super block", path);
        }
        memcpy(&magic, data, 8);
        if (GUINT64_FROM_LE(magic) != 0x6a736677736872ull) {
            fail(r, "crashlog %s: no dm-log-writes magic", path);
        }
        g_unlink(path);
    }
}

int main(int argc, char **argv)
{
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *tmp = g_dir_make_tmp("vd-transcripts-XXXXXX", NULL);
    unsigned blocks = 0;
    for (int a = 1; a < argc; a++) {
        g_autofree char *path = g_path_is_absolute(argv[a]) ? g_strdup(argv[a]) : g_build_filename(cwd, argv[a], NULL);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL)) {
            fprintf(stderr, "test-transcripts: cannot read %s\n", path);
            return 1;
        }
        Replay r = { .file = argv[a], .async = g_ptr_array_new_with_free_func(g_free),
                     .logs = g_ptr_array_new_with_free_func(g_free) };
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        if (chdir(tmp) != 0) {
            return 1;
        }
        for (guint i = 0; lines[i]; i++) {
            const char *m = strstr(lines[i], "<!-- replay");
            if (!m || !lines[i + 1] || !g_str_has_prefix(lines[i + 1], "```")) {
                continue;
            }
            bool shell = g_str_has_prefix(m, "<!-- replay-shell:");
            if (!shell && !g_str_has_prefix(m, "<!-- replay:")) {
                continue;
            }
            const char *arg = strchr(m, ':') + 1, *end = strstr(arg, "-->");
            g_autofree char *args = g_strndup(arg, end ? (gsize)(end - arg) : 0);
            r.line = i + 1;
            i = shell ? replay_shell_block(&r, lines, i + 2, g_strstrip(args))
                      : replay_block(&r, lines, i + 2, g_strstrip(args));
            blocks++;
        }
        check_logs(&r);
        g_ptr_array_free(r.async, TRUE);
        g_ptr_array_free(r.logs, TRUE);
    }
    g_rmdir(tmp);
    if (!blocks) {
        fprintf(stderr, "test-transcripts: no '<!-- replay: ... -->' or '<!-- replay-shell: ... -->' block found\n");
        return 1;
    }
    printf("PASS %u transcript blocks\n", blocks);
    return 0;
}
