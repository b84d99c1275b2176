/* The readers-writer lock (fs_rwlock.h). */
#include <stdio.h>
#include "harness.h"
#include "fs_rwlock.h"

#define ME ((uintptr_t)1)

/* Whether waiters retry as the extension's do under a GIL (after
 * FS_RETRY, with fs_rwlock_try_read or _write), or try in the wait. */
static int test_retry_when_free = 0;

/* A waiter that dozed and was woken for nothing: counted by the helpers. */
static fs_atomic_u32 retries_failed;

static fs_result read_until(fs_rwlock *rw, int64_t deadline_ns)
{
    int r;
    int64_t waiting_since = 0;
    if (fs_rwlock_try_read(rw, ME + 100) == 1)
        return FS_OK;
    for (;;) {
        r = fs_rwlock_read_until(rw, &waiting_since, deadline_ns, test_spin_ns,
                                 test_retry_when_free);
        if (r == FS_RETRY) {
            if (fs_rwlock_try_read(rw, ME + 100) == 1)
                return FS_OK;
            test_add_u32(&retries_failed, 1);
        } else if (r != FS_INTERRUPTED) {
            return (fs_result)r;
        }
    }
}

static fs_result write_until(fs_rwlock *rw, uintptr_t me, int64_t deadline_ns)
{
    fs_result r;
    int64_t waiting_since = 0;
    if (fs_rwlock_try_write(rw, me) == 1)
        return FS_OK;
    for (;;) {
        r = fs_rwlock_write_until(rw, me, &waiting_since, deadline_ns, test_spin_ns,
                                  test_retry_when_free);
        if (r == FS_RETRY) {
            if (fs_rwlock_try_write(rw, me) == 1)
                return FS_OK;
            test_add_u32(&retries_failed, 1);
        } else if (r != FS_INTERRUPTED) {
            return r;
        }
    }
}

static void test_rwlock_basics(void)
{
    fs_rwlock rw, other;
    fs_rwlock_init(&rw);
    fs_rwlock_init(&other);
    EXPECT(rw.serial != other.serial);
    EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_NOT_HELD);
    EXPECT_EQ_INT(fs_rwlock_write_release(&rw), FS_RW_NOT_HELD);
    EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME), 1);
    EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME), 1);   /* re-entrant */
    EXPECT_EQ_INT(fs_rwlock_read_depth(&rw), 2);
    EXPECT_EQ_INT(fs_rwlock_read_depth(&other), 0);
    EXPECT_EQ_INT(fs_rwlock_readers(&rw), 1);        /* threads, not depth */
    EXPECT_EQ_INT(fs_rwlock_try_write(&rw, ME), FS_RW_UPGRADE);
    EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_OK);
    EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_OK);
    EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_NOT_HELD);
    EXPECT_EQ_INT(fs_rwlock_readers(&rw), 0);
    EXPECT_EQ_INT(fs_rwlock_try_write(&rw, ME), 1);
    EXPECT(fs_rwlock_is_written(&rw));
    EXPECT_EQ_INT(fs_rwlock_writer(&rw), ME);
    EXPECT_EQ_INT(fs_rwlock_try_write(&rw, ME), 0);
    EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME), FS_RW_WRITING);
    EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME + 1), 0);
    EXPECT_EQ_INT(fs_rwlock_downgrade(&rw, ME + 1), FS_RW_NOT_HELD);
    EXPECT_EQ_INT(fs_rwlock_downgrade(&rw, ME), FS_RW_OK);
    EXPECT(!fs_rwlock_is_written(&rw));
    EXPECT_EQ_INT(fs_rwlock_read_depth(&rw), 1);
    EXPECT_EQ_INT(fs_rwlock_readers(&rw), 1);
    EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_OK);
    EXPECT_EQ_INT(fs_load_u32(&rw.state), 0);
}

