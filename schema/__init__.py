"""The GraphQL types: objects, interfaces, unions, inputs, enums, payloads and the
request policies (limits, error codes). No I/O; the roots and the executable Schema
are assembled in comfygraph.resolvers.schema."""
