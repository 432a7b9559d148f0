; Typedefs -> facts.Typedef (and facts.Struct for `typedef struct { ... } name;`).
; Must match:  typedef int (*okfn_t)(struct net *, struct sock *, struct sk_buff *);
;              typedef struct { spinlock_t slock; } socket_lock_t;
(type_definition
  type: (_) @typedef.type
  declarator: (_) @typedef.declarator) @typedef
