/*
 * rbd-lib.c - load librados and librbd on first use (rbd-lib.h says why).
 * Lock rules are in rbd-lib.h.
 */
#include "rbd-lib.h"

#include <dlfcn.h>
#include <gio/gio.h>
#include <stddef.h>

/* The shared objects of librados2 and librbd1, the packages librbd-dev's headers come with. */
static const char *const lib_names[] = { "librados.so.2", "librbd.so.1" };

/* Every entry of VdRbdLib: its symbol and where it goes. */
static const struct {
    const char *symbol;
    size_t offset;
} symbols[] = {
#define SYM(name) { #name, offsetof(VdRbdLib, name) }
    SYM(rados_create), SYM(rados_conf_set), SYM(rados_conf_get), SYM(rados_conf_read_file),
    SYM(rados_conf_parse_env), SYM(rados_connect), SYM(rados_shutdown), SYM(rados_ioctx_create),
    SYM(rados_ioctx_destroy), SYM(rbd_open), SYM(rbd_open_read_only), SYM(rbd_close), SYM(rbd_get_size),
    SYM(rbd_aio_create_completion), SYM(rbd_aio_get_return_value), SYM(rbd_aio_release), SYM(rbd_aio_readv),
    SYM(rbd_aio_writev), SYM(rbd_aio_flush), SYM(rbd_aio_discard), SYM(rbd_aio_write_zeroes),
#undef SYM
};

static VdRbdLib lib;
static char *load_error;    /* why loading failed, or NULL */

/* Open both libraries (kept for the process's lifetime) and fill lib; else set load_error. */
static gpointer load_once(gpointer unused)
{
    void *handles[G_N_ELEMENTS(lib_names)];
    for (size_t i = 0; i < G_N_ELEMENTS(lib_names); i++) {
        handles[i] = dlopen(lib_names[i], RTLD_NOW | RTLD_GLOBAL);
        if (!handles[i]) {
            load_error = g_strdup_printf("rbd: cannot load %s (install librbd1): %s", lib_names[i], dlerror());
            return NULL;
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(symbols); i++) {
        void *fn = NULL;
        for (size_t h = 0; h < G_N_ELEMENTS(handles) && !fn; h++) {
            fn = dlsym(handles[h], symbols[i].symbol);
        }
        if (!fn) {
            load_error = g_strdup_printf("rbd: %s is not in %s or %s: librbd is too old", symbols[i].symbol,
                                         lib_names[0], lib_names[1]);
            return NULL;
        }
        *(void **)((char *)&lib + symbols[i].offset) = fn;
    }
    return &lib;
}

const VdRbdLib *vd_rbd_lib(GError **errp)
{
    static GOnce once = G_ONCE_INIT;
    const VdRbdLib *l = g_once(&once, load_once, NULL);
    if (!l) {
        g_set_error_literal(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, load_error);
    }
    return l;
}
