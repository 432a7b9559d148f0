; Function definitions -> facts.Function (name, storage, return type, parameters).
; Must match:  static inline struct dst_entry *skb_dst(const struct sk_buff *skb) { ... }
;              long sys_sendto(int fd, ...) { ... }        (SYSCALL_DEFINE6 after cleaning)
(function_definition
  declarator: (_) @function.declarator
  body: (compound_statement) @function.body) @function
