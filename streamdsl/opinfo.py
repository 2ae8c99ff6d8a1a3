"""Facts about upstream ops that every interpreter and code generator of task bodies needs."""

__all__ = ["ARITH_CASTS", "CMPI_INFIX"]

# arith.cmpi predicates (eq, ne, slt, sle, sgt, sge, ult, ule, ugt, uge) as infix expressions over
# `{0}` and `{1}`: the same text in Python and C++ (operands are already signed/unsigned values).
CMPI_INFIX = {
    0: "({0} == {1})", 1: "({0} != {1})", 2: "({0} < {1})", 3: "({0} <= {1})", 4: "({0} > {1})",
    5: "({0} >= {1})", 6: "({0} < {1})", 7: "({0} <= {1})", 8: "({0} > {1})", 9: "({0} >= {1})",
}  # fmt: skip

# arith ops that only convert a value's type (their result is the operand, cast)
ARITH_CASTS = frozenset({
    "arith.sitofp", "arith.uitofp", "arith.fptosi", "arith.fptoui", "arith.extf", "arith.truncf",
    "arith.extsi", "arith.extui", "arith.trunci", "arith.index_cast", "arith.index_castui",
})  # fmt: skip
