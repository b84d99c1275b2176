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
    int fastsync_lock_exit_takes_three
