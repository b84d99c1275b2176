# ---------------------------------------------------------------------------
# The classes fastsync.patch() installs in threading: Python subclasses of
# ours (see _patch.py)
#
# CPython calls a C method at its full speed only when self's type is exactly
# the class the method belongs to; on an instance of a subclass it falls back
# to a generic call, which is much slower.  So each installed class gets our
# methods as descriptors of its own.

cdef extern from *:
    """
    static PyObject *fastsync_method_for(PyObject *type, PyObject *descriptor)
    {
        return PyDescr_NewMethod((PyTypeObject *)type,
                                 ((PyMethodDescrObject *)descriptor)->d_method);
    }
    """
    object fastsync_method_for(object type, object descriptor)

_method_descriptor = type(Event.is_set)


def _own_methods(cls):
    """Give cls, a Python subclass of our types, the C methods it inherits
    from them as its own.  Called by fastsync._patch; not part of the API."""
    seen = set(vars(cls))
    for base in cls.__mro__[1:]:
        for name, value in vars(base).items():
            if name not in seen:
                seen.add(name)
                if type(value) is _method_descriptor:
                    setattr(cls, name, fastsync_method_for(cls, value))
