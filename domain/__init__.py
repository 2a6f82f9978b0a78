"""The shared vocabulary: statuses and kinds, each defined once. GraphQL wraps these enums,
the database stores their values."""
