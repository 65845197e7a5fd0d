"""The Redis backend: one Redis, several (sharded) or a Redis Cluster, spoken natively."""
