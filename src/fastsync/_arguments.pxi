# ---------------------------------------------------------------------------
# __enter__ with acquire's arguments
#
# Up to 3.14 the __enter__ of _thread's locks is their acquire: it takes the
# same arguments and returns the same result (False for __enter__(False) on a
# held lock).  Where a probe at start-up finds that, Lock and RLock get an
# __enter__ that hands a call with arguments to the type's acquire and makes
# the argument-free call of `with` straight into the type's enter code
# (registered per slot, as for __exit__).

cdef extern from *:
    """
    typedef PyObject *(*fastsync_fastcall_kw)(PyObject *, PyObject *const *,
                                              Py_ssize_t, PyObject *);
    typedef PyObject *(*fastsync_enter_fn)(PyObject *self);
    static fastsync_enter_fn fastsync_enter_impl[2];
    static fastsync_fastcall_kw fastsync_enter_acquire[2];

    #define FASTSYNC_ENTER(n) \
        static PyObject *fastsync_enter_##n(PyObject *self, PyObject *const *args, \
                                            Py_ssize_t nargs, PyObject *kwnames) \
        { if (nargs == 0 && kwnames == NULL) return fastsync_enter_impl[n](self); \
          return fastsync_enter_acquire[n](self, args, nargs, kwnames); }
    FASTSYNC_ENTER(0)
    FASTSYNC_ENTER(1)
    static PyMethodDef fastsync_enter_defs[2] = {
        {"__enter__", (PyCFunction)(void (*)(void))fastsync_enter_0, METH_FASTCALL | METH_KEYWORDS, NULL},
        {"__enter__", (PyCFunction)(void (*)(void))fastsync_enter_1, METH_FASTCALL | METH_KEYWORDS, NULL},
    };

    static PyMethodDef *fastsync_method_def(PyTypeObject *tp, const char *name, int flags)
    {
        PyObject *descr = PyDict_GetItemString(tp->tp_dict, name);   /* borrowed */
        PyMethodDef *def;
        if (descr == NULL || !PyObject_TypeCheck(descr, &PyMethodDescr_Type)) {
            PyErr_Format(PyExc_SystemError, "%s.%s is not a C method", tp->tp_name, name);
            return NULL;
        }
        def = ((PyMethodDescrObject *)descr)->d_method;
        if (def->ml_flags != flags) {
            PyErr_Format(PyExc_SystemError, "%s.%s has unexpected flags", tp->tp_name, name);
            return NULL;
        }
        return def;
    }

    /* Puts a C acquire (def: its name, function and flags) in place of the
     * type's Cython acquire, and of `alias` too unless NULL; the Cython one,
     * which parses every call, is left in *parsed for the C one to hand the
     * calls it doesn't answer to.  The docstring stays the Cython one's.
     * Leaves the type alone where Cython did not make acquire
     * METH_FASTCALL | METH_KEYWORDS (PyPy). */
    static int fastsync_install_c_acquire(PyObject *type, PyMethodDef *c_def,
                                          fastsync_fastcall_kw *parsed, const char *alias)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        PyMethodDef *def = tp->tp_methods;
        PyObject *method;
        int failed;
        while (def != NULL && def->ml_name != NULL && strcmp(def->ml_name, "acquire") != 0)
            def++;
        if (def == NULL || def->ml_name == NULL
                || def->ml_flags != (METH_FASTCALL | METH_KEYWORDS))
            return 0;
        *parsed = (fastsync_fastcall_kw)(void (*)(void))def->ml_meth;
        c_def->ml_doc = def->ml_doc;
        method = PyDescr_NewMethod(tp, c_def);
        if (method == NULL)
            return -1;
        failed = PyDict_SetItemString(tp->tp_dict, "acquire", method) < 0
                 || (alias != NULL && PyDict_SetItemString(tp->tp_dict, alias, method) < 0);
        Py_DECREF(method);
        PyType_Modified(tp);
        return failed ? -1 : 0;
    }

    /* Call after the type's acquire is final.  impl NULL: the acquire itself
     * answers an argument-free call as __enter__ must (Lock's C acquire),
     * so it becomes __enter__ with no step in between. */
    static int fastsync_install_enter_taking_arguments(PyObject *type, int slot,
                                                       fastsync_enter_fn impl)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        PyMethodDef *plain = fastsync_method_def(tp, "__enter__", METH_NOARGS);
        PyMethodDef *acquire = fastsync_method_def(tp, "acquire", METH_FASTCALL | METH_KEYWORDS);
        PyObject *method;
        int failed;
        if (plain == NULL || acquire == NULL)
            return -1;
        fastsync_enter_impl[slot] = impl;
        fastsync_enter_acquire[slot] = (fastsync_fastcall_kw)(void (*)(void))acquire->ml_meth;
        if (impl == NULL)
            fastsync_enter_defs[slot].ml_meth = acquire->ml_meth;
        fastsync_enter_defs[slot].ml_doc = plain->ml_doc;   /* its signature, (self, /), as threading's */
        method = PyDescr_NewMethod(tp, &fastsync_enter_defs[slot]);
        if (method == NULL)
            return -1;
        failed = PyDict_SetItemString(tp->tp_dict, "__enter__", method);
        Py_DECREF(method);
        PyType_Modified(tp);
        return failed;
    }
    """
    ctypedef object (*fastsync_enter_fn)(object)
    int fastsync_install_enter_taking_arguments(object type, int slot, fastsync_enter_fn impl) except -1