/* More locks read at once than the thread-local slots hold. */
static void test_rwlock_many_reads_per_thread(void)
{
    enum { LOCKS = 40 };
    fs_rwlock locks[LOCKS];
    int i;
    for (i = 0; i < LOCKS; i++) {
        fs_rwlock_init(&locks[i]);
        EXPECT_EQ_INT(fs_rwlock_try_read(&locks[i], ME), 1);
    }
    for (i = 0; i < LOCKS; i++)
        EXPECT_EQ_INT(fs_rwlock_read_depth(&locks[i]), 1);
    for (i = 0; i < LOCKS; i += 2)
        EXPECT_EQ_INT(fs_rwlock_read_release(&locks[i]), FS_RW_OK);
    for (i = 0; i < LOCKS; i++)
        EXPECT_EQ_INT(fs_rwlock_read_depth(&locks[i]), i % 2);
    for (i = 1; i < LOCKS; i += 2)
        EXPECT_EQ_INT(fs_rwlock_read_release(&locks[i]), FS_RW_OK);
    for (i = 0; i < LOCKS; i++)
        EXPECT_EQ_INT(fs_load_u32(&locks[i].state), 0);
}

/* A thread that reads, writes or reads twice, in a thread of its own. */
typedef struct {
    fs_rwlock *rw;
    int write;
    int64_t timeout_ns;
    fs_atomic_u32 started, holding, release, done;
    fs_result result;
    test_thread thread;
} actor;

static void *actor_job(void *arg)
{
    actor *a = (actor *)arg;
    int64_t deadline = a->timeout_ns < 0 ? FS_NO_DEADLINE : fs_deadline_after(a->timeout_ns);
    fs_store_u32(&a->started, 1);
    a->result = a->write ? write_until(a->rw, (uintptr_t)a, deadline) : read_until(a->rw, deadline);
    if (a->result == FS_OK) {
        fs_store_u32(&a->holding, 1);
        test_wait_for_u32(&a->release, 1, 10000);
        if (a->write)
            EXPECT_EQ_INT(fs_rwlock_write_release(a->rw), FS_RW_OK);
        else
            EXPECT_EQ_INT(fs_rwlock_read_release(a->rw), FS_RW_OK);
    }
    fs_store_u32(&a->done, 1);
    return NULL;
}

static void actor_start(actor *a, fs_rwlock *rw, int write, int64_t timeout_ns)
{
    a->rw = rw;
    a->write = write;
    a->timeout_ns = timeout_ns;
    fs_store_u32(&a->started, 0);
    fs_store_u32(&a->holding, 0);
    fs_store_u32(&a->release, 0);
    fs_store_u32(&a->done, 0);
    test_thread_start(&a->thread, actor_job, a);
    test_wait_for_u32(&a->started, 1, 5000);
}

static void actor_finish(actor *a)
{
    fs_store_u32(&a->release, 1);
    test_thread_join(&a->thread);
}

/* Waits until n writers are queued, or n readers sleep. */
static int queued(fs_rwlock *rw, int writers, uint32_t n)
{
    int i;
    for (i = 0; i < 5000; i++) {
        if (writers ? fs_rwlock_count_writers_waiting(rw) == n
                    : fs_rwlock_count_readers_waiting(rw) == n)
            return 1;
        test_sleep_ms(1);
    }
    return 0;
}

/* A waiting writer keeps new readers out, but not a thread that reads
 * already; when the readers leave, the writer goes in. */
static void test_rwlock_writer_waits_readers_reenter(void)
{
    fs_rwlock rw;
    actor w, r;
    fs_rwlock_init(&rw);
    EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME), 1);
    actor_start(&w, &rw, 1, MS(10000));
    EXPECT(queued(&rw, 1, 1));
    EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME + 1), 1);   /* this thread again */
    actor_start(&r, &rw, 0, MS(10000));
    EXPECT(queued(&rw, 0, 1));
    EXPECT(!fs_load_u32(&r.holding));
    EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_OK);
    EXPECT(!fs_load_u32(&w.holding));
    EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_OK);
    EXPECT(test_wait_for_u32(&w.holding, 1, 5000));
    EXPECT(!fs_load_u32(&r.holding));
    actor_finish(&w);
    EXPECT(test_wait_for_u32(&r.holding, 1, 5000));
    actor_finish(&r);
    EXPECT_EQ_INT(w.result, FS_OK);
    EXPECT_EQ_INT(r.result, FS_OK);
    EXPECT_EQ_INT(fs_load_u32(&rw.state), 0);
}

