/* Atomic operations on the words that hold every primitive's state.
 *
 * GCC and Clang (including mingw-w64) use the __atomic builtins; MSVC uses the
 * Interlocked family.  Loads are acquire, stores are release and every
 * read-modify-write is sequentially consistent, which is what the lock and
 * event protocols in fastsync.h assume.  "relaxed" variants exist only for
 * fields that are informational (an RLock's owner and depth read by repr). */
#ifndef FASTSYNC_ATOMIC_H
#define FASTSYNC_ATOMIC_H

#include <stdint.h>

typedef struct { volatile uint32_t value; } fs_atomic_u32;
typedef struct { volatile uintptr_t value; } fs_atomic_uptr;
typedef struct { volatile uint64_t value; } fs_atomic_u64;

#if defined(__GNUC__) || defined(__clang__)

static inline uint32_t fs_load_u32(const fs_atomic_u32 *a)
{ return __atomic_load_n(&a->value, __ATOMIC_ACQUIRE); }
static inline void fs_store_u32(fs_atomic_u32 *a, uint32_t v)
{ __atomic_store_n(&a->value, v, __ATOMIC_RELEASE); }
static inline uint32_t fs_exchange_u32(fs_atomic_u32 *a, uint32_t v)
{ return __atomic_exchange_n(&a->value, v, __ATOMIC_SEQ_CST); }
/* On failure *expected receives the current value. */
static inline int fs_cas_u32(fs_atomic_u32 *a, uint32_t *expected, uint32_t desired)
{ return __atomic_compare_exchange_n(&a->value, expected, desired, 0,
                                     __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE); }
static inline uint32_t fs_fetch_add_u32(fs_atomic_u32 *a, uint32_t v)
{ return __atomic_fetch_add(&a->value, v, __ATOMIC_SEQ_CST); }
static inline uint32_t fs_fetch_and_u32(fs_atomic_u32 *a, uint32_t mask)
{ return __atomic_fetch_and(&a->value, mask, __ATOMIC_SEQ_CST); }
static inline uint64_t fs_load_u64(const fs_atomic_u64 *a)
{ return __atomic_load_n(&a->value, __ATOMIC_SEQ_CST); }
static inline void fs_store_u64(fs_atomic_u64 *a, uint64_t v)
{ __atomic_store_n(&a->value, v, __ATOMIC_SEQ_CST); }
static inline int fs_cas_u64(fs_atomic_u64 *a, uint64_t *expected, uint64_t desired)
{ return __atomic_compare_exchange_n(&a->value, expected, desired, 0,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); }
static inline uint64_t fs_fetch_add_u64(fs_atomic_u64 *a, uint64_t v)
{ return __atomic_fetch_add(&a->value, v, __ATOMIC_SEQ_CST); }
static inline uintptr_t fs_load_uptr_relaxed(const fs_atomic_uptr *a)
{ return __atomic_load_n(&a->value, __ATOMIC_RELAXED); }
static inline void fs_store_uptr_relaxed(fs_atomic_uptr *a, uintptr_t v)
{ __atomic_store_n(&a->value, v, __ATOMIC_RELAXED); }

#elif defined(_MSC_VER)

#include <intrin.h>
/* A plain volatile read is only an acquire load with /volatile:ms, which is
 * not the default on ARM64; an interlocked OR of zero is correct everywhere. */
static inline uint32_t fs_load_u32(const fs_atomic_u32 *a)
{ return (uint32_t)_InterlockedOr((volatile long *)&a->value, 0); }
static inline void fs_store_u32(fs_atomic_u32 *a, uint32_t v)
{ _InterlockedExchange((volatile long *)&a->value, (long)v); }
static inline uint32_t fs_exchange_u32(fs_atomic_u32 *a, uint32_t v)
{ return (uint32_t)_InterlockedExchange((volatile long *)&a->value, (long)v); }
static inline int fs_cas_u32(fs_atomic_u32 *a, uint32_t *expected, uint32_t desired)
{
    uint32_t seen = (uint32_t)_InterlockedCompareExchange(
        (volatile long *)&a->value, (long)desired, (long)*expected);
    if (seen == *expected) return 1;
    *expected = seen;
    return 0;
}
static inline uint32_t fs_fetch_add_u32(fs_atomic_u32 *a, uint32_t v)
{ return (uint32_t)_InterlockedExchangeAdd((volatile long *)&a->value, (long)v); }
static inline uint32_t fs_fetch_and_u32(fs_atomic_u32 *a, uint32_t mask)
{ return (uint32_t)_InterlockedAnd((volatile long *)&a->value, (long)mask); }
static inline uint64_t fs_load_u64(const fs_atomic_u64 *a)
{ return (uint64_t)_InterlockedOr64((volatile __int64 *)&a->value, 0); }
static inline void fs_store_u64(fs_atomic_u64 *a, uint64_t v)
{ _InterlockedExchange64((volatile __int64 *)&a->value, (__int64)v); }
static inline int fs_cas_u64(fs_atomic_u64 *a, uint64_t *expected, uint64_t desired)
{
    uint64_t seen = (uint64_t)_InterlockedCompareExchange64(
        (volatile __int64 *)&a->value, (__int64)desired, (__int64)*expected);
    if (seen == *expected) return 1;
    *expected = seen;
    return 0;
}
static inline uint64_t fs_fetch_add_u64(fs_atomic_u64 *a, uint64_t v)
{ return (uint64_t)_InterlockedExchangeAdd64((volatile __int64 *)&a->value, (__int64)v); }
static inline uintptr_t fs_load_uptr_relaxed(const fs_atomic_uptr *a)
{ return a->value; }
static inline void fs_store_uptr_relaxed(fs_atomic_uptr *a, uintptr_t v)
{ a->value = v; }

#else
#error "fastsync needs GCC/Clang __atomic builtins or MSVC Interlocked intrinsics"
#endif

/* The CPU's hint for a busy-wait loop: it lets the other hyperthread run and
 * saves power while a thread polls a word another core will change. */
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
static inline void fs_cpu_relax(void) { _mm_pause(); }
#elif defined(_MSC_VER) && defined(_M_ARM64)
static inline void fs_cpu_relax(void) { __yield(); }
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static inline void fs_cpu_relax(void) { __builtin_ia32_pause(); }
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__aarch64__) || defined(__arm__))
static inline void fs_cpu_relax(void) { __asm__ __volatile__("yield" ::: "memory"); }
#else
static inline void fs_cpu_relax(void) { }
#endif

#endif /* FASTSYNC_ATOMIC_H */