def _enter_takes_acquire_arguments(stdlib_lock_type):
    lock = stdlib_lock_type()
    try:
        lock.__enter__(True, -1)
    except TypeError:
        return False
    lock.release()
    return True


# ---------------------------------------------------------------------------
# Arguments

# Whether _thread's locks refuse an __exit__ with other than three arguments
# (since 3.15), which ours then do too (see _exit.pxi).
def _lock_exit_takes_three():
    lock = _thread.allocate_lock()
    lock.acquire()
    try:
        lock.__exit__(None, None, None, None)
    except TypeError:
        return True
    return False


# acquire()'s "wait forever": -1 seconds, compared in nanoseconds as CPython does.
cdef int64_t INFINITE_NS = -1000000000
# The largest timeout threading accepts (TIMEOUT_MAX seconds), in nanoseconds.
cdef int64_t TIMEOUT_MAX_NS = min(int(_thread.TIMEOUT_MAX * 1e6) * 1000, 2**63 - 1)
# Before 3.12 `blocking` had to be an int; since then any object's truth counts.
cdef bint BLOCKING_IS_ANY_OBJECT = sys.version_info >= (3, 12)
_stdlib_allocate_lock = _thread.allocate_lock
_index = __import__("operator").index


# A timeout no acquire() takes, in nanoseconds: what seconds_to_ns returns,
# with no exception set, for a value that does not fit, and what the parsers
# that raise threading's error return with it set.  Valid results are -1
# (wait forever), 0 or more, so Cython's error checks can use it.
cdef enum:
    REFUSED_TIMEOUT_NS = -2


cdef int raise_if_threading_refuses(object blocking, object timeout) except -1:
    """Raise what threading raises for acquire(blocking, timeout), if it
    refuses them; returns 0 if it accepts them after all (a timeout that has
    only __float__, which 3.15 takes)."""
    probe = _stdlib_allocate_lock()
    if probe.acquire(blocking, timeout):   # never blocks: the lock is new
        probe.release()
    return 0


