"""The bundled executable reference stack: a model of the kernel's socket dispatch whose tables are
filled from the facts of the kernel version being analysed (nothing per version in code).

 * ``tables``  (link time): ``build_parts(prog, flows)`` — the tables, registrations, create-path
   assignments and stores the model needs, extracted from the linked program and stored with the
   graph as its ``model`` and ``ops_entries`` parts; ``model_part(cg)`` / ``ops_entries(cg)`` read
   them back;
 * ``states``: the state table — for each state key the rules name, what it binds, where it is read
   and how a verdict names it (data/refstack_state.tsv, checked against data/refstack_rules.tsv);
 * ``sockets``: ``Config`` (``inet:dgram:udp``), ``SocketState``, ``Binding``;
 * ``model``   (query time): socket configurations and the state each binds — ``sock->ops``,
   ``sk->sk_prot``, ``net_families[]``, ``inet_protos[]``, packet types, ``dst->output``;
 * ``guards``: does a guard (``case SOCK_STREAM:``, ``if (sock->type != SOCK_RAW)``) hold for a type;
 * ``replay``: walks a path hop by hop against that state (``confirmed`` / ``contradicted`` /
   ``unmodelled``) and searches paths that a configuration can realise;
 * ``paths``: socket-aware path queries (``ksrcgraph path`` / ``replay``).
The rules that map a receiver to model state are data: ``ksrcgraph/data/refstack_*.tsv``.
"""
