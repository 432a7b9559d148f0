"""ksrcgraph: call paths through Linux kernel sources, function-pointer tables included."""

__version__ = "0.1.0"
