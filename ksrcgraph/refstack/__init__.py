"""The bundled executable reference stack: a model of the kernel's socket dispatch whose tables are
filled from the facts of the kernel version being analysed (nothing per version in code).

 * ``tables``  (link time): the tables, registrations, create-path assignments and stores the model
   needs, extracted from the linked program and cached with the graph;
 * ``model``   (query time): socket configurations (``inet:dgram:udp``) and the state each binds —
   ``sock->ops``, ``sk->sk_prot``, ``net_families[]``, ``inet_protos[]``, packet types, ``dst->output``;
 * ``replay``: walks a path hop by hop against that state (``confirmed`` / ``contradicted`` /
   ``unmodelled``) and searches paths that a configuration can realise.
The rules that map a receiver to model state are data: ``ksrcgraph/data/refstack_*.tsv``.
"""
