/*
 * guest-fdt.c - the tiny guest's device discovery: a minimal walker of the
 * flattened device tree (devicetree specification v0.4, chapter 5) that
 * finds the first node with a given compatible string, and decodes its reg
 * and interrupts with its parent's #address-cells / #size-cells.
 *
 * The layout is vdisk-vmm's (docs/vdisk-vmm.md): MMIO devices are children
 * of / (two address and two size cells); port-I/O devices are children of
 * an ISA node (device_type "isa"), whose reg entries are <1 port length>.
 *
 * A blob that is not an FDT, or is truncated, yields "not found".
 */
#include "guest.h"

enum { FDT_MAGIC = 0xd00dfeed, FDT_BEGIN_NODE = 1, FDT_END_NODE = 2, FDT_PROP = 3, FDT_NOP = 4, FDT_END = 9 };
#define FDT_MAX_DEPTH 8
#define FDT_MAX_SIZE  GUEST_FDT_MAX

/* What the walker remembers about one open node. */
typedef struct FdtNode {
    unsigned address_cells, size_cells;   /* for its children */
    bool isa;                             /* device_type = "isa": children are port I/O */
    bool match;                           /* compatible lists the string we look for */
    const uint8_t *reg;
    uint32_t reg_len;
    int irq;
} FdtNode;

/* Big-endian 32-bit load. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* NUL-terminated string equality. */
static bool str_eq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++, b++;
    }
    return *a == *b;
}

/* Is there a NUL in s[0..max)? */
static bool terminated(const uint8_t *s, uint32_t max)
{
    for (uint32_t i = 0; i < max; i++) {
        if (!s[i]) {
            return true;
        }
    }
    return false;
}

/* Does the string list val[0..len) (NUL-separated) contain s? */
static bool list_has(const uint8_t *val, uint32_t len, const char *s)
{
    for (uint32_t i = 0; i < len; ) {
        const char *item = (const char *)val + i;
        uint32_t n = 0;
        while (i + n < len && item[n]) {
            n++;
        }
        if (i + n < len && str_eq(item, s)) {
            return true;
        }
        i += n + 1;
    }
    return false;
}

/* The properties the walker reads. */
typedef enum { PROP_ADDRESS_CELLS, PROP_SIZE_CELLS, PROP_DEVICE_TYPE, PROP_COMPATIBLE, PROP_REG, PROP_INTERRUPTS,
               PROP_OTHER } PropKind;
static const struct {
    const char *name;
    PropKind kind;
} known_props[] = {
    { "#address-cells", PROP_ADDRESS_CELLS }, { "#size-cells", PROP_SIZE_CELLS },
    { "device_type", PROP_DEVICE_TYPE }, { "compatible", PROP_COMPATIBLE },
    { "reg", PROP_REG }, { "interrupts", PROP_INTERRUPTS },
};

/* Which of known_props name is. */
static PropKind prop_kind(const char *name)
{
    for (unsigned i = 0; i < sizeof(known_props) / sizeof(known_props[0]); i++) {
        if (str_eq(name, known_props[i].name)) {
            return known_props[i].kind;
        }
    }
    return PROP_OTHER;
}

/* Record one property of the open node n. */
static void take_prop(FdtNode *n, const char *name, const uint8_t *val, uint32_t len, const char *compatible)
{
    switch (prop_kind(name)) {
    case PROP_ADDRESS_CELLS:
        n->address_cells = len == 4 ? be32(val) : 0;
        break;
    case PROP_SIZE_CELLS:
        n->size_cells = len == 4 ? be32(val) : 0;
        break;
    case PROP_DEVICE_TYPE:
        n->isa = list_has(val, len, "isa");
        break;
    case PROP_COMPATIBLE:
        n->match = list_has(val, len, compatible);
        break;
    case PROP_REG:
        n->reg = val;
        n->reg_len = len;
        break;
    case PROP_INTERRUPTS:
        n->irq = len >= 4 ? (int)be32(val) : -1;
        break;
    case PROP_OTHER:
        break;
    }
}

/* Decode node n's reg (up to two windows) with its parent p's cell counts. */
static bool decode(const FdtNode *n, const FdtNode *p, GuestDev *out)
{
    unsigned ac = p->address_cells, sc = p->size_cells, entry = 4 * (ac + sc);
    if (!n->reg || ac < 1 || ac > 2 || sc < 1 || sc > 2 || n->reg_len < entry || n->irq < 0) {
        return false;
    }
    *out = (GuestDev){ .found = true, .irq = (unsigned)n->irq };
    for (unsigned w = 0; w < 2 && (w + 1) * entry <= n->reg_len; w++) {
        const uint8_t *e = n->reg + w * entry;
        /* ISA: <space port length>, space 1 = I/O; otherwise <addr... size...>. */
        uint64_t base = p->isa || ac == 1 ? be32(e + 4 * (ac - 1)) : (uint64_t)be32(e) << 32 | be32(e + 4);
        uint64_t size = sc == 1 ? be32(e + 4 * ac) : (uint64_t)be32(e + 4 * ac) << 32 | be32(e + 4 * ac + 4);
        out->base[w] = base;
        out->size[w] = size;
        out->nwin = w + 1;
    }
    out->pio = p->isa && be32(n->reg) == 1;
    return true;
}

/* The first node compatible with `compatible`; out->found = false if none (or the blob is bad). */
void guest_fdt_find(const uint8_t *fdt, const char *compatible, GuestDev *out)
{
    *out = (GuestDev){ 0 };
    uint32_t total = be32(fdt + 4), off = be32(fdt + 8), strings = be32(fdt + 12), strings_len = be32(fdt + 32);
    if (be32(fdt) != FDT_MAGIC || total > FDT_MAX_SIZE || off >= total || strings > total ||
        strings_len > total - strings) {
        return;
    }
    FdtNode stack[FDT_MAX_DEPTH + 1] = { { .address_cells = 2, .size_cells = 1 } };   /* [0]: above the root */
    unsigned depth = 0;
    while (off + 4 <= total) {
        uint32_t token = be32(fdt + off);
        off += 4;
        if (token == FDT_BEGIN_NODE) {
            if (depth == FDT_MAX_DEPTH) {
                return;
            }
            while (off < total && fdt[off]) {             /* the node's name */
                off++;
            }
            off = (off + 4) & ~3u;                        /* past the NUL, aligned */
            stack[++depth] = (FdtNode){ .address_cells = 2, .size_cells = 1, .irq = -1 };
        } else if (token == FDT_END_NODE) {
            if (depth == 0) {
                return;
            }
            if (stack[depth].match && decode(&stack[depth], &stack[depth - 1], out)) {
                return;
            }
            depth--;
        } else if (token == FDT_PROP && depth > 0 && off + 8 <= total) {
            uint32_t len = be32(fdt + off), name = be32(fdt + off + 4);
            if (len > total - off - 8 || name >= strings_len ||
                !terminated(fdt + strings + name, strings_len - name)) {
                return;
            }
            take_prop(&stack[depth], (const char *)fdt + strings + name, fdt + off + 8, len, compatible);
            off = (off + 8 + len + 3) & ~3u;
        } else if (token != FDT_NOP) {
            return;                                       /* FDT_END or garbage */
        }
    }
}
