// Counts heap allocations in a running process (LD_PRELOAD). On SIGUSR2 it writes
// "allocs N frees M\n" to the file named by ALLOC_COUNT_FILE (or stderr), so a driver can read
// the counters before and after a batch of requests and divide. Used by bench/allocs.py.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

static atomic_ulong allocs, frees;

void* malloc(size_t n) {
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    *out = __libc_memalign(align, n);
    return *out ? 0 : 12;
}
void* aligned_alloc(size_t align, size_t n) {
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}
void free(void* p) {
    if (p) atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
    __libc_free(p);
}

static void report(int sig) {
    (void)sig;
    char line[96];
    int n = snprintf(line, sizeof line, "allocs %lu frees %lu\n", atomic_load(&allocs), atomic_load(&frees));
    const char* path = getenv("ALLOC_COUNT_FILE");
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND, 0644) : 2;
    if (fd >= 0) {
        (void)!write(fd, line, (size_t)n);
        if (fd != 2) close(fd);
    }
}

__attribute__((constructor)) static void install(void) { signal(SIGUSR2, report); }
