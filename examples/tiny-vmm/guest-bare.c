/*
 * guest-bare.c - guest-cpu.h as x86 instructions, and the entry point of
 * the freestanding guest program (guest.bin) that `tiny-vmm --kvm` runs.
 *
 * Boot protocol (tiny-kvm.c sets it up): 32-bit protected mode, flat 4 GiB
 * code and data segments, no paging, interrupts off; guest.bin is loaded at
 * GUEST_LOAD_GPA (guest.ld) and entered at its first byte (_start) with
 * EBX = the FDT's address.  Guest-physical addresses are the guest's
 * pointers.  RAM is zero when the VMM starts the guest, so .bss needs no
 * clearing.  The run ends with the number of failed steps written to
 * GUEST_EXIT_PORT.
 *
 * HLT: there is no interrupt controller; the VMM returns from a HLT exit
 * once a device interrupt line is high (the guest then looks at its device).
 */
#include "guest.h"

struct GuestCpu {
    int unused;
};

#define GUEST_STACK_SIZE 16384
#define STRINGIFY(x) #x
#define STR(x) STRINGIFY(x)
static uint8_t stack[GUEST_STACK_SIZE] __attribute__((aligned(16), used));

void guest_start(uint32_t fdt_gpa) __attribute__((noreturn, used));
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

/* _start: a stack, then guest_start(EBX). */
__asm__(".section .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "    lea stack + " STR(GUEST_STACK_SIZE) ", %esp\n"
        "    push %ebx\n"
        "    call guest_start\n"
        "1:  hlt\n"
        "    jmp 1b\n"
        ".previous\n");

/* IN of size 1, 2 or 4. */
uint32_t gcpu_in(GuestCpu *c, uint16_t port, unsigned size)
{
    uint32_t v = 0;
    if (size == 1) {
        uint8_t b;
        __asm__ volatile("inb %1, %0" : "=a"(b) : "Nd"(port) : "memory");
        v = b;
    } else if (size == 2) {
        uint16_t w;
        __asm__ volatile("inw %1, %0" : "=a"(w) : "Nd"(port) : "memory");
        v = w;
    } else {
        __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
    }
    return v;
}

/* OUT of size 1, 2 or 4. */
void gcpu_out(GuestCpu *c, uint16_t port, uint32_t value, unsigned size)
{
    if (size == 1) {
        __asm__ volatile("outb %0, %1" : : "a"((uint8_t)value), "Nd"(port) : "memory");
    } else if (size == 2) {
        __asm__ volatile("outw %0, %1" : : "a"((uint16_t)value), "Nd"(port) : "memory");
    } else {
        __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
    }
}

/* A load of size 1, 2 or 4 from an MMIO address (a KVM MMIO exit). */
uint32_t gcpu_mmio_read(GuestCpu *c, uint64_t gpa, unsigned size)
{
    uintptr_t a = (uintptr_t)gpa;
    return size == 1 ? *(volatile uint8_t *)a : size == 2 ? *(volatile uint16_t *)a : *(volatile uint32_t *)a;
}

/* A store of size 1, 2 or 4 to an MMIO address. */
void gcpu_mmio_write(GuestCpu *c, uint64_t gpa, uint32_t value, unsigned size)
{
    uintptr_t a = (uintptr_t)gpa;
    if (size == 1) {
        *(volatile uint8_t *)a = (uint8_t)value;
    } else if (size == 2) {
        *(volatile uint16_t *)a = (uint16_t)value;
    } else {
        *(volatile uint32_t *)a = value;
    }
}

/* Guest-physical is virtual: no paging. */
uint8_t *gcpu_ram(GuestCpu *c, uint64_t gpa)
{
    return (uint8_t *)(uintptr_t)gpa;
}

/* HLT: the VMM resumes the guest once a device line is high (and fails the run if none comes). */
bool gcpu_wait_irq(GuestCpu *c, unsigned irq)
{
    __asm__ volatile("hlt" : : : "memory");
    return true;
}

/* PAUSE: a hint only; every register read in the loop exits to the VMM anyway. */
void gcpu_pause(GuestCpu *c)
{
    __asm__ volatile("pause" : : : "memory");
}

/* The compiler may call these for struct copies and __builtin_memset. */
void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--) {
        *d++ = (uint8_t)c;
    }
    return dst;
}

/* Byte-wise copy. */
void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

/* Run the program, report the failures on the exit port, and stop. */
void guest_start(uint32_t fdt_gpa)
{
    GuestCpu cpu = { 0 };
    Guest g = { .cpu = &cpu };
    unsigned failed = guest_main(&g, fdt_gpa);
    gcpu_out(&cpu, GUEST_EXIT_PORT, failed, 1);
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}
