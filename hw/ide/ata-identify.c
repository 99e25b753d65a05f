/*
 * ata-identify.c - the 256-word IDENTIFY DEVICE data of the disk.
 *
 * Words 82-87 report what is supported and what is enabled right now:
 * write cache (82/85 bit 5; 85 reads the backend's state at every IDENTIFY,
 * so a change made by the host shows at the next one; 82 is clear when the
 * backend is write-through only: there is no cache), look-ahead (bit 6),
 * NOP (bit 14), power management (bit 3), LBA48 and FLUSH CACHE (EXT) (83/86 bits 10, 12, 13),
 * FUA (84/87 bit 6).  Words 105/169 offer TRIM when the backend can
 * discard.  Word 255 carries the A5h signature and a checksum
 * that makes the 512 bytes sum to zero.
 */
#include "ide-internal.h"

#include <string.h>

#define IDENTIFY_MODEL    "VDISK HARDDISK"
#define IDENTIFY_FIRMWARE "0.1.0"

/* Store an ATA string: space padded, two characters per word, first one in the high byte. */
static void put_string(uint16_t *w, unsigned nwords, const char *s)
{
    size_t len = strlen(s);
    for (unsigned i = 0; i < nwords * 2; i++) {
        uint8_t ch = i < len ? (uint8_t)s[i] : ' ';
        if (i % 2 == 0) {
            w[i / 2] = (uint16_t)ch << 8;
        } else {
            w[i / 2] |= ch;
        }
    }
}

/* The default (power-on) CHS cylinder count for 16 heads, 63 sectors, capped at 16383. */
static uint16_t default_cylinders(uint64_t nsectors)
{
    return MIN(nsectors / (16 * 63), 16383u);
}

/* Fill out[] with the drive's IDENTIFY DEVICE data, little-endian words. */
void vd_ata_identify(const IdeDrive *d, uint8_t out[IDE_SECTOR])
{
    uint16_t w[256] = { 0 };
    uint64_t n = d->nsectors;
    uint32_t lba28 = MIN(n, 0x0fffffffull);
    uint32_t cur_cyls = MIN(n / ((uint64_t)d->heads * d->spt), 65535u);
    uint32_t cur_chs = MIN((uint64_t)cur_cyls * d->heads * d->spt, 0xffffffffull);

    w[0] = 0x0040;                          /* fixed ATA device */
    w[1] = default_cylinders(n);
    w[3] = 16;
    w[6] = 63;
    put_string(&w[10], 10, d->serial);
    put_string(&w[23], 4, IDENTIFY_FIRMWARE);
    put_string(&w[27], 20, IDENTIFY_MODEL);
    w[47] = 0x8000 | VD_IDE_MAX_MULTIPLE;
    w[49] = 0x0f00;                         /* IORDY, IORDY may be disabled, LBA, DMA */
    w[50] = 0x4000;
    w[51] = 0x0200;                         /* PIO timing mode 2 (obsolete field) */
    w[53] = 0x0007;                         /* words 54-58, 64-70 and 88 are valid */
    w[54] = cur_cyls;
    w[55] = d->heads;
    w[56] = d->spt;
    w[57] = cur_chs;
    w[58] = cur_chs >> 16;
    w[59] = d->multiple ? 0x0100 | d->multiple : 0;
    w[60] = lba28;
    w[61] = lba28 >> 16;
    w[63] = 0x0007;                         /* multiword DMA 0-2 supported */
    if (d->xfer_mode >= 0x20 && d->xfer_mode <= 0x22) {
        w[63] |= 0x0100 << (d->xfer_mode - 0x20);
    }
    w[64] = 0x0003;                         /* PIO 3 and 4 */
    w[65] = w[66] = w[67] = w[68] = 120;    /* cycle times, ns */
    w[80] = 0x01f0;                         /* ATA/ATAPI-4 .. ATA8-ACS */
    w[82] = 0x4000 | 0x0040 | 0x0008;           /* NOP, look-ahead, power management */
    if (!vd_blk_write_through_only(d->blk)) {
        w[82] |= 0x0020;                        /* volatile write cache (none on a write-through-only disk) */
    }
    w[83] = 0x4000 | 0x2000 | 0x1000 | 0x0400;  /* FLUSH CACHE EXT, FLUSH CACHE, LBA48 */
    w[84] = 0x4000 | 0x0040;                /* WRITE DMA/MULTIPLE FUA EXT */
    w[85] = 0x4000 | 0x0008 | (d->lookahead ? 0x0040 : 0) | (vd_blk_write_cache(d->blk) ? 0x0020 : 0);
    w[86] = 0x2000 | 0x1000 | 0x0400;
    w[87] = 0x4000 | 0x0040;
    w[88] = 0x003f;                         /* Ultra DMA 0-5 supported */
    if (d->xfer_mode >= 0x40 && d->xfer_mode <= 0x45) {
        w[88] |= 0x0100 << (d->xfer_mode - 0x40);
    }
    /* Hardware reset result: how this device was addressed, diagnostics passed. */
    w[93] = 0x4000 | (d->unit == 0 ? 0x004b : 0x0300);
    w[100] = n;
    w[101] = n >> 16;
    w[102] = n >> 32;
    w[103] = n >> 48;
    w[106] = 0x4000;                        /* one logical sector per physical sector */
    if (vd_blk_can_discard(d->blk)) {
        w[105] = ATA_DSM_MAX_BLOCKS;            /* DATA SET MANAGEMENT: blocks of ranges per command */
        w[169] = 0x0001;                        /* TRIM supported */
    }

    for (unsigned i = 0; i < 256; i++) {
        out[2 * i] = w[i];
        out[2 * i + 1] = w[i] >> 8;
    }
    uint8_t sum = 0xa5;
    for (unsigned i = 0; i < IDE_SECTOR - 2; i++) {
        sum += out[i];
    }
    out[510] = 0xa5;
    out[511] = (uint8_t)-sum;
}
