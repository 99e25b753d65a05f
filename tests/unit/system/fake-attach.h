/*
 * fake-attach.h - stand-in attach functions for machine unit tests.
 *
 * They replace system/attach-*.c at link time (a static library member is
 * only pulled in for symbols nothing else defines) and wire devices the way
 * the real ones must: IDE channel index/2 at 0x1f0/0x170 + 0x3f6/0x376 with
 * IRQ 14/15, one virtio-mmio slot per virtio drive, one virtio-scsi slot for
 * the first SCSI drive.  fake_attach_fail makes the next attach fail.
 */
#ifndef FAKE_ATTACH_H
#define FAKE_ATTACH_H

#include "system/machine.h"

extern bool fake_attach_fail;
extern unsigned fake_attach_calls;

#endif
