/* cairn_job.h: a small SDK for Cairn compute jobs written in C.
 *
 * What a job is. A Cairn compute job is a WebAssembly module that the runner (node/wasm)
 * executes deterministically under fuel metering: it reads one input (bytes), writes one output
 * (bytes), and nothing else exists for it, no clock, no files, no randomness. The runner refuses
 * a module with any floating-point instruction, a start function, or an import other than its
 * three host functions, so that every machine computes the same output for the same input and
 * a verifier can check a provider by running the job again.
 *
 * How data flows. This header defines the module's exported `run`, which
 *   1. asks the host for the input's length and copies the whole input into linear memory
 *      (one copy, on the heap below),
 *   2. calls the job's own function, cairn_job(input, len),
 *   3. flushes what the job wrote with cairn_write and its helpers, which buffer the output
 *      so that the job pays for few host calls (each costs fuel).
 * So a job is one plain C function. An example job that prints its input's length:
 *
 *     #include "../sdk/cairn_job.h"
 *
 *     void cairn_job(const unsigned char *input, unsigned long len) {
 *         (void)input;
 *         cairn_write_str("the input is ");
 *         cairn_write_uint(len);
 *         cairn_write_str(" bytes\n");
 *     }
 *
 * Rules. Include this header in exactly one .c file (it defines `run`, and memcpy and memset,
 * which the compiler may call); use integers only; build with scripts/build-jobs, which compiles
 * examples/jobs/NAME/NAME.c to examples/jobs/NAME.wasm for wasm32 with no C library.
 * cairn_alloc is a bump allocator: memory is never freed, and the job's whole run is one
 * allocation phase. A memory grown past the runner's limit traps in Cairn's runner, so
 * cairn_alloc returns NULL only where memory.grow itself fails (a 4 GiB memory).
 *
 * Native builds. Compiled for any target but WebAssembly (CAIRN_NATIVE), the three host
 * functions are plain C functions, which sdk/native_host.c implements over stdin and stdout
 * (scripts/build-jobs --native DIR), so that a job's output and speed can be compared with the
 * WebAssembly build's.
 */
#ifndef CAIRN_JOB_H
#define CAIRN_JOB_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__wasm__) && !defined(CAIRN_NATIVE)
#define CAIRN_NATIVE
#endif

#ifdef CAIRN_NATIVE
#define CAIRN_IMPORT(name)
#define CAIRN_EXPORT(name)
#else
#define CAIRN_IMPORT(name) __attribute__((import_module("cairn"), import_name(name)))
#define CAIRN_EXPORT(name) __attribute__((export_name(name)))
#endif

/* The host functions (node/wasm/src/lib.rs). */
CAIRN_IMPORT("input_len") long long cairn_input_len(void);
/* Copies up to len input bytes from offset to ptr; returns how many (0 at the end). */
CAIRN_IMPORT("read_input") int cairn_read_input(long long offset, void *ptr, int len);
/* Appends len bytes at ptr to the job's output. */
CAIRN_IMPORT("write_output") void cairn_write_output(const void *ptr, int len);

/* The job: called once with the whole input. */
void cairn_job(const unsigned char *input, unsigned long len);

#ifndef CAIRN_NATIVE
/* The compiler may call these for copies and zeroing (a C library would provide them). */
void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int byte, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)byte;
    return dst;
}
#endif

/* The heap: from the linker's __heap_base up, growing the memory as needed. Natively it is a
 * static arena as large as the runner's default memory limit (untouched pages cost nothing). */
#ifdef CAIRN_NATIVE
static unsigned char cairn_arena[64 << 20];
#define CAIRN_HEAP_BASE ((uintptr_t)cairn_arena)
#else
extern unsigned char __heap_base;
#define CAIRN_HEAP_BASE ((uintptr_t)&__heap_base)
#endif
static uintptr_t cairn_heap_next;

/* Whether the memory reaches address end, growing it if not. */
static inline int cairn_heap_reserve(uintptr_t end) {
#ifdef CAIRN_NATIVE
    return end <= (uintptr_t)cairn_arena + sizeof cairn_arena;
#else
    const unsigned long long page = 65536;
    unsigned long long size = (unsigned long long)__builtin_wasm_memory_size(0) * page;
    if (end <= size) return 1;
    return __builtin_wasm_memory_grow(0, (size_t)((end - size + page - 1) / page)) != (size_t)-1;
#endif
}

/* size bytes, 16-aligned, or NULL when the memory cannot hold them. */
static inline void *cairn_alloc(size_t size) {
    uintptr_t start = (cairn_heap_next + 15) & ~(uintptr_t)15;
    uintptr_t end = start + size;
    if (start < cairn_heap_next || end < start || !cairn_heap_reserve(end)) return NULL;
    cairn_heap_next = end;
    return (void *)start;
}

/* The output buffer: flushed when full and when the job returns. */
static unsigned char cairn_out[4096];
static size_t cairn_out_len;

static inline void cairn_flush(void) {
    if (cairn_out_len) cairn_write_output(cairn_out, (int)cairn_out_len);
    cairn_out_len = 0;
}

/* Appends len bytes to the output. (The runner's memory limit keeps len far below 2^31.) */
static inline void cairn_write(const void *data, size_t len) {
    if (len > sizeof cairn_out - cairn_out_len) {
        cairn_flush();
        if (len > sizeof cairn_out) {
            cairn_write_output(data, (int)len);
            return;
        }
    }
    __builtin_memcpy(cairn_out + cairn_out_len, data, len);
    cairn_out_len += len;
}

static inline void cairn_write_char(char c) {
    cairn_write(&c, 1);
}

static inline void cairn_write_str(const char *s) {
    size_t len = 0;
    while (s[len]) len++;
    cairn_write(s, len);
}

/* Decimal, written from the last digit backwards. */
static inline void cairn_write_uint(unsigned long long value) {
    char digits[20];
    size_t at = sizeof digits;
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    cairn_write(digits + at, sizeof digits - at);
}

static inline void cairn_write_int(long long value) {
    if (value < 0) {
        cairn_write_char('-');
        /* Negated as unsigned, so that the most negative value has a magnitude too. */
        cairn_write_uint(0ULL - (unsigned long long)value);
    } else {
        cairn_write_uint((unsigned long long)value);
    }
}

/* The module's entry point: the whole input to cairn_job, then the output out. The heap and
 * the output buffer start empty on every call (the native host may call it repeatedly). */
CAIRN_EXPORT("run") void run(void) {
    cairn_heap_next = CAIRN_HEAP_BASE;
    cairn_out_len = 0;
    long long total = cairn_input_len();
    unsigned char *input = NULL;
    if (total >= 0 && (unsigned long long)total <= SIZE_MAX) input = cairn_alloc((size_t)total);
    if (!input) {
        cairn_write_str("error: an input of ");
        cairn_write_int(total);
        cairn_write_str(" bytes does not fit in memory\n");
        cairn_flush();
        return;
    }
    size_t len = 0;
    while (len < (size_t)total) {
        /* read_input takes an i32 length: at most 1 GiB a call. */
        size_t want = (size_t)total - len;
        if (want > (size_t)1 << 30) want = (size_t)1 << 30;
        int got = cairn_read_input((long long)len, input + len, (int)want);
        if (got <= 0) break;
        len += (size_t)got;
    }
    cairn_job(input, len);
    cairn_flush();
}

#endif
