"""Tree-sitter query patterns (one .scm file per fact kind), loaded by ksrcgraph.extract."""