/* Phase-fair: readers that waited through a write go in before the next
 * writer, and together. */
static void test_rwlock_phases_alternate(void)
{
    fs_rwlock rw;
    actor r1, r2, w2;
    fs_rwlock_init(&rw);
    EXPECT_EQ_INT(fs_rwlock_try_write(&rw, ME), 1);
    actor_start(&r1, &rw, 0, MS(10000));
    EXPECT(queued(&rw, 0, 1));
    actor_start(&w2, &rw, 1, MS(10000));
    EXPECT(queued(&rw, 1, 1));
    actor_start(&r2, &rw, 0, MS(10000));
    EXPECT(queued(&rw, 0, 2));
    EXPECT_EQ_INT(fs_rwlock_write_release(&rw), FS_RW_OK);
    EXPECT(test_wait_for_u32(&r1.holding, 1, 5000));
    EXPECT(test_wait_for_u32(&r2.holding, 1, 5000));
    EXPECT(!fs_load_u32(&w2.holding));
    EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME), 0);   /* a new reader waits for w2 */
    actor_finish(&r1);
    EXPECT(!fs_load_u32(&w2.holding));
    actor_finish(&r2);
    EXPECT(test_wait_for_u32(&w2.holding, 1, 5000));
    actor_finish(&w2);
    EXPECT_EQ_INT(fs_load_u32(&rw.state), 0);
}

/* A writer that gives up lets in the readers it kept out; timeouts are not
 * early. */
static void test_rwlock_writer_timeout_admits_readers(void)
{
    fs_rwlock rw;
    actor w, r;
    int64_t start;
    fs_rwlock_init(&rw);
    EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME), 1);
    start = fs_monotonic_ns();
    actor_start(&w, &rw, 1, MS(100));
    EXPECT(queued(&rw, 1, 1));
    actor_start(&r, &rw, 0, MS(10000));
    EXPECT(test_wait_for_u32(&r.holding, 1, 5000));   /* after w gives up */
    test_thread_join(&w.thread);
    EXPECT(fs_monotonic_ns() - start >= MS(100));
    EXPECT_EQ_INT(w.result, FS_TIMED_OUT);
    actor_finish(&r);
    EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_OK);
    EXPECT_EQ_INT(fs_load_u32(&rw.state), 0);
}

static void test_rwlock_reader_timeout_not_early(void)
{
    fs_rwlock rw;
    int64_t start;
    fs_rwlock_init(&rw);
    EXPECT_EQ_INT(fs_rwlock_try_write(&rw, ME), 1);
    start = fs_monotonic_ns();
    EXPECT_EQ_INT(read_until(&rw, fs_deadline_after(MS(50))), FS_TIMED_OUT);
    EXPECT(fs_monotonic_ns() - start >= MS(50));
    EXPECT_EQ_INT(fs_rwlock_count_readers_waiting(&rw), 0);
    EXPECT_EQ_INT(fs_rwlock_read_depth(&rw), 0);
    EXPECT_EQ_INT(fs_rwlock_write_release(&rw), FS_RW_OK);
    EXPECT_EQ_INT(fs_load_u32(&rw.state), 0);
}

/* Many threads, reads and writes, some with short timeouts: a writer is
 * always alone, readers overlap, nothing is lost. */
#define MIX_THREADS 6
#define MIX_ROUNDS 4000

typedef struct {
    fs_rwlock *rw;
    fs_atomic_u32 *readers, *writers, *ready, *overlap;
    int index, failures;
    long writes;
} mix_job;

