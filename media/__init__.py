"""Media layer: decoding and writing video/audio, dataset readers, the synthetic dataset and
the file-level guarantees (atomic writes, error logs, sharding) every batch tool relies on."""