cdef int64_t seconds_to_ns(object timeout) except? REFUSED_TIMEOUT_NS:
    """timeout in seconds -> nanoseconds, rounded away from zero like CPython.

    Returns REFUSED_TIMEOUT_NS (with no exception set) when the value does
    not fit."""
    cdef double seconds, ns
    cdef long long whole
    cdef int overflow
    if PyFloat_Check(timeout):
        seconds = PyFloat_AS_DOUBLE(timeout)
        if isnan(seconds):
            return REFUSED_TIMEOUT_NS
        ns = seconds * 1e9
        ns = ceil(ns) if ns >= 0 else floor(ns)
        if not (-9.223372036854775808e18 <= ns < 9.223372036854775808e18):
            return REFUSED_TIMEOUT_NS
        return <int64_t>ns
    if not PyLong_Check(timeout):
        try:
            timeout = _index(timeout)
        except TypeError:
            raise_if_threading_refuses(True, timeout)
            return seconds_to_ns(float(timeout))   # accepted through __float__ (3.15)
    whole = PyLong_AsLongLongAndOverflow(timeout, &overflow)
    if overflow or not (-9223372036 <= whole <= 9223372036):
        return REFUSED_TIMEOUT_NS
    return whole * 1000000000


cdef bint blocking_flag(object blocking) except -1:
    cdef long long value
    cdef int overflow
    if blocking is True:
        return True
    if blocking is False:
        return False
    if BLOCKING_IS_ANY_OBJECT:
        return bool(blocking)
    try:
        value = PyLong_AsLongLongAndOverflow(_index(blocking), &overflow)
    except TypeError:
        raise_if_threading_refuses(blocking, -1)
        return int(blocking) != 0    # 3.9 accepted it through __int__
    if overflow or not (-2147483648 <= value <= 2147483647):
        raise_if_threading_refuses(blocking, -1)
    return value != 0


cdef int64_t acquire_timeout_ns(object blocking, object timeout) except REFUSED_TIMEOUT_NS:
    """acquire()'s arguments -> -1 (wait forever), 0 (don't wait) or a timeout in ns."""
    cdef bint block = blocking_flag(blocking)
    cdef int64_t ns = seconds_to_ns(timeout)
    if ns == REFUSED_TIMEOUT_NS or (not block and ns != INFINITE_NS) or (ns < 0 and ns != INFINITE_NS) \
            or ns > TIMEOUT_MAX_NS:
        raise_if_threading_refuses(blocking, timeout)
        raise AssertionError(f"fastsync rejected acquire({blocking!r}, {timeout!r}) "
                             "but threading accepts it")
    if not block:
        return 0
    return -1 if ns == INFINITE_NS else ns


# CPython's cached small ints: an identity test is the cheapest look at a value.
cdef object MINUS_ONE = -1
cdef object ZERO = 0
cdef object ONE = 1


cdef inline bint is_wait_forever(object timeout) except -1:
    """True for the default timeout, -1 (int or float), without a full parse."""
    if timeout is MINUS_ONE:
        return True
    return (type(timeout) is int or type(timeout) is float) and timeout == -1


cdef inline int64_t timeout_for(object blocking, object timeout) except REFUSED_TIMEOUT_NS:
    """acquire_timeout_ns with the two common calls, acquire() and
    acquire(False), answered without a full parse."""
    if is_wait_forever(timeout):
        if blocking is True:
            return -1
        if blocking is False:
            return 0
    return acquire_timeout_ns(blocking, timeout)


# How threading's Condition.wait tells a timeout to wait for from one that
# only asks for a try: `timeout > 0` up to 3.13, `not timeout <= 0` since,
# which lets NaN through to the lock's refusal (see fastsync._common).
cdef bint WAIT_TESTS_LE_C = WAIT_TESTS_LE


cdef inline bint is_positive(object timeout) except -1:
    """Whether threading's Condition.wait would wait for `timeout`, without
    the generic comparison for int and float.  The two cheapest answers stay
    inline at the call site (wait(0) is timed against an empty call); the
    rest is a call.  NaN counts as positive where threading then refuses it."""
    if timeout is ZERO:
        return False
    if type(timeout) is float:
        if PyFloat_AS_DOUBLE(timeout) > 0:
            return True
        return WAIT_TESTS_LE_C and isnan(PyFloat_AS_DOUBLE(timeout))
    return is_positive_other(timeout)


