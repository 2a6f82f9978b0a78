"""comfygraph: the GraphQL API server of an AI generation studio.

The packages below are the repository's top-level folders (linked here, so that the
tree a reader sees is the one that installs): server -> resolvers -> studio ->
(db, comfy, storage, bus, emulator) -> schema -> domain. docs/architecture.md has
the whole map.
"""
