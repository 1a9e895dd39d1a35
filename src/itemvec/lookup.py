"""Lookups inside numba kernels: ``find_sorted`` (a binary search in a sorted slice, the rows of a CSR matrix)
and ``prefetch(array, i)`` (ask the CPU to start loading ``array[i]``'s cache line).

The hash tables of a prepare (itemvec.data.intern, itemvec.data.keyset) are far larger than the caches: at
Books size every lookup of a partner id or a drawn pair is a miss to memory, and one lookup's probe depends on
its hash, so the CPU overlaps only a few of them. A kernel that knows the slots of the lookups ahead of it (the
hashes of the next ones) prefetches them some lookups early (``AHEAD``), and the misses overlap: about half the
time per lookup on this machine. A prefetch is only a hint (LLVM's ``llvm.prefetch``): it never faults, changes
no value, and the kernels give the same answers with it or without it.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

AHEAD = 16  # lookups between a slot's prefetch and its probe (8 to 32 measured the same)


@njit(cache=True, inline="always")
def find_sorted(values, start, end, x):
    """The position of ``x`` in the ascending slice ``values[start:end]``, or -1."""
    lo, hi = start, end
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    if lo < end and values[lo] == x:
        return lo
    return -1


@intrinsic
def prefetch(typingctx, array, index):
    """A read prefetch of the element ``index`` of a one-dimensional array (no bounds check: the callers pass
    slots inside the table)."""
    if not isinstance(array, types.Array) or array.ndim != 1 or not isinstance(index, types.Integer):
        return None
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]], wraparound=False)
        byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        opaque = getattr(byte_pointer.type, "is_opaque", False)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer.type, i32, i32, i32]),
            "llvm.prefetch.p0" if opaque else "llvm.prefetch.p0i8")
        # read (0), keep in every cache level (3), data (1)
        builder.call(function, [byte_pointer, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