cdef bint is_positive_other(object timeout) except -1:
    cdef int overflow
    if type(timeout) is int:
        return PyLong_AsLongLongAndOverflow(timeout, &overflow) > 0 or overflow > 0
    if WAIT_TESTS_LE_C:
        return not timeout <= 0
    return timeout > 0


cdef inline int64_t deadline_for(int64_t timeout_ns) noexcept:
    return FS_NO_DEADLINE if timeout_ns < 0 else fs_deadline_after(timeout_ns)


# ---------------------------------------------------------------------------
# Constructors: threading's errors, and signatures

# A constructor that refuses its arguments (Cython's own refusals of a wrong
# count or keyword among them) shows them to threading's constructor of the
# same name, whose exception the caller then gets; where threading accepts
# them, fastsync's refusal stands.  The check is a C wrapper around the
# type's constructors (Cython's vectorcall, and the __init__ slot that
# subclasses use): a call without arguments, which can't be refused, goes
# straight on, and one with arguments pays a test of the result.  One slot
# per class, as for __exit__ (see _exit.pxi).

cdef extern from *:
    """
    static initproc fastsync_init_impl[5];
    static PyObject *fastsync_init_names[5];   /* threading's names of the classes */
    static PyObject *fastsync_raise_as_threading;

    static int fastsync_init_refused(int slot, PyObject *args, PyObject *kwds)
    {
        PyObject *type, *value, *traceback, *accepted;
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return -1;   /* KeyboardInterrupt and the like are no refusal */
        PyErr_Fetch(&type, &value, &traceback);
        accepted = PyObject_CallFunctionObjArgs(fastsync_raise_as_threading, fastsync_init_names[slot],
                                                args, kwds != NULL ? kwds : Py_None, NULL);
        if (accepted == NULL) {   /* threading's exception is set */
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
            return -1;
        }
        Py_DECREF(accepted);
        PyErr_Restore(type, value, traceback);
        return -1;
    }

    static vectorcallfunc fastsync_new_vectorcall_impl[5];

    static PyObject *fastsync_new_refused(int slot, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kwnames)
    {
        PyObject *tuple = NULL, *kwds = NULL, *saved[3];
        Py_ssize_t i;
        PyErr_Fetch(&saved[0], &saved[1], &saved[2]);
        tuple = PyTuple_New(nargs);
        if (tuple != NULL && kwnames != NULL)
            kwds = PyDict_New();
        if (tuple == NULL || (kwnames != NULL && kwds == NULL))
            goto failed;
        for (i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(tuple, i, args[i]);
        }
        for (i = 0; kwnames != NULL && i < PyTuple_GET_SIZE(kwnames); i++)
            if (PyDict_SetItem(kwds, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                goto failed;
        PyErr_Restore(saved[0], saved[1], saved[2]);
        fastsync_init_refused(slot, tuple, kwds);
        Py_DECREF(tuple);
        Py_XDECREF(kwds);
        return NULL;
    failed:
        Py_XDECREF(tuple);
        Py_XDECREF(kwds);
        Py_XDECREF(saved[0]);
        Py_XDECREF(saved[1]);
        Py_XDECREF(saved[2]);
        return NULL;
    }

    /* Out of line, so that the call without arguments saves no registers. */
    #if defined(__GNUC__) || defined(__clang__)
    #  define FASTSYNC_NO_INLINE __attribute__((noinline))
    #elif defined(_MSC_VER)
    #  define FASTSYNC_NO_INLINE __declspec(noinline)
    #else
    #  define FASTSYNC_NO_INLINE
    #endif
    static FASTSYNC_NO_INLINE PyObject *fastsync_new_checked(int slot, PyObject *type, PyObject *const *args,
                                                       size_t nargsf, PyObject *kwnames)
    {
        PyObject *made = fastsync_new_vectorcall_impl[slot](type, args, nargsf, kwnames);
        if (made != NULL)
            return made;
        return fastsync_new_refused(slot, args, PyVectorcall_NARGS(nargsf), kwnames);
    }

    #define FASTSYNC_INIT(n) \
        static int fastsync_init_##n(PyObject *self, PyObject *args, PyObject *kwds) \
        { if (fastsync_init_impl[n](self, args, kwds) == 0) return 0; \
          return fastsync_init_refused(n, args, kwds); } \
        static PyObject *fastsync_new_vectorcall_##n(PyObject *type, PyObject *const *args, \
                                                     size_t nargsf, PyObject *kwnames) \
        { if (PyVectorcall_NARGS(nargsf) == 0 && kwnames == NULL)   /* a tail call */ \
              return fastsync_new_vectorcall_impl[n](type, args, nargsf, kwnames); \
          return fastsync_new_checked(n, type, args, nargsf, kwnames); }
    FASTSYNC_INIT(0)
    FASTSYNC_INIT(1)
    FASTSYNC_INIT(2)
    FASTSYNC_INIT(3)
    FASTSYNC_INIT(4)
    static initproc fastsync_init_wrappers[5] = {
        fastsync_init_0, fastsync_init_1, fastsync_init_2, fastsync_init_3, fastsync_init_4
    };
    static vectorcallfunc fastsync_new_vectorcall_wrappers[5] = {
        fastsync_new_vectorcall_0, fastsync_new_vectorcall_1, fastsync_new_vectorcall_2,
        fastsync_new_vectorcall_3, fastsync_new_vectorcall_4
    };

    /* Before any subclass exists.  Python subclasses take their __init__
     * slot from the type's __init__ descriptor (not the vectorcall, which
     * only the class itself uses), so that is replaced too; explicit calls
     * such as super().__init__(...) then reach the check as well. */
    static int fastsync_install_init(PyObject *type, int slot, PyObject *name, PyObject *raise_as_threading)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        PyObject *descr = PyDict_GetItemString(tp->tp_dict, "__init__");   /* borrowed */
        PyObject *checked;
        if (descr == NULL || !Py_IS_TYPE(descr, &PyWrapperDescr_Type)) {
            PyErr_Format(PyExc_SystemError, "%s.__init__ is not a slot wrapper", tp->tp_name);
            return -1;
        }
        checked = PyDescr_NewWrapper(tp, ((PyWrapperDescrObject *)descr)->d_base,
                                     (void *)fastsync_init_wrappers[slot]);
        if (checked == NULL || PyDict_SetItemString(tp->tp_dict, "__init__", checked) < 0) {
            Py_XDECREF(checked);
            return -1;
        }
        Py_DECREF(checked);
        Py_INCREF(name);
        Py_XSETREF(fastsync_init_names[slot], name);
        Py_INCREF(raise_as_threading);
        Py_XSETREF(fastsync_raise_as_threading, raise_as_threading);
        fastsync_init_impl[slot] = tp->tp_init;
        tp->tp_init = fastsync_init_wrappers[slot];
        fastsync_new_vectorcall_impl[slot] = tp->tp_vectorcall;
        if (tp->tp_vectorcall != NULL)
            tp->tp_vectorcall = fastsync_new_vectorcall_wrappers[slot];
        PyType_Modified(tp);
        return 0;
    }

    /* A static type's __text_signature__ and __doc__ are read from tp_doc;
     * doc must outlive the type (a bytes object the module keeps). */
    static int fastsync_set_type_doc(PyObject *type, const char *doc)
    {
        ((PyTypeObject *)type)->tp_doc = doc;
        PyType_Modified((PyTypeObject *)type);
        return 0;
    }
    """
    int fastsync_install_init(object type, int slot, object name, object raise_as_threading) except -1
    int fastsync_set_type_doc(object type, const char *doc) except -1


# The RLock docstring in use where threading.RLock takes no parameters (3.15).
cdef bytes rlock_doc_without_parameters
