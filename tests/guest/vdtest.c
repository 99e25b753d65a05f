/*
 * vdtest - the guest side of the Linux guest tests: writes and verifies a
 * deterministic pattern on a block device with a chosen durability method,
 * and measures write/read throughput.  Built with gcc -static and put in the
 * initramfs; the host computes the same pattern (run-guest.py) to check the
 * image byte for byte.
 *
 *   vdtest write  DEV OFFSET LEN CHUNK SEED MODE   MODE: direct | dsync | fsync
 *       direct: O_DIRECT; dsync: O_DIRECT|O_DSYNC; fsync: buffered, fsync() after each chunk
 *   vdtest verify DEV OFFSET LEN SEED              O_DIRECT read, compare with the pattern
 *   vdtest bench  DEV OFFSET LEN BS SECONDS MODE   MODE: randwrite | seqwrite | randread | seqread
 *                                                   (O_DIRECT, queue depth 1)
 * Output: one "VDT ..." line per command; exit status 0 only on success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ALIGN 4096

/* The pattern: one 64-bit word per 8 bytes of the disk, from (seed, byte offset). */
static uint64_t pattern_word(uint64_t seed, uint64_t off)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + (off >> 3) + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fill buf (len a multiple of 8) with the pattern for disk offset off. */
static void fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t off)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = pattern_word(seed, off + i);
        memcpy(buf + i, &w, 8);   /* x86: little-endian, as the host reads it */
    }
}

/* Parse a number with an optional K/M suffix. */
static uint64_t num(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 0);
    if (*end == 'K' || *end == 'k') {
        v <<= 10;
    } else if (*end == 'M' || *end == 'm') {
        v <<= 20;
    }
    return v;
}

/* An aligned buffer (O_DIRECT). */
static uint8_t *abuf(size_t len)
{
    void *p;
    if (posix_memalign(&p, ALIGN, len ? len : ALIGN)) {
        perror("posix_memalign");
        exit(1);
    }
    return p;
}

/* Write the pattern with the chosen durability method. */
static int cmd_write(char **a)
{
    const char *dev = a[0], *mode = a[5];
    uint64_t off = num(a[1]), len = num(a[2]), chunk = num(a[3]), seed = num(a[4]);
    int flags = O_WRONLY;
    int do_fsync = 0;
    if (strcmp(mode, "direct") == 0) {
        flags |= O_DIRECT;
    } else if (strcmp(mode, "dsync") == 0) {
        flags |= O_DIRECT | O_DSYNC;
    } else if (strcmp(mode, "fsync") == 0) {
        do_fsync = 1;
    } else {
        fprintf(stderr, "vdtest: unknown write mode %s\n", mode);
        return 2;
    }
    int fd = open(dev, flags);
    if (fd < 0 || chunk == 0 || chunk % ALIGN || len % chunk) {
        printf("VDT write %s mode=%s FAIL open/args: %s\n", dev, mode, strerror(errno));
        return 1;
    }
    uint8_t *buf = abuf(chunk);
    unsigned fsyncs = 0;
    for (uint64_t done = 0; done < len; done += chunk) {
        fill(buf, chunk, seed, off + done);
        if (pwrite(fd, buf, chunk, off + done) != (ssize_t)chunk) {
            printf("VDT write %s mode=%s FAIL pwrite at %llu: %s\n", dev, mode,
                   (unsigned long long)(off + done), strerror(errno));
            return 1;
        }
        if (do_fsync) {
            if (fsync(fd) < 0) {
                printf("VDT write %s mode=%s FAIL fsync: %s\n", dev, mode, strerror(errno));
                return 1;
            }
            fsyncs++;
        }
    }
    close(fd);
    printf("VDT write %s mode=%s off=%llu len=%llu fsyncs=%u OK\n", dev, mode, (unsigned long long)off,
           (unsigned long long)len, fsyncs);
    return 0;
}

/* Read back with O_DIRECT and compare. */
static int cmd_verify(char **a)
{
    const char *dev = a[0];
    uint64_t off = num(a[1]), len = num(a[2]), seed = num(a[3]);
    int fd = open(dev, O_RDONLY | O_DIRECT);
    if (fd < 0) {
        printf("VDT verify %s FAIL open: %s\n", dev, strerror(errno));
        return 1;
    }
    uint8_t *got = abuf(len), *want = abuf(len);
    if (pread(fd, got, len, off) != (ssize_t)len) {
        printf("VDT verify %s FAIL pread: %s\n", dev, strerror(errno));
        return 1;
    }
    fill(want, len, seed, off);
    for (uint64_t i = 0; i < len; i++) {
        if (got[i] != want[i]) {
            printf("VDT verify %s off=%llu len=%llu FAIL first difference at %llu\n", dev,
                   (unsigned long long)off, (unsigned long long)len, (unsigned long long)(off + i));
            return 1;
        }
    }
    close(fd);
    printf("VDT verify %s off=%llu len=%llu OK\n", dev, (unsigned long long)off, (unsigned long long)len);
    return 0;
}

/* Seconds since an arbitrary point. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Queue-depth-1 O_DIRECT throughput over [off, off+len). */
static int cmd_bench(char **a)
{
    const char *dev = a[0], *mode = a[5];
    uint64_t off = num(a[1]), len = num(a[2]), bs = num(a[3]);
    double secs = atof(a[4]);
    int rnd = strncmp(mode, "rand", 4) == 0, wr = strstr(mode, "write") != NULL;
    int fd = open(dev, (wr ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0 || bs == 0 || bs % ALIGN || len < bs) {
        printf("VDT bench %s FAIL open/args\n", mode);
        return 1;
    }
    uint8_t *buf = abuf(bs);
    fill(buf, bs, 99, 0);
    uint64_t blocks = len / bs, n = 0, x = 88172645463325252ull;
    double t0 = now(), t;
    do {
        for (int k = 0; k < 8; k++, n++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t o = off + (rnd ? x % blocks : n % blocks) * bs;
            ssize_t r = wr ? pwrite(fd, buf, bs, o) : pread(fd, buf, bs, o);
            if (r != (ssize_t)bs) {
                printf("VDT bench %s FAIL io: %s\n", mode, strerror(errno));
                return 1;
            }
        }
        t = now();
    } while (t - t0 < secs);
    close(fd);
    printf("VDT bench dev=%s mode=%s bs=%llu ops=%llu secs=%.3f iops=%.1f mbps=%.2f OK\n", dev, mode,
           (unsigned long long)bs, (unsigned long long)n, t - t0, n / (t - t0), n * bs / (t - t0) / 1e6);
    return 0;
}

/* Command table: name, argument count, handler. */
static const struct {
    const char *name;
    int argc;
    int (*fn)(char **);
} cmds[] = {
    { "write", 6, cmd_write },
    { "verify", 4, cmd_verify },
    { "bench", 6, cmd_bench },
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0 && argc == cmds[i].argc + 2) {
            return cmds[i].fn(argv + 2);
        }
    }
    fprintf(stderr, "usage: vdtest write DEV OFF LEN CHUNK SEED direct|dsync|fsync\n"
                    "       vdtest verify DEV OFF LEN SEED\n"
                    "       vdtest bench DEV OFF LEN BS SECONDS randwrite|seqwrite|randread|seqread\n");
    return 2;
}
