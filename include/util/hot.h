/*
 * hot.h - VD_HOT marks a function of the request path: it goes to the
 * section .text.hot.vdisk, which the linker's default script packs with the
 * other .text.hot* input at the start of .text.
 *
 * Why: a page-cache write spends about 2.4 us in the kernel, and the
 * kernel's code evicts ours from the L1 instruction cache.  The request
 * path (some 30 functions, about 1000 instructions per request) is then
 * fetched again on every request.  Spread over the library's .text it
 * spans about 90 KB; packed, about 12 KB that the prefetcher streams.
 * Measured in docs/benchmarks.md ("The request path in one place").
 *
 * Mark a function VD_HOT only if a read or write of the default
 * configuration (the inline path, or the io_uring engine) runs it every
 * time; block-hot-path (tests/unit/block/hot-path-check.sh) checks them.
 */
#ifndef VD_UTIL_HOT_H
#define VD_UTIL_HOT_H

/* The section is named, not left to the hot attribute: GCC moves hot functions to .text.hot only from -O2 on. */
#define VD_HOT __attribute__((hot, section(".text.hot.vdisk")))

#endif
