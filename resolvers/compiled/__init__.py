"""Compiled execution of known documents: a validated query whose fields the compiler
knows runs as a cached plan (the SQL its selection needs, and functions turning rows
straight into the response) instead of through per-field resolvers. Anything else, and
any request whose plan meets an error, runs through Strawberry as before."""

from comfygraph.resolvers.compiled.extension import CompiledExecution, Compiler

__all__ = ["CompiledExecution", "Compiler"]
