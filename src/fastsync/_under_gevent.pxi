# ---------------------------------------------------------------------------
# Under gevent or eventlet: threading's cooperative primitives instead
#
# Each class's constructor first checks, in C, whether _thread.allocate_lock
# is still the interpreter's own (fastsync/_cooperative.py says why); only
# when it isn't does it go to Python.  A dictionary look-up per construction,
# nothing at all on the methods.

cdef extern from *:
    """
    #define FASTSYNC_SWITCHED_TYPES 7
    static newfunc fastsync_native_new[FASTSYNC_SWITCHED_TYPES];
    static PyObject *fastsync_thread_namespace;   /* _thread.__dict__ */
    static PyObject *fastsync_allocate_lock_name;
    static PyObject *fastsync_native_allocate;    /* Py_None if replaced before import */
    static PyObject *fastsync_construct;          /* _cooperative.construct */

    static PyObject *fastsync_switched_new(int n, PyTypeObject *type, PyObject *args,
                                           PyObject *kwargs)
    {
        PyObject *current = PyDict_GetItemWithError(fastsync_thread_namespace,
                                                    fastsync_allocate_lock_name);
        if (current == fastsync_native_allocate)
            return fastsync_native_new[n](type, args, kwargs);
        if (current == NULL && PyErr_Occurred())
            return NULL;
        return PyObject_CallFunctionObjArgs(fastsync_construct, (PyObject *)type, args,
                                            kwargs != NULL ? kwargs : Py_None, NULL);
    }

    /* Cython also gives the types a vectorcall constructor, which the
     * interpreter prefers to tp_new: it is switched the same way. */
    static vectorcallfunc fastsync_native_vectorcall[FASTSYNC_SWITCHED_TYPES];

    static PyObject *fastsync_switched_vectorcall(int n, PyObject *type, PyObject *const *args,
                                                  size_t nargsf, PyObject *kwnames)
    {
        PyObject *current = PyDict_GetItemWithError(fastsync_thread_namespace,
                                                    fastsync_allocate_lock_name);
        Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), i;
        PyObject *tuple, *kwargs = NULL, *result;
        if (current == fastsync_native_allocate)
            return fastsync_native_vectorcall[n](type, args, nargsf, kwnames);
        if (current == NULL && PyErr_Occurred())
            return NULL;
        tuple = PyTuple_New(nargs);
        if (tuple == NULL)
            return NULL;
        for (i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(tuple, i, args[i]);
        }
        if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
            kwargs = PyDict_New();
            for (i = 0; kwargs != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
                if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                    Py_CLEAR(kwargs);
            }
            if (kwargs == NULL) {
                Py_DECREF(tuple);
                return NULL;
            }
        }
        result = PyObject_CallFunctionObjArgs(fastsync_construct, type, tuple,
                                              kwargs != NULL ? kwargs : Py_None, NULL);
        Py_DECREF(tuple);
        Py_XDECREF(kwargs);
        return result;
    }

    #define FASTSYNC_SWITCHED_NEW(n) \
        static PyObject *fastsync_switched_new_##n(PyTypeObject *t, PyObject *a, PyObject *k) \
        { return fastsync_switched_new(n, t, a, k); } \
        static PyObject *fastsync_switched_vectorcall_##n(PyObject *t, PyObject *const *a, \
                                                          size_t nargsf, PyObject *kwnames) \
        { return fastsync_switched_vectorcall(n, t, a, nargsf, kwnames); }
    FASTSYNC_SWITCHED_NEW(0)
    FASTSYNC_SWITCHED_NEW(1)
    FASTSYNC_SWITCHED_NEW(2)
    FASTSYNC_SWITCHED_NEW(3)
    FASTSYNC_SWITCHED_NEW(4)
    FASTSYNC_SWITCHED_NEW(5)
    FASTSYNC_SWITCHED_NEW(6)
    static newfunc fastsync_switched_new_fns[FASTSYNC_SWITCHED_TYPES] = {
        fastsync_switched_new_0, fastsync_switched_new_1, fastsync_switched_new_2,
        fastsync_switched_new_3, fastsync_switched_new_4, fastsync_switched_new_5,
        fastsync_switched_new_6,
    };
    static vectorcallfunc fastsync_switched_vectorcall_fns[FASTSYNC_SWITCHED_TYPES] = {
        fastsync_switched_vectorcall_0, fastsync_switched_vectorcall_1,
        fastsync_switched_vectorcall_2, fastsync_switched_vectorcall_3,
        fastsync_switched_vectorcall_4, fastsync_switched_vectorcall_5,
        fastsync_switched_vectorcall_6,
    };

    static int fastsync_switch_setup(PyObject *thread_namespace, PyObject *native_allocate,
                                     PyObject *construct)
    {
        fastsync_allocate_lock_name = PyUnicode_InternFromString("allocate_lock");
        if (fastsync_allocate_lock_name == NULL)
            return -1;
        Py_INCREF(thread_namespace);
        Py_INCREF(native_allocate);
        Py_INCREF(construct);
        fastsync_thread_namespace = thread_namespace;
        fastsync_native_allocate = native_allocate;
        fastsync_construct = construct;
        return 0;
    }

    /* Subclasses created later inherit the switched constructor too, and
     * construct() refuses them under monkey-patching. */
    static int fastsync_switch_new(PyObject *type, int n)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        fastsync_native_new[n] = tp->tp_new;
        tp->tp_new = fastsync_switched_new_fns[n];
        fastsync_native_vectorcall[n] = tp->tp_vectorcall;
        if (tp->tp_vectorcall != NULL)
            tp->tp_vectorcall = fastsync_switched_vectorcall_fns[n];
        PyType_Modified(tp);
        return 0;
    }
    """
    int fastsync_switch_setup(object thread_namespace, object native_allocate,
                              object construct) except -1
    int fastsync_switch_new(object type, int n) except -1


def _switch_constructors():
    from fastsync import _cooperative

    native = _cooperative.NATIVE_ALLOCATE_LOCK
    fastsync_switch_setup(_thread.__dict__, native, _cooperative.construct)
    for n, cls in enumerate((Lock, RLock, Event, Condition, Semaphore, BoundedSemaphore, RWLock)):
        fastsync_switch_new(cls, n)
