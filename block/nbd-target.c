/*
 * nbd-target.c - where the NBD server is, from the driver's options.
 *
 * Two spellings, as in QEMU:
 *   uri=nbd://HOST[:PORT]/EXPORT, uri=nbd+unix:///EXPORT?socket=PATH
 *       (nbds:// and nbds+unix:// ask for TLS; libnbd reads the rest)
 *   server.type=unix,server.path=PATH[,export=EXPORT]
 *   server.type=inet,server.host=HOST[,server.port=PORT][,export=EXPORT]
 * Every bad combination fails at open with one line naming the option.
 * Owner thread (open and reconnection).
 */
#include "nbd-internal.h"

#include <string.h>

/* URI schemes libnbd connects with, and whether they ask for TLS. */
static const struct {
    const char *scheme;
    bool tls;
} schemes[] = {
    { "nbd", false }, { "nbd+unix", false }, { "nbds", true }, { "nbds+unix", true },
};

/* server.type= values (QEMU's SocketAddress types this driver takes). */
static const struct {
    const char *name;
    VdNbdTransport transport;
} server_types[] = {
    { "unix", VD_NBD_UNIX }, { "inet", VD_NBD_INET },
};

/* Check uri= and fill t from it. */
static bool parse_uri(const char *uri, VdNbdTarget *t, GError **errp)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GUri) u = g_uri_parse(uri, G_URI_FLAGS_NON_DNS | G_URI_FLAGS_ENCODED, &err);
    if (!u) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "driver=nbd: uri=%s does not parse: %s", uri,
                    err->message);
        return false;
    }
    const char *scheme = g_uri_get_scheme(u);
    for (size_t i = 0; i < G_N_ELEMENTS(schemes); i++) {
        if (g_ascii_strcasecmp(scheme, schemes[i].scheme) == 0) {
            t->transport = VD_NBD_URI;
            t->uri = g_strdup(uri);
            t->tls = schemes[i].tls;
            t->desc = g_strdup(uri);
            return true;
        }
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "driver=nbd: uri=%s: scheme '%s' is not one of nbd, nbds, nbd+unix, nbds+unix", uri, scheme);
    return false;
}

/* Fill t from server.type=, server.path= / server.host=, server.port=, export=. */
static bool parse_server(const VdDriverOpenOptions *opts, VdNbdTarget *t, GError **errp)
{
    const char *type = vd_drv_opt(opts, "server.type"), *path = vd_drv_opt(opts, "server.path");
    const char *host = vd_drv_opt(opts, "server.host"), *port = vd_drv_opt(opts, "server.port");
    const char *exp = vd_drv_opt(opts, "export");
    if (!type) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "driver=nbd needs uri=nbd://HOST[:PORT]/EXPORT or uri=nbd+unix:///EXPORT?socket=PATH, or "
                    "server.type=unix,server.path=PATH or server.type=inet,server.host=HOST");
        return false;
    }
    size_t i = 0;
    while (i < G_N_ELEMENTS(server_types) && strcmp(server_types[i].name, type) != 0) {
        i++;
    }
    if (i == G_N_ELEMENTS(server_types)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "driver=nbd: invalid server.type '%s'; accepted values: unix, inet", type);
        return false;
    }
    t->transport = server_types[i].transport;
    t->export_name = g_strdup(exp ? exp : "");
    if (t->transport == VD_NBD_UNIX && (!path || !*path || host || port)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "driver=nbd: server.type=unix needs server.path=PATH and takes no server.host/server.port");
        return false;
    }
    if (t->transport == VD_NBD_INET && (!host || !*host || path)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "driver=nbd: server.type=inet needs server.host=HOST (server.port= is 10809 by default) "
                    "and takes no server.path");
        return false;
    }
    if (t->transport == VD_NBD_UNIX) {
        t->path = g_strdup(path);
        t->desc = g_strdup_printf("unix:%s export '%s'", path, t->export_name);
    } else {
        t->host = g_strdup(host);
        t->port = g_strdup(port ? port : "10809");
        t->desc = g_strdup_printf("%s:%s export '%s'", host, t->port, t->export_name);
    }
    return true;
}

bool vd_nbd_target_parse(const VdDriverOpenOptions *opts, VdNbdTarget *t, GError **errp)
{
    const char *uri = vd_drv_opt(opts, "uri");
    *t = (VdNbdTarget){ 0 };
    if (uri && (vd_drv_opt(opts, "server.type") || vd_drv_opt(opts, "server.path") ||
                vd_drv_opt(opts, "server.host") || vd_drv_opt(opts, "server.port") || vd_drv_opt(opts, "export"))) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "driver=nbd: uri= names the server and the export; give it without server.* and export=");
        return false;
    }
    bool ok = uri ? parse_uri(uri, t, errp) : parse_server(opts, t, errp);
    if (!ok) {
        vd_nbd_target_clear(t);
    }
    return ok;
}

void vd_nbd_target_clear(VdNbdTarget *t)
{
    g_free(t->uri);
    g_free(t->path);
    g_free(t->host);
    g_free(t->port);
    g_free(t->export_name);
    g_free(t->desc);
    *t = (VdNbdTarget){ 0 };
}

struct nbd_handle *vd_nbd_target_handle(const VdNbdTarget *t, GError **errp)
{
    struct nbd_handle *h = nbd_create();
    if (!h) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "driver=nbd: %s", nbd_get_error());
        return NULL;
    }
    const char *why = NULL;
    if (t->tls && !nbd_supports_tls(h)) {
        why = "asks for TLS (nbds), but this libnbd was built without TLS support";
    } else if (t->transport == VD_NBD_URI && !nbd_supports_uri(h)) {
        why = "is a URI, but this libnbd was built without URI support: use server.type=";
    } else if (t->transport != VD_NBD_URI && nbd_set_export_name(h, t->export_name) == -1) {
        why = nbd_get_error();
    }
    if (why) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "driver=nbd: %s %s", t->desc, why);
        nbd_close(h);
        return NULL;
    }
    return h;
}

int vd_nbd_target_connect(struct nbd_handle *h, const VdNbdTarget *t, bool async)
{
    switch (t->transport) {
    case VD_NBD_URI:
        return async ? nbd_aio_connect_uri(h, t->uri) : nbd_connect_uri(h, t->uri);
    case VD_NBD_UNIX:
        return async ? nbd_aio_connect_unix(h, t->path) : nbd_connect_unix(h, t->path);
    case VD_NBD_INET:
        return async ? nbd_aio_connect_tcp(h, t->host, t->port) : nbd_connect_tcp(h, t->host, t->port);
    }
    return -1;
}
