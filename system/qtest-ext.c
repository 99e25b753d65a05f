/* qtest-ext.c - vdisk's protocol extensions: irq_level, drain, blockstats, info, dtb, trace, inject, delay, crash, crashlog, stop, cont. */
#include "qtest-internal.h"

#include "block/crashsim.h"
#include "system/migration.h"

#include <errno.h>

/* irq_level LINE -> OK 0|1 (extension) */
void vd_qtest_cmd_irq_level(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t line;
    if (vd_qtest_parse_num(argv[1], VD_IRQ_LINES - 1, "LINE", &line, reply)) {
        g_string_printf(reply, "OK %d", vd_irq_level(s->m->bus, line));
    }
}

/* Asynchronous backend trace line; control characters become spaces. */
static void on_trace(void *opaque, const char *text)
{
    TraceSink *t = opaque;
    g_autofree char *msg = g_strdup_printf("TRACE %s %s", t->id, text);
    for (char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20) {
            *p = ' ';
        }
    }
    vd_qtest_send_line(t->s, msg);
}

/* True if any drive's backend is stopped by its error policy (its held requests wait for cont). */
static bool any_stopped(VdMachine *m)
{
    for (guint i = 0; i < m->drives->len; i++) {
        if (vd_blk_is_stopped(((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk)) {
            return true;
        }
    }
    return false;
}

/* Timeout source callback for drain. */
static gboolean drain_expired(gpointer opaque)
{
    *(bool *)opaque = true;
    return G_SOURCE_REMOVE;
}

/*
 * drain [TIMEOUT_MS]: run the loop until every device has delivered every
 * answer to guest memory (its IRQ raised) and no backend has a request in
 * flight (extension).  While a backend is stopped (werror=stop), its held
 * requests wait for `cont`, so devices cannot finish: drain then waits for
 * the backends' other requests only.
 */
void vd_qtest_cmd_drain(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t timeout = VD_QTEST_DRAIN_TIMEOUT_MS;
    if (argc > 1 && !vd_qtest_parse_num(argv[1], 3600 * 1000, "TIMEOUT_MS", &timeout, reply)) {
        return;
    }
    bool expired = false;
    GSource *timer = g_timeout_source_new(timeout);
    g_source_set_callback(timer, drain_expired, &expired, NULL);
    g_source_attach(timer, s->m->ctx);
    VdMachineDrain *drain = vd_machine_drain_start(s->m);
    while (((vd_machine_drain_pending(drain) && !any_stopped(s->m)) || vd_machine_issued_in_flight(s->m)) &&
           !expired) {
        g_main_context_iteration(s->m->ctx, TRUE);
    }
    g_source_destroy(timer);
    g_source_unref(timer);
    unsigned devices = any_stopped(s->m) ? 0 : vd_machine_drain_pending(drain);
    unsigned left = vd_machine_issued_in_flight(s->m);
    vd_machine_drain_unref(drain);
    if (devices || left) {
        vd_qtest_fail(reply, "%u requests still in flight, %u devices with answers not delivered, after %" PRIu64
                      " ms", left, devices, timeout);
    } else {
        g_string_assign(reply, "OK");
    }
}

/* blockstats ID -> OK key=value ... (extension) */
void vd_qtest_cmd_blockstats(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = vd_qtest_find_drive(s, argv[1], reply);
    if (d) {
        g_string_assign(reply, "OK ");
        vd_blk_format_stats(d->blk, reply);
    }
}

/* "0x<base>+0x<size>" of a register window. */
static void append_window(GString *out, uint64_t base, uint64_t size)
{
    g_string_append_printf(out, "0x%" PRIx64 "+0x%" PRIx64, base, size);
}

/* info -> one INFO line per device and per drive, then OK <count> (extension) */
void vd_qtest_cmd_info(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdMachine *m = s->m;
    g_autoptr(GString) line = g_string_new(NULL);
    g_string_printf(line, "INFO ram 0x0+0x%" PRIx64, m->ram_size);
    vd_qtest_send_line(s, line->str);
    for (guint i = 0; i < m->devices->len; i++) {
        const VdDeviceInfo *d = &g_array_index(m->devices, VdDeviceInfo, i);
        g_string_printf(line, "INFO device %s %s=", d->name, d->space == VD_SPACE_PIO ? "pio" : "mmio");
        append_window(line, d->base, d->size);
        if (d->size2) {
            g_string_append_c(line, ',');
            append_window(line, d->base2, d->size2);
        }
        g_string_append_printf(line, " irq=%d compatible=%s drive=%s desc=%s", d->irq,
                               d->compatible ? d->compatible : "-", d->drive_id ? d->drive_id : "-",
                               d->description ? d->description : "");
        vd_qtest_send_line(s, line->str);
    }
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        g_string_printf(line, "INFO drive %s if=%s index=%d size=%" PRId64 " driver=%s cache=%s wce=%d ro=%d",
                        d->id, d->interface, d->index, vd_blk_length(d->blk), vd_blk_driver_name(d->blk),
                        vd_cache_mode_name(vd_blk_cache_mode(d->blk)), vd_blk_write_cache(d->blk),
                        vd_blk_is_read_only(d->blk));
        vd_qtest_send_line(s, line->str);
    }
    g_string_printf(reply, "OK %u", 1 + m->devices->len + m->drives->len);
}

/* dtb -> OK <base64 of the flattened device tree> (extension) */
void vd_qtest_cmd_dtb(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    g_autoptr(GError) err = NULL;
    size_t size;
    g_autofree void *fdt = vd_machine_build_fdt(s->m, &size, &err);
    if (!fdt) {
        vd_qtest_fail(reply, "%s", err->message);
        return;
    }
    g_autofree char *b64 = g_base64_encode(fdt, size);
    g_string_printf(reply, "OK %s", b64);
}

/* Free a trace sink (hash table value). */
void vd_qtest_trace_sink_free(gpointer p)
{
    TraceSink *t = p;
    g_free(t->id);
    g_free(t);
}

/* trace ID on|off: backend trace lines become "TRACE ID text" lines (extension) */
void vd_qtest_cmd_trace(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = vd_qtest_find_drive(s, argv[1], reply);
    if (!d) {
        return;
    }
    if (strcmp(argv[2], "on") == 0) {
        TraceSink *t = g_new0(TraceSink, 1);
        t->s = s;
        t->id = g_strdup(d->id);
        vd_blk_set_trace(d->blk, on_trace, t);
        g_hash_table_replace(s->traces, g_strdup(d->id), t);
    } else if (strcmp(argv[2], "off") == 0) {
        vd_blk_set_trace(d->blk, NULL, NULL);
        g_hash_table_remove(s->traces, d->id);
    } else {
        vd_qtest_fail(reply, "trace takes on or off, not '%s'", argv[2]);
        return;
    }
    g_string_assign(reply, "OK");
}

/*
 * inject ID OP ERRNO COUNT [AFTER [START-END]]: the op kind's host ops (read,
 * write, flush, discard) that touch [START, END) fail with -ERRNO, COUNT
 * times (a number, or "always") after AFTER of them passed (extension).
 */
void vd_qtest_cmd_inject(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = vd_qtest_find_drive(s, argv[1], reply);
    if (!d) {
        return;
    }
    VdFaultOp op;
    if (!vd_fault_op_parse(argv[2], &op)) {
        vd_qtest_fail(reply, "unknown operation '%s' (read, write, flush or discard)", argv[2]);
        return;
    }
    VdFaultRule rule = { 0 };
    uint64_t num;
    if (!vd_fault_errno_parse(argv[3], &rule.err)) {
        if (!vd_qtest_parse_num(argv[3], 4095, "ERRNO", &num, reply)) {
            return;
        }
        if (!num) {
            vd_qtest_fail(reply, "ERRNO must not be 0");
            return;
        }
        rule.err = num;
    }
    if (strcmp(argv[4], "always") == 0) {
        rule.count = VD_FAULT_ALWAYS;
    } else if (vd_qtest_parse_num(argv[4], UINT32_MAX - 1, "COUNT", &num, reply)) {
        rule.count = num;
    } else {
        return;
    }
    if (argc > 5 && !vd_qtest_parse_num(argv[5], UINT64_MAX, "AFTER", &rule.after, reply)) {
        return;
    }
    if (argc > 6) {
        char *dash = strchr(argv[6], '-');
        if (!dash) {
            vd_qtest_fail(reply, "range '%s' must be START-END", argv[6]);
            return;
        }
        *dash = '\0';
        if (!vd_qtest_parse_num(argv[6], UINT64_MAX, "START", &rule.start, reply) ||
            !vd_qtest_parse_num(dash + 1, UINT64_MAX, "END", &rule.end, reply)) {
            return;
        }
        if (rule.end <= rule.start) {
            vd_qtest_fail(reply, "range %s-%s is empty: START must be below END", argv[6], dash + 1);
            return;
        }
    }
    vd_blk_set_fault(d->blk, op, &rule);
    g_string_assign(reply, "OK");
}

/* delay ID OP US: hold every host op of that kind US microseconds (0: none; extension) */
void vd_qtest_cmd_delay(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = vd_qtest_find_drive(s, argv[1], reply);
    if (!d) {
        return;
    }
    VdFaultOp op;
    uint64_t us;
    if (!vd_fault_op_parse(argv[2], &op)) {
        vd_qtest_fail(reply, "unknown operation '%s' (read, write, flush or discard)", argv[2]);
        return;
    }
    if (!vd_qtest_parse_num(argv[3], VD_FAULT_MAX_DELAY_US, "US", &us, reply)) {
        return;
    }
    vd_blk_set_delay(d->blk, op, us);
    g_string_assign(reply, "OK");
}

/* stop ID: drive ID issues no new request until cont (what werror=stop does on an error) (extension) */
void vd_qtest_cmd_stop(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = vd_qtest_find_drive(s, argv[1], reply);
    if (d) {
        vd_blk_stop(d->blk);
        g_string_assign(reply, "OK");
    }
}

/* cont ID: retry drive ID's held requests in order, then issue the queued ones; OK N: how many (extension) */
void vd_qtest_cmd_cont(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = vd_qtest_find_drive(s, argv[1], reply);
    if (d) {
        unsigned n = vd_blk_parked(d->blk);
        g_autoptr(GError) err = NULL;
        if (!vd_blk_cont(d->blk, &err)) {
            vd_qtest_fail(reply, "%s: %s", d->id, err->message);
            return;
        }
        g_string_printf(reply, "OK %u", n);
    }
}

/* crash ID [SEED]: cut the power now and check every crash state (extension, docs/crash-testing.md) */
void vd_qtest_cmd_crash(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = vd_qtest_find_drive(s, argv[1], reply);
    uint64_t seed = 1;
    if (!d || (argc > 2 && !vd_qtest_parse_num(argv[2], UINT64_MAX, "SEED", &seed, reply))) {
        return;
    }
    g_autoptr(GError) err = NULL;
    VdCrashReport r;
    if (!vd_blk_crash_check(d->blk, seed, &r, &err)) {
        vd_qtest_fail(reply, "%s: %s", d->id, err->message);
        return;
    }
    g_string_assign(reply, "OK ");
    vd_crash_report_format(&r, reply);
}

/* crashlog ID PATH: write drive ID's host op log in dm-log-writes format (extension) */
void vd_qtest_cmd_crashlog(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = vd_qtest_find_drive(s, argv[1], reply);
    g_autoptr(GError) err = NULL;
    if (d && !vd_blk_crash_write_log(d->blk, argv[2], &err)) {
        vd_qtest_fail(reply, "%s: %s", d->id, err->message);
    } else if (d) {
        g_string_assign(reply, "OK");
    }
}

/* migrate URI: hand the machine over to a vdisk-vmm --incoming URI; OK once it took it (extension) */
void vd_qtest_cmd_migrate(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    g_autoptr(GError) err = NULL;
    if (vd_migrate(s->m, argv[1], &err)) {
        g_string_assign(reply, "OK");
    } else {
        vd_qtest_fail(reply, "%s", err->message);
    }
}

/* query-migrate -> OK STATUS [error] (extension) */
void vd_qtest_cmd_query_migrate(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    const char *error;
    VdMigrationStatus st = vd_migration_status(s->m, &error);
    g_string_printf(reply, "OK %s%s%s", vd_migration_status_name(st), error ? " " : "", error ? error : "");
}
