/*
 * rbd-lib.h - librados and librbd, loaded when the first rbd drive opens.
 *
 * The Ceph client libraries are large C++ libraries (libceph-common, boost);
 * linking them into every tool would slow down every process start and exit
 * (LeakSanitizer scans their memory at every exit) for the few that use RBD.
 * So the driver is built against librbd-dev's headers only and calls librbd
 * through this table, filled with dlsym from librbd.so.1 and librados.so.2
 * on first use, as QEMU loads its rbd driver as a module.
 *
 * Lock rules: vd_rbd_lib may be called from any thread; the table is filled
 * once (g_once) and never changes afterwards.
 */
#ifndef VD_RBD_LIB_H
#define VD_RBD_LIB_H

#include <glib.h>
#include <rbd/librbd.h>

/* The librados and librbd entry points the driver uses, by their own names and types. */
typedef struct VdRbdLib {
    __typeof__(rados_create) *rados_create;
    __typeof__(rados_conf_set) *rados_conf_set;
    __typeof__(rados_conf_get) *rados_conf_get;
    __typeof__(rados_conf_read_file) *rados_conf_read_file;
    __typeof__(rados_conf_parse_env) *rados_conf_parse_env;
    __typeof__(rados_connect) *rados_connect;
    __typeof__(rados_shutdown) *rados_shutdown;
    __typeof__(rados_ioctx_create) *rados_ioctx_create;
    __typeof__(rados_ioctx_destroy) *rados_ioctx_destroy;
    __typeof__(rbd_open) *rbd_open;
    __typeof__(rbd_open_read_only) *rbd_open_read_only;
    __typeof__(rbd_close) *rbd_close;
    __typeof__(rbd_get_size) *rbd_get_size;
    __typeof__(rbd_aio_create_completion) *rbd_aio_create_completion;
    __typeof__(rbd_aio_get_return_value) *rbd_aio_get_return_value;
    __typeof__(rbd_aio_release) *rbd_aio_release;
    __typeof__(rbd_aio_readv) *rbd_aio_readv;
    __typeof__(rbd_aio_writev) *rbd_aio_writev;
    __typeof__(rbd_aio_flush) *rbd_aio_flush;
    __typeof__(rbd_aio_discard) *rbd_aio_discard;
    __typeof__(rbd_aio_write_zeroes) *rbd_aio_write_zeroes;
} VdRbdLib;

/* The loaded libraries' table, or NULL with one line naming the library or symbol that is missing. */
const VdRbdLib *vd_rbd_lib(GError **errp);

#endif
