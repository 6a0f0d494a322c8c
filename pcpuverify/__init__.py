"""pcpu-verify: the Linux percpu bitmap allocator (July 2017 series), proved or refuted on small bitmaps."""

__version__ = "0.1.0"
