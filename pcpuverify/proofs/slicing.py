"""Cone-of-influence slicing: the invariants of a strengthening that read what a query's target reads.

A consecution query asks whether the transition, from a state where the
strengthening holds, can break its target.  An invariant of the
strengthening that shares no constant with the target (the pre-state
fields and operation arguments the target's term reads, through the
transition) constrains nothing the target sees, apart from what it implies
through other invariants.  So the query is asked first with the slice: an
unsat answer there is final (fewer assumptions, the same conclusion), and
anything else is asked again with the whole strengthening before it counts
(``suite.py``), so no verdict rests on the slice but a PROVED.

The read sets come from the Z3 terms themselves (their uninterpreted
constants), not from a list kept by hand, so an invariant or an encoding
that reads one more field is sliced correctly without anyone saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import z3

from pcpuverify.invariants.base import Invariant


class Cone:
    """The constants each term reads, as bit masks, memoised on the AST id across the terms of a suite."""

    def __init__(self) -> None:
        self.bit: dict[str, int] = {}  # a constant's name: its bit in the masks
        self.memo: dict[int, int] = {}  # an AST id: the mask of the constants below it
        # Z3 reuses the id of a freed AST: every term read stays alive with the memo, its subterms with it
        self.alive: list[z3.ExprRef] = []

    def reads(self, term: z3.ExprRef) -> int:
        """The mask of the uninterpreted constants ``term`` reads (iteratively: the terms are deep)."""
        ctx = term.ctx.ref()
        memo = self.memo
        root = z3.Z3_get_ast_id(ctx, term.as_ast())
        if root in memo:
            return memo[root]
        self.alive.append(term)
        stack = [(term.as_ast(), False)]
        while stack:
            ast, expanded = stack.pop()
            key = z3.Z3_get_ast_id(ctx, ast)
            if key in memo:
                continue
            if z3.Z3_get_ast_kind(ctx, ast) != z3.Z3_APP_AST:  # a numeral, or a sort: reads nothing
                memo[key] = 0
                continue
            app = z3.Z3_to_app(ctx, ast)
            n = z3.Z3_get_app_num_args(ctx, app)
            if n == 0:
                decl = z3.Z3_get_app_decl(ctx, app)
                if z3.Z3_get_decl_kind(ctx, decl) == z3.Z3_OP_UNINTERPRETED:
                    name = z3.Z3_get_symbol_string(ctx, z3.Z3_get_decl_name(ctx, decl))
                    memo[key] = self.bit.setdefault(name, 1 << len(self.bit))
                else:
                    memo[key] = 0  # true, false
                continue
            args = [z3.Z3_get_app_arg(ctx, app, i) for i in range(n)]
            if expanded:
                mask = 0
                for a in args:
                    mask |= memo[z3.Z3_get_ast_id(ctx, a)]
                memo[key] = mask
            else:
                stack.append((ast, True))
                stack.extend((a, False) for a in args if z3.Z3_get_ast_id(ctx, a) not in memo)
        return memo[root]

    def slice(self, target: z3.ExprRef, strengthening: Sequence[Invariant],
              predicate: Callable[[Invariant], z3.BoolRef]) -> list[Invariant]:
        """The invariants of ``strengthening`` (in its order) whose ``predicate`` (on the pre-state) reads a
        constant ``target`` reads."""
        wanted = self.reads(target)
        return [inv for inv in strengthening if self.reads(predicate(inv)) & wanted]
