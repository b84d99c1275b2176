# ---------------------------------------------------------------------------
# __exit__ without an argument tuple
#
# threading's __exit__ takes any arguments, (*exc_info).  A Cython def with
# *args makes CPython build a tuple on every `with` exit, a large part of an
# uncontended `with lock:`.  So our classes get an __exit__ written as a
# METH_FASTCALL C function with the same signature, which ignores its
# arguments and calls the class's release code (registered per slot).  The
# benchmark's floor (bench/_bench_floor.pyx) includes this file too.

cdef extern from *:
    """
    typedef PyObject *(*fastsync_exit_fn)(PyObject *self);
    static fastsync_exit_fn fastsync_exit_impl[6];

    /* Since 3.15 the __exit__ of _thread's locks takes exactly three
     * arguments; Lock's and RLock's (slots 0 and 1) then do too.  A `with`
     * passes three, so it never reaches the flag. */
    static int fastsync_exit_strict[6];
    static int fastsync_lock_exit_takes_three;

    static PyObject *fastsync_exit_refuse(Py_ssize_t nargs)
    {
        PyErr_Format(PyExc_TypeError, "__exit__ expected 3 arguments, got %zd", nargs);
        return NULL;
    }

    #define FASTSYNC_EXIT(n) \
        static PyObject *fastsync_exit_##n(PyObject *self, PyObject *const *args, \
                                           Py_ssize_t nargs) \
        { (void)args; \
          if (nargs != 3 && fastsync_exit_strict[n]) return fastsync_exit_refuse(nargs); \
          return fastsync_exit_impl[n](self); }
    FASTSYNC_EXIT(0)
    FASTSYNC_EXIT(1)
    FASTSYNC_EXIT(2)
    FASTSYNC_EXIT(3)
    FASTSYNC_EXIT(4)
    FASTSYNC_EXIT(5)

    #define FASTSYNC_EXIT_DEF(n) \
        {"__exit__", (PyCFunction)(void (*)(void))fastsync_exit_##n, METH_FASTCALL, \
         "__exit__($self, /, *exc_info)\\n--\\n\\nRelease; the arguments are ignored."}
    static PyMethodDef fastsync_exit_defs[6] = {
        FASTSYNC_EXIT_DEF(0), FASTSYNC_EXIT_DEF(1), FASTSYNC_EXIT_DEF(2), FASTSYNC_EXIT_DEF(3),
        FASTSYNC_EXIT_DEF(4), FASTSYNC_EXIT_DEF(5)
    };
    #define FASTSYNC_EXIT3_DEF(n) \
        {"__exit__", (PyCFunction)(void (*)(void))fastsync_exit_##n, METH_FASTCALL, \
         "__exit__($self, exc_type, exc_value, exc_tb, /)\\n--\\n\\nRelease; the arguments are ignored."}
    static PyMethodDef fastsync_exit3_defs[2] = { FASTSYNC_EXIT3_DEF(0), FASTSYNC_EXIT3_DEF(1) };

    /* threading's Semaphore.__exit__ is (self, t, v, tb), and a semaphore's
     * __exit__ here has that shape: the three arguments of a `with` go
     * straight to the release; any other call is first bound, or refused
     * with threading's message, by a Python function with those parameters. */
    static PyObject *fastsync_semaphore_exit_binder;

    static PyObject *fastsync_exit_bind(int slot, PyObject *self, PyObject *const *args,
                                        Py_ssize_t nargs, PyObject *kwnames)
    {
        Py_ssize_t given = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
        PyObject **stack, *bound;
        if (fastsync_semaphore_exit_binder == NULL)
            return fastsync_exit_refuse(nargs);
        stack = PyMem_Malloc((size_t)(given + 1) * sizeof(PyObject *));
        if (stack == NULL)
            return PyErr_NoMemory();
        stack[0] = self;
        memcpy(stack + 1, args, (size_t)given * sizeof(PyObject *));
        bound = PyObject_Vectorcall(fastsync_semaphore_exit_binder, stack, nargs + 1, kwnames);
        PyMem_Free(stack);
        if (bound == NULL)
            return NULL;
        Py_DECREF(bound);
        return fastsync_exit_impl[slot](self);
    }

    #define FASTSYNC_EXIT_TVTB(n) \
        static PyObject *fastsync_exit_tvtb_##n(PyObject *self, PyObject *const *args, \
                                                Py_ssize_t nargs, PyObject *kwnames) \
        { if (nargs == 3 && kwnames == NULL) return fastsync_exit_impl[n](self); \
          return fastsync_exit_bind(n, self, args, nargs, kwnames); }
    FASTSYNC_EXIT_TVTB(2)
    FASTSYNC_EXIT_TVTB(3)
    #define FASTSYNC_EXIT_TVTB_DEF(n) \
        {"__exit__", (PyCFunction)(void (*)(void))fastsync_exit_tvtb_##n, METH_FASTCALL | METH_KEYWORDS, \
         "__exit__($self, /, t, v, tb)\\n--\\n\\nRelease; the arguments are ignored."}
    static PyMethodDef fastsync_exit_tvtb_defs[2] = { FASTSYNC_EXIT_TVTB_DEF(2), FASTSYNC_EXIT_TVTB_DEF(3) };

    /* slot 2 or 3; binder: the Python function that binds other calls. */
    static int fastsync_install_semaphore_exit(PyObject *type, int slot, fastsync_exit_fn impl,
                                               PyObject *binder)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        PyObject *method;
        int failed;
        if (binder != Py_None) {
            Py_INCREF(binder);
            Py_XSETREF(fastsync_semaphore_exit_binder, binder);
        }
        fastsync_exit_impl[slot] = impl;
        method = PyDescr_NewMethod(tp, &fastsync_exit_tvtb_defs[slot - 2]);
        if (method == NULL)
            return -1;
        failed = PyDict_SetItemString(tp->tp_dict, "__exit__", method);
        Py_DECREF(method);
        PyType_Modified(tp);
        return failed;
    }

    static int fastsync_install_exit(PyObject *type, int slot, fastsync_exit_fn impl)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        PyObject *method;
        int failed;
        fastsync_exit_impl[slot] = impl;
        fastsync_exit_strict[slot] = slot < 2 && fastsync_lock_exit_takes_three;
        method = PyDescr_NewMethod(tp, fastsync_exit_strict[slot] ? &fastsync_exit3_defs[slot]
                                                                  : &fastsync_exit_defs[slot]);
        if (method == NULL)
            return -1;
        failed = PyDict_SetItemString(tp->tp_dict, "__exit__", method);
        Py_DECREF(method);
        PyType_Modified(tp);
        return failed;
    }
    """
    ctypedef object (*fastsync_exit_fn)(object)
    int fastsync_install_exit(object type, int slot, fastsync_exit_fn impl) except -1
    int fastsync_install_semaphore_exit(object type, int slot, fastsync_exit_fn impl, object binder) except -1
    int fastsync_lock_exit_takes_three
