/* native_host.c: runs a Cairn job as a native program, to compare its output and speed with the
 * WebAssembly build's. It implements the three host functions of cairn_job.h over the whole of
 * standard input (the job's input) and standard output (the job's output):
 *
 *     zig cc -O2 examples/jobs/digits/digits.c examples/jobs/sdk/native_host.c -o /tmp/digits-native
 *     /tmp/digits-native < examples/jobs/digits/heldout.bin
 *
 * (scripts/build-jobs --native DIR builds every job so.) With `--repeat K` it runs the job K
 * times over the same input, writes the output once, and prints the time the K runs took to
 * standard error as "K runs in N ns", so that a benchmark can divide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What cairn_job.h defines, and the host functions it declares. */
void run(void);
long long cairn_input_len(void);
int cairn_read_input(long long offset, void *ptr, int len);
void cairn_write_output(const void *ptr, int len);

static unsigned char *input;
static size_t input_len;
/* Each run's output is collected here, as the runner collects it, and the last run's printed. */
static unsigned char *output;
static size_t output_len, output_cap;

long long cairn_input_len(void) {
    return (long long)input_len;
}

int cairn_read_input(long long offset, void *ptr, int len) {
    if (offset < 0 || (unsigned long long)offset >= input_len || len <= 0) return 0;
    size_t n = input_len - (size_t)offset;
    if (n > (size_t)len) n = (size_t)len;
    memcpy(ptr, input + offset, n);
    return (int)n;
}

void cairn_write_output(const void *ptr, int len) {
    if (len <= 0) return;
    if (output_len + (size_t)len > output_cap) {
        output_cap = (output_len + (size_t)len) * 2;
        output = realloc(output, output_cap);
        if (!output) {
            fputs("out of memory for the output\n", stderr);
            exit(1);
        }
    }
    memcpy(output + output_len, ptr, (size_t)len);
    output_len += (size_t)len;
}

static void read_stdin(void) {
    size_t cap = 1 << 16;
    input = malloc(cap);
    for (;;) {
        if (!input) {
            fputs("out of memory for the input\n", stderr);
            exit(1);
        }
        input_len += fread(input + input_len, 1, cap - input_len, stdin);
        if (input_len < cap) break;
        cap *= 2;
        input = realloc(input, cap);
    }
    if (ferror(stdin)) {
        perror("reading standard input");
        exit(1);
    }
}

static int usage(const char *program) {
    fprintf(stderr, "usage: %s [--repeat K] < input > output   (K a whole number, at least 1)\n",
        program);
    return 2;
}

int main(int argc, char **argv) {
    long repeat = 1;
    int timed = argc == 3 && strcmp(argv[1], "--repeat") == 0;
    if (timed) {
        char *rest;
        repeat = strtol(argv[2], &rest, 10);
        if (*rest || repeat < 1) return usage(argv[0]);
    } else if (argc != 1) {
        return usage(argv[0]);
    }
    read_stdin();
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < repeat; i++) {
        output_len = 0;
        run();
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (fwrite(output, 1, output_len, stdout) != output_len || fflush(stdout) != 0) {
        perror("writing standard output");
        return 1;
    }
    if (timed) {
        long long ns = (long long)(end.tv_sec - start.tv_sec) * 1000000000LL
            + (end.tv_nsec - start.tv_nsec);
        fprintf(stderr, "%ld runs in %lld ns\n", repeat, ns);
    }
    return 0;
}
