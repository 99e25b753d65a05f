/*
 * filename-spelling.c - QEMU's protocol filenames, file=PROTOCOL:..., turned
 * into the driver's own options, so that they mean exactly what the options
 * spelled out mean:
 *
 *   file=rbd:POOL/IMAGE[@SNAP][:conf=PATH][:id=USER]
 *       -> driver=rbd,pool=POOL,image=IMAGE[,snapshot=SNAP][,conf=PATH][,user=USER]
 *   file=nbd:unix:PATH[:exportname=NAME]
 *       -> driver=nbd,server.type=unix,server.path=PATH[,export=NAME]
 *   file=nbd:HOST:PORT[:exportname=NAME]      (HOST may be [IPv6])
 *       -> driver=nbd,server.type=inet,server.host=HOST,server.port=PORT[,export=NAME]
 *   file=nbd://..., nbd+unix://, nbds://, nbds+unix://  -> driver=nbd,uri=...
 *
 * In an rbd filename a backslash makes the next character literal (\: \@ \/
 * \\), as in QEMU.  Without driver= (or with the protocol's own driver=) such
 * a file= is the protocol; with another driver= it stays a path, so
 * driver=file,file=rbd:x opens the local file "rbd:x".  Every malformed
 * filename fails with one line naming the part that is wrong.
 * Threading: none (option parsing).
 */
#include "block-internal.h"
#include "util/options.h"

#include <string.h>

/* Parse the filename (prefix skip bytes long) into VdOpt items. */
typedef bool VdSpellingParse(const char *file, size_t skip, GPtrArray *out, GError **errp);

static VdSpellingParse parse_rbd, parse_nbd_uri, parse_nbd_legacy;

/* A filename prefix, the driver it names (NULL: not in this build) and its parser; longest prefix first. */
static const struct {
    const char *prefix;
    const char *driver_name;
    const VdBlockDriver *driver;
    VdSpellingParse *parse;
} protocols[] = {
#ifdef VD_HAVE_RBD
    { "rbd:", "rbd", &vd_driver_rbd, parse_rbd },
#else
    { "rbd:", "rbd", NULL, parse_rbd },
#endif
    { "nbd://", "nbd", &vd_driver_nbd, parse_nbd_uri },
    { "nbd+unix://", "nbd", &vd_driver_nbd, parse_nbd_uri },
    { "nbds://", "nbd", &vd_driver_nbd, parse_nbd_uri },
    { "nbds+unix://", "nbd", &vd_driver_nbd, parse_nbd_uri },
    { "nbd:", "nbd", &vd_driver_nbd, parse_nbd_legacy },
};

/* The keys of an rbd filename's :KEY=VALUE options and the driver option each one sets (QEMU's two). */
static const struct {
    const char *key;
    const char *option;
} rbd_keys[] = {
    { "conf", "conf" },
    { "id", "user" },
};

#define RBD_FORM "rbd:POOL/IMAGE[@SNAPSHOT][:conf=PATH][:id=USER]"
#define NBD_FORM "nbd:unix:PATH[:exportname=NAME] or nbd:HOST:PORT[:exportname=NAME]"

/* The position of the first delim in s not escaped by a backslash, or NULL. */
static const char *find_unescaped(const char *s, char delim)
{
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
        } else if (*s == delim) {
            return s;
        }
    }
    return NULL;
}

/* The first len bytes of s (all of it if end is NULL) with QEMU's escapes removed: "\\c" is 'c'. */
static char *unescape(const char *s, const char *end)
{
    GString *out = g_string_new(NULL);
    for (; *s && (!end || s < end); s++) {
        if (*s == '\\' && s[1] && (!end || s + 1 < end)) {
            s++;
        }
        g_string_append_c(out, *s);
    }
    return g_string_free(out, FALSE);
}

/* One rbd :KEY=VALUE item (escaped, up to end) into its driver option; every key once. */
static bool rbd_option(const char *file, const char *item, const char *end, GPtrArray *out, GError **errp)
{
    const char *eq = find_unescaped(item, '=');
    if (eq && end && eq > end) {
        eq = NULL;
    }
    g_autofree char *key = unescape(item, eq ? eq : end);
    if (!eq) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "file=%s: option '%s' has no value (KEY=VALUE); the form is " RBD_FORM, file, key);
        return false;
    }
    g_autofree char *value = unescape(eq + 1, end);
    for (size_t i = 0; i < G_N_ELEMENTS(rbd_keys); i++) {
        if (strcmp(rbd_keys[i].key, key) != 0) {
            continue;
        }
        for (guint k = 0; k < out->len; k++) {
            if (strcmp(((VdOpt *)g_ptr_array_index(out, k))->key, rbd_keys[i].option) == 0) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "file=%s: option '%s' is given twice",
                            file, key);
                return false;
            }
        }
        vd_opts_add(out, rbd_keys[i].option, value);
        return true;
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "file=%s: unknown option '%s'; accepted options: conf, id", file, key);
    return false;
}

