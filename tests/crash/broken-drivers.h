/*
 * broken-drivers.h - deliberately broken filters for proving that the
 * crash oracle bites, without any test hook in production code.  Each sits
 * ABOVE crashsim (which it opens as its child, over opts->child) and lies
 * the way a broken host stack would:
 *   broken-fua    drops VD_DRV_FUA / VD_DRV_DSYNC: a FUA or write-through
 *                 write completes but is only volatile
 *   broken-flush  flush_to_disk succeeds without flushing anything
 * Register them once with broken_drivers_register(), then open e.g.
 * "driver=broken-fua,child=null,size=16M".
 */
#ifndef VD_TEST_BROKEN_DRIVERS_H
#define VD_TEST_BROKEN_DRIVERS_H

#include "block/block-driver.h"

void broken_drivers_register(void);

#endif
