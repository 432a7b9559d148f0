; Declarations -> facts.Global (file scope and static locals), facts.Local (inside functions),
; facts.Init (initializer lists), facts.Proto (prototypes with a return type).
; Must match:  static struct proto udp_prot = { .sendmsg = udp_sendmsg, };
;              const struct net_proto_family *pf;       struct rtable *rt = skb_rtable(skb);
(declaration
  type: (_) @decl.type
  declarator: (_) @decl.declarator) @decl
