"""asv benchmarks of fastact; see asv_benchmarks/README.md."""
