/*
 * crashload - the guest half of the real-guest crash test (run-guest.py
 * case ext4-crash, docs/crash-testing.md): a seeded file-system workload
 * that says on the console what it made durable.
 *
 *   crashload DIR SEED OPS
 *
 * Each of OPS steps does one of (chosen by the seed):
 *  - create: write a new file fNNN in chunks, fsync it, fsync DIR;
 *  - replace: write a new version of an fsynced file to NAME.tmp, fsync it,
 *    rename it over NAME, fsync DIR (the atomic-replace idiom);
 *  - noise: write (or delete) an nNNN file and never fsync it.
 * Only AFTER the last fsync of a create or replace has returned does it print
 *   VDT fsynced name=NAME ver=V size=BYTES sha256=HEX
 * so every such line is a promise the file system made: after a power cut at
 * any later moment NAME holds version V (or a later one).  Ends with
 * "VDT crashload ... OK"; any failed call prints a line with FAIL and exit 1.
 * Built static (build-initramfs.sh); no libc beyond POSIX.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FILES 1024
#define MAX_SIZE (1u << 20)

/* ---- SHA-256 (FIPS 180-4), for the console record ---- */

typedef struct Sha256 {
    uint32_t h[8];
    uint8_t buf[64];
    uint64_t len;
} Sha256;

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Rotate right. */
static uint32_t ror(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

/* One 64-byte block into the state. */
static void sha_block(Sha256 *s, const uint8_t *p)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof(v));
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) +
                      sha_k[i] + w[i];
        uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof(uint32_t));
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) {
        s->h[i] += v[i];
    }
}

/* SHA-256 of len bytes at p, as 64 hex digits into hex[65]. */
static void sha256_hex(const uint8_t *p, size_t len, char *hex)
{
    Sha256 s = { .h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
                        0x5be0cd19 } };
    size_t i;
    for (i = 0; i + 64 <= len; i += 64) {
        sha_block(&s, p + i);
    }
    uint8_t tail[128] = { 0 };
    size_t rest = len - i, n = rest < 56 ? 64 : 128;
    memcpy(tail, p + i, rest);
    tail[rest] = 0x80;
    for (int b = 0; b < 8; b++) {
        tail[n - 1 - b] = (uint8_t)(((uint64_t)len * 8) >> (8 * b));
    }
    for (size_t off = 0; off < n; off += 64) {
        sha_block(&s, tail + off);
    }
    for (int j = 0; j < 8; j++) {
        sprintf(hex + 8 * j, "%08x", s.h[j]);
    }
}

/* ---- the workload ---- */

static uint64_t rng_state;
static int dirfd_;
static int failed;

/* splitmix64: the seeded choices and the file contents. */
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Report a failed call; the run goes on, the exit status says so. */
static void fail(const char *what, const char *name)
{
    printf("VDT crashload %s %s: %s FAIL\n", what, name, strerror(errno));
    failed = 1;
}

/* A file size: mostly small, some up to 128 KiB, a few up to 1 MiB. */
static size_t pick_size(void)
{
    unsigned r = rnd() % 100;
    size_t max = r < 70 ? 16384 : r < 95 ? 131072 : MAX_SIZE;
    return 1 + rnd() % max;
}

/* Fill buf with fresh seeded bytes. */
static void fill(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = rnd();
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

/* Write name in random chunks (each one write call) and fsync it if asked; false on failure. */
static int write_file(const char *name, const uint8_t *buf, size_t len, int do_fsync)
{
    int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fail("open", name);
        return 0;
    }
    for (size_t off = 0; off < len;) {
        size_t n = 512 + rnd() % 65536;
        n = n > len - off ? len - off : n;
        ssize_t w = write(fd, buf + off, n);
        if (w <= 0) {
            fail("write", name);
            close(fd);
            return 0;
        }
        off += (size_t)w;
    }
    if (do_fsync && fsync(fd) < 0) {
        fail("fsync", name);
        close(fd);
        return 0;
    }
    close(fd);
    return 1;
}

/* fsync the directory: makes a create, rename or unlink in it durable. */
static int sync_dir(const char *name)
{
    if (fsync(dirfd_) < 0) {
        fail("fsync-dir", name);
        return 0;
    }
    return 1;
}

/* The promise: printed only once every fsync it rests on has returned. */
static void record(const char *name, unsigned ver, const uint8_t *buf, size_t len)
{
    char hex[65];
    sha256_hex(buf, len, hex);
    printf("VDT fsynced name=%s ver=%u size=%zu sha256=%s\n", name, ver, len, hex);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: crashload DIR SEED OPS\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    rng_state = strtoull(argv[2], NULL, 0) * 0x2545f4914f6cdd1dull;
    unsigned ops = (unsigned)strtoul(argv[3], NULL, 0);
    dirfd_ = open(argv[1], O_RDONLY | O_DIRECTORY);
    uint8_t *buf = malloc(MAX_SIZE + 8);
    if (dirfd_ < 0 || !buf) {
        fail("open", argv[1]);
        return 1;
    }
    static unsigned versions[MAX_FILES];
    unsigned nfiles = 0, created = 0, replaced = 0, noise = 0;
    for (unsigned i = 0; i < ops && nfiles < MAX_FILES; i++) {
        unsigned r = rnd() % 100;
        char name[32], tmp[40];
        size_t len = pick_size();
        fill(buf, len);
        if (r < 55 || nfiles == 0) {
            snprintf(name, sizeof(name), "f%03u", nfiles);
            if (write_file(name, buf, len, 1) && sync_dir(name)) {
                versions[nfiles++] = 1;
                created++;
                record(name, 1, buf, len);
            }
        } else if (r < 75) {
            unsigned f = rnd() % nfiles;
            snprintf(name, sizeof(name), "f%03u", f);
            snprintf(tmp, sizeof(tmp), "%s.tmp", name);
            if (write_file(tmp, buf, len, 1)) {
                if (renameat(dirfd_, tmp, dirfd_, name) < 0) {
                    fail("rename", tmp);
                } else if (sync_dir(name)) {
                    replaced++;
                    record(name, ++versions[f], buf, len);
                }
            }
        } else {
            snprintf(name, sizeof(name), "n%03u", (unsigned)(rnd() % 16));
            if (r < 85 && unlinkat(dirfd_, name, 0) < 0 && errno != ENOENT) {
                fail("unlink", name);
            } else if (r >= 85) {
                write_file(name, buf, len, 0);
            }
            noise++;
        }
    }
    printf("VDT crashload ops=%u files=%u created=%u replaced=%u noise=%u %s\n", ops, nfiles, created, replaced,
           noise, failed ? "FAIL" : "OK");
    free(buf);
    close(dirfd_);
    return failed;
}
