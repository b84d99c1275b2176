/* Where the running interpreter records that a signal awaits its Python
 * handlers: the word the main thread watches while it spins and sleeps
 * (_waiting.pxi; csrc/DESIGN.md, "Watching for signals").
 *
 * CPython's C-level handler records the signal and returns; the Python
 * handlers run later, in the main thread of the main interpreter, holding
 * the GIL.  Besides the per-signal flags, it sets one word that the main
 * thread clears before it runs them:
 *   3.10, 3.11  _PyRuntime.ceval.signals_pending, cleared by the eval loop
 *               and by Py_MakePendingCalls();
 *   3.12 on     _PyRuntime.signals.is_tripped, cleared by PyErr_CheckSignals(),
 *               which Py_MakePendingCalls() calls.
 * Both are internal.  So this file, unlike the rest of the module, includes
 * the interpreter's internal headers: the word's place comes from the very
 * headers of the version it is compiled for, and is checked against the
 * running interpreter when the module loads (fastsync_signal_word_init).
 * Only Linux's futex layer can watch a word while it sleeps; elsewhere, and
 * on interpreters this file doesn't know, there is no word. */
#define PY_SSIZE_T_CLEAN
#if defined(__linux__) && !defined(PYPY_VERSION)
#  define Py_BUILD_CORE_MODULE 1
#endif
#include "Python.h"
#include <string.h>

#if defined(__linux__) && !defined(PYPY_VERSION) \
        && PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x03100000
#  include <signal.h>
#  include "internal/pycore_runtime.h"
#  define FASTSYNC_HAS_SIGNAL_WORD 1
#endif

static int *signal_word;

#if defined(FASTSYNC_HAS_SIGNAL_WORD)

/* Reads a pointer-sized field whatever its declared type (a plain pointer,
 * or one of the versions' atomic wrappers around one). */
static void *read_pointer(const volatile void *field)
{
    void *value;
    memcpy(&value, (const void *)field, sizeof value);
    return value;
}

/* The address of the word, if the fields around it in the running
 * interpreter hold what they must: a neighbour whose value is known. */
static int *find_signal_word(PyObject *sigint_handler, unsigned long main_ident)
{
    int *word;
#  if PY_VERSION_HEX >= 0x030C0000
    /* The handlers' table sits in the same struct as the word: SIGINT's
     * entry holds what signal.getsignal(SIGINT) returns (NULL for None). */
    void *expected = sigint_handler == Py_None ? NULL : (void *)sigint_handler;
    if (read_pointer(&_PyRuntime.signals.handlers[SIGINT].func) != expected)
        return NULL;
    word = (int *)&_PyRuntime.signals.is_tripped;
#  else
    /* The runtime's main thread and main interpreter come before ceval. */
    (void)sigint_handler;
    if (_PyRuntime.main_thread != main_ident
            || _PyRuntime.interpreters.main != PyInterpreterState_Main())
        return NULL;
    word = (int *)&_PyRuntime.ceval.signals_pending;
#  endif
    /* A flag: 0, or 1 while handlers are due. */
    if (*(volatile int *)word != 0 && *(volatile int *)word != 1)
        return NULL;
    return word;
}

#endif

/* Finds the word: call once, with the GIL, before any wait watches it.
 * sigint_handler: signal.getsignal(SIGINT); main_ident: the main thread's
 * id.  Returns 1 if the word was found, 0 if not. */
int fastsync_signal_word_init(PyObject *sigint_handler, unsigned long main_ident)
{
#if defined(FASTSYNC_HAS_SIGNAL_WORD)
    signal_word = find_signal_word(sigint_handler, main_ident);
#else
    (void)sigint_handler;
    (void)main_ident;
#endif
    return signal_word != NULL;
}

/* The word, for a wait in the main thread (with the GIL): NULL unless it
 * was found and the thread runs the main interpreter, the only one whose
 * main thread runs signal handlers (another would never clear it). */
const void *fastsync_signal_word_here(void)
{
    if (signal_word == NULL || PyInterpreterState_Get() != PyInterpreterState_Main())
        return NULL;
    return signal_word;
}