static void *mix_worker(void *arg)
{
    mix_job *job = (mix_job *)arg;
    int i, spin;
    uintptr_t me = (uintptr_t)job + 1;
    test_start_together(job->ready, MIX_THREADS);
    for (i = 0; i < MIX_ROUNDS; i++) {
        int write = (i + job->index) % 5 == 0;
        int64_t deadline = (i % 3 == 0) ? fs_deadline_after(5000 * (i % 7)) : FS_NO_DEADLINE;
        fs_result r = write ? write_until(job->rw, me, deadline) : read_until(job->rw, deadline);
        if (r == FS_TIMED_OUT)
            continue;
        if (r != FS_OK) {
            job->failures++;
            break;
        }
        if (write) {
            if (test_add_u32(job->writers, 1) != 1 || fs_load_u32(job->readers) != 0)
                job->failures++;
            job->writes++;
            for (spin = 0; spin < 50; spin++) {}
            test_add_u32(job->writers, (uint32_t)-1);
            if (fs_rwlock_write_release(job->rw) != FS_RW_OK)
                job->failures++;
        } else {
            if (test_add_u32(job->readers, 1) > 1)
                test_add_u32(job->overlap, 1);
            if (fs_load_u32(job->writers) != 0)
                job->failures++;
            /* Now and then a re-entrant read. */
            if (i % 4 == 0 && fs_rwlock_try_read(job->rw, me) != 1)
                job->failures++;
            for (spin = 0; spin < 200; spin++) {}
            if (i % 4 == 0 && fs_rwlock_read_release(job->rw) != FS_RW_OK)
                job->failures++;
            test_add_u32(job->readers, (uint32_t)-1);
            if (fs_rwlock_read_release(job->rw) != FS_RW_OK)
                job->failures++;
        }
    }
    return NULL;
}

static void test_rwlock_mixed(void)
{
    fs_rwlock rw;
    fs_atomic_u32 readers, writers, ready, overlap;
    mix_job jobs[MIX_THREADS];
    test_thread threads[MIX_THREADS];
    long writes = 0;
    int i;
    fs_rwlock_init(&rw);
    fs_store_u32(&readers, 0);
    fs_store_u32(&writers, 0);
    fs_store_u32(&ready, 0);
    fs_store_u32(&overlap, 0);
    for (i = 0; i < MIX_THREADS; i++) {
        jobs[i].rw = &rw;
        jobs[i].readers = &readers;
        jobs[i].writers = &writers;
        jobs[i].ready = &ready;
        jobs[i].overlap = &overlap;
        jobs[i].index = i;
        jobs[i].failures = 0;
        jobs[i].writes = 0;
        test_thread_start(&threads[i], mix_worker, &jobs[i]);
    }
    for (i = 0; i < MIX_THREADS; i++) {
        test_thread_join(&threads[i]);
        EXPECT_EQ_INT(jobs[i].failures, 0);
        writes += jobs[i].writes;
    }
    EXPECT(writes > 0);
    EXPECT_EQ_INT(fs_load_u32(&rw.state), 0);
    EXPECT_EQ_INT(fs_rwlock_count_writers_waiting(&rw), 0);
    EXPECT_EQ_INT(fs_rwlock_count_readers_waiting(&rw), 0);
    test_note("%ld writes, %u reads that overlapped another", writes,
              (unsigned)fs_load_u32(&overlap));
}

static void test_rwlock_mixed_spinning(void)
{
    test_spin_ns = MS(1) / 20;
    test_rwlock_mixed();
    test_spin_ns = 0;
}

static void test_rwlock_mixed_retrying(void)
{
    test_retry_when_free = 1;
    test_rwlock_mixed();
    test_retry_when_free = 0;
}

/* Waits until some thread dozes on the lock. */
static int dozing(fs_rwlock *rw)
{
    int i;
    for (i = 0; i < 5000; i++) {
        if (fs_load_u32(&rw->state) & FS_RW_DOZERS)
            return 1;
        test_sleep_ms(1);
    }
    return 0;
}