/* rbd:POOL/IMAGE[@SNAP][:KEY=VALUE]... */
static bool parse_rbd(const char *file, size_t skip, GPtrArray *out, GError **errp)
{
    const char *p = file + skip, *slash = find_unescaped(p, '/');
    const char *end = slash ? find_unescaped(slash + 1, ':') : NULL;      /* the image part ends here */
    const char *at = slash ? find_unescaped(slash + 1, '@') : NULL;
    if (at && end && at > end) {
        at = NULL;
    }
    const char *ns = slash ? find_unescaped(slash + 1, '/') : NULL;
    const char *why = NULL;
    if (!slash) {
        why = "no pool: a '/' must follow the pool name";
    } else if (slash == p) {
        why = "the pool name is empty";
    } else if (ns && (!end || ns < end) && (!at || ns < at)) {
        why = "RBD namespaces (POOL/NAMESPACE/IMAGE) are not supported; write a '/' in a name as \\/";
    } else if ((at ? at : end ? end : slash + 1 + strlen(slash + 1)) == slash + 1) {
        why = "the image name is empty";
    } else if (at && (at + 1 == (end ? end : at + 1 + strlen(at + 1)))) {
        why = "the snapshot name after '@' is empty";
    } else if (at && find_unescaped(at + 1, '@') && (!end || find_unescaped(at + 1, '@') < end)) {
        why = "more than one '@'; write an '@' in a name as \\@";
    }
    if (why) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "file=%s: %s; the form is " RBD_FORM, file, why);
        return false;
    }
    g_autofree char *pool = unescape(p, slash);
    g_autofree char *image = unescape(slash + 1, at ? at : end);
    vd_opts_add(out, "pool", pool);
    vd_opts_add(out, "image", image);
    if (at) {
        g_autofree char *snap = unescape(at + 1, end);
        vd_opts_add(out, "snapshot", snap);
    }
    for (p = end ? end + 1 : NULL; p; ) {
        const char *stop = find_unescaped(p, ':');
        if (!rbd_option(file, p, stop, out, errp)) {
            return false;
        }
        p = stop ? stop + 1 : NULL;
    }
    return true;
}

/* nbd://, nbd+unix://, nbds://, nbds+unix://: the whole filename is the URI. */
static bool parse_nbd_uri(const char *file, size_t skip, GPtrArray *out, GError **errp)
{
    vd_opts_add(out, "uri", file);
    return true;
}

/* A TCP port: 1 to 65535, digits only. */
static bool nbd_port(const char *file, const char *port, GError **errp)
{
    guint64 n;
    if (!*port || !g_ascii_string_to_unsigned(port, 10, 1, 65535, &n, NULL)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "file=%s: invalid port '%s'; expected a number from 1 to 65535", file, port);
        return false;
    }
    return true;
}

/* nbd:unix:PATH[:exportname=NAME] or nbd:HOST:PORT[:exportname=NAME] (QEMU's legacy form). */
static bool parse_nbd_legacy(const char *file, size_t skip, GPtrArray *out, GError **errp)
{
    static const char export_tag[] = ":exportname=";
    const char *rest = file + skip, *exp = strstr(rest, export_tag);
    g_autofree char *spec = exp ? g_strndup(rest, exp - rest) : g_strdup(rest);
    if (g_str_has_prefix(spec, "unix:")) {
        if (!spec[5]) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "file=%s: nbd:unix: needs a socket path",
                        file);
            return false;
        }
        vd_opts_add(out, "server.type", "unix");
        vd_opts_add(out, "server.path", spec + 5);
    } else {
        /* HOST:PORT, or [IPV6]:PORT */
        bool bracket = spec[0] == '[';
        char *close = bracket ? strchr(spec, ']') : NULL;
        char *colon = bracket ? (close && close[1] == ':' ? close + 1 : NULL) : strchr(spec, ':');
        if (!colon || (bracket && !close)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "file=%s: '%s' is not HOST:PORT or unix:PATH; the form is " NBD_FORM, file, spec);
            return false;
        }
        *colon = '\0';
        if (bracket) {
            *close = '\0';
        }
        const char *host = spec + bracket;
        if (!*host) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "file=%s: the host name is empty; the form is "
                        NBD_FORM, file);
            return false;
        }
        if (!nbd_port(file, colon + 1, errp)) {
            return false;
        }
        vd_opts_add(out, "server.type", "inet");
        vd_opts_add(out, "server.host", host);
        vd_opts_add(out, "server.port", colon + 1);
    }
    if (exp) {
        vd_opts_add(out, "export", exp + strlen(export_tag));
    }
    return true;
}

bool vd_block_filename_spelling(VdBlockOptions *o, bool driver_given, GError **errp)
{
    size_t i = 0;
    while (o->file && i < G_N_ELEMENTS(protocols) && !g_str_has_prefix(o->file, protocols[i].prefix)) {
        i++;
    }
    if (!o->file || i == G_N_ELEMENTS(protocols) ||
        (driver_given && strcmp(o->driver->name, protocols[i].driver_name) != 0)) {
        return true;    /* a path */
    }
    if (!protocols[i].driver) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "file=%s: this build has no %s driver", o->file,
                    protocols[i].driver_name);
        return false;
    }
    g_autoptr(GPtrArray) pairs = vd_opts_new();
    if (!protocols[i].parse(o->file, strlen(protocols[i].prefix), pairs, errp)) {
        return false;
    }
    for (guint k = 0; k < pairs->len; k++) {
        const VdOpt *pair = g_ptr_array_index(pairs, k);
        VdDriverOpenOptions probe = { .driver_opts = o->driver_opts };
        if (vd_drv_opt(&probe, pair->key)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "file=%s already sets %s; give it without %s=", o->file, pair->key, pair->key);
            return false;
        }
        vd_block_options_add_driver_opt(o, pair->key, pair->value);
    }
    o->driver = protocols[i].driver;
    g_clear_pointer(&o->file, g_free);
    return true;
}