/* A writer that dozes for as long as the test needs: its wait began far in
 * the future, so it never queues. */
typedef struct {
    fs_rwlock *rw;
    fs_result result;
    fs_atomic_u32 holding, release;
} dozing_writer;

static void *dozing_writer_job(void *arg)
{
    dozing_writer *d = (dozing_writer *)arg;
    int64_t waiting_since = fs_monotonic_ns() + MS(600000);
    uintptr_t me = (uintptr_t)d;
    do {
        d->result = fs_rwlock_write_until(d->rw, me, &waiting_since, fs_deadline_after(MS(10000)),
                                          test_spin_ns, test_retry_when_free);
        if (d->result == FS_RETRY && fs_rwlock_try_write(d->rw, me) == 1)
            d->result = FS_OK;
    } while (d->result == FS_RETRY || d->result == FS_INTERRUPTED);
    if (d->result == FS_OK) {
        fs_store_u32(&d->holding, 1);
        test_wait_for_u32(&d->release, 1, 10000);
        EXPECT_EQ_INT(fs_rwlock_write_release(d->rw), FS_RW_OK);
    }
    return NULL;
}

/* A waiter dozes before it queues: it keeps nobody out meanwhile, and the
 * release that frees the lock wakes it. */
static void test_rwlock_short_waits_doze(void)
{
    int retrying;
    for (retrying = 0; retrying <= 1; retrying++) {
        fs_rwlock rw;
        dozing_writer d;
        test_thread writer;
        actor r1, r2;
        test_retry_when_free = retrying;
        fs_rwlock_init(&rw);
        d.rw = &rw;
        fs_store_u32(&d.holding, 0);
        fs_store_u32(&d.release, 0);
        /* A writer waits for a reader, dozing... */
        EXPECT_EQ_INT(fs_rwlock_try_read(&rw, ME), 1);
        test_thread_start(&writer, dozing_writer_job, &d);
        EXPECT(dozing(&rw));
        /* ...so a new reader goes in, and leaves. */
        actor_start(&r1, &rw, 0, MS(10000));
        EXPECT(test_wait_for_u32(&r1.holding, 1, 5000));
        actor_finish(&r1);
        EXPECT_EQ_INT(r1.result, FS_OK);
        EXPECT_EQ_INT(fs_rwlock_count_writers_waiting(&rw), 0);
        EXPECT(!fs_load_u32(&d.holding));
        /* The last read wakes the writer. */
        EXPECT_EQ_INT(fs_rwlock_read_release(&rw), FS_RW_OK);
        EXPECT(test_wait_for_u32(&d.holding, 1, 5000));
        /* A reader that waits for the writer is woken by its release (it
         * queues meanwhile: that is the policy's part). */
        actor_start(&r2, &rw, 0, MS(10000));
        EXPECT(dozing(&rw));
        fs_store_u32(&d.release, 1);
        test_thread_join(&writer);
        EXPECT_EQ_INT(d.result, FS_OK);
        EXPECT(test_wait_for_u32(&r2.holding, 1, 5000));
        actor_finish(&r2);
        EXPECT_EQ_INT(r2.result, FS_OK);
        EXPECT_EQ_INT(fs_load_u32(&rw.state), 0);
    }
    test_retry_when_free = 0;
}

void run_rwlock_tests(void)
{
    RUN(test_rwlock_basics, 5);
    RUN(test_rwlock_many_reads_per_thread, 5);
    RUN(test_rwlock_writer_waits_readers_reenter, 20);
    RUN(test_rwlock_phases_alternate, 20);
    RUN(test_rwlock_writer_timeout_admits_readers, 20);
    RUN(test_rwlock_reader_timeout_not_early, 10);
    RUN(test_rwlock_mixed, 30);
    RUN(test_rwlock_mixed_spinning, 30);
    RUN(test_rwlock_mixed_retrying, 30);
    RUN(test_rwlock_short_waits_doze, 20);
}
